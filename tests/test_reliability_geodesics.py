"""GenerativeGeodesics validates every numeric parameter before it calls the density (issue 11, item 9)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.density import GaussianMixtureDensity
from explorer.geodesics import GenerativeGeodesics

BAD = {
    "batch_size": [-1, 0, 2.5, float("nan"), True, "64"],
    "max_matrix_points": [-1, 0, float("inf")],
    "n_straight": [10, 0, float("nan"), 10**7],  # 10**7 nodes: a 10**14-entry eigenproblem, refused by memory
    "k": [0, -3, 2.5, float("nan"), True],
    "n_quad": [0, -1, float("nan"), 10**6],
    "lam": [0, -1, float("nan"), float("inf"), "x"],
    "p0": [0, float("nan"), float("-inf")],
    "log_p_ref": [float("nan"), float("inf"), "abc"],
    "relative": ["yes", 2],
}


@pytest.mark.parametrize("name,value", [(n, v) for n, values in BAD.items() for v in values])
def test_bad_parameters_are_refused_before_the_density_is_called(name, value):
    X = np.random.default_rng(0).normal(size=(40, 2))
    calls = []

    def log_density(P):
        calls.append(len(P))
        return np.zeros(len(P))

    params = {"log_p_ref": 0.0, name: value}
    with pytest.raises(ValueError, match=name):
        GenerativeGeodesics(**params).fit(X, log_density)
    assert calls == []


@pytest.mark.parametrize("value", [-1.0, 0.0, float("nan"), float("inf")])
def test_bad_eps_is_refused(value):
    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match="eps"):
        GenerativeGeodesics(graph="epsilon", eps=value).fit(X, lambda P: np.zeros(len(P)))


def test_valid_integral_floats_still_work():
    X = np.random.default_rng(0).normal(size=(60, 2))
    gmm = GaussianMixtureDensity([[0.0, 0.0]], 1.0)
    a = GenerativeGeodesics(k=10, n_quad=3, batch_size=7).fit(X, gmm).distances(0)
    b = GenerativeGeodesics(k=10.0, n_quad=3.0, batch_size=65536).fit(X, gmm).distances(0)
    np.testing.assert_allclose(a, b)

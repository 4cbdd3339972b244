"""Analytic densities against scipy / scikit-learn oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.neighbors import KernelDensity as SkKDE

from explorer.density import GaussianMixtureDensity, KernelDensity


def _scipy_mixture(X, means, covs, weights):
    terms = [np.log(w) + multivariate_normal(m, c).logpdf(X) for m, c, w in zip(means, covs, weights, strict=True)]
    return logsumexp(np.stack(terms), axis=0)


def test_mixture_full_covariances_match_scipy():
    rng = np.random.default_rng(0)
    K, D = 3, 4
    means = rng.normal(size=(K, D))
    A = rng.normal(size=(K, D, D))
    covs = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(D)
    weights = np.array([0.2, 0.5, 0.3])
    X = rng.normal(size=(200, D)) * 2
    gmm = GaussianMixtureDensity(means, covs, weights, chunk_size=37)
    np.testing.assert_allclose(gmm(X), _scipy_mixture(X, means, covs, weights), rtol=1e-10, atol=1e-10)
    # torch input gives the same float64 numpy output, and .torch is the same function
    out = gmm(torch.tensor(X, dtype=torch.float32))
    assert out.dtype == np.float64 and out.shape == (200,)
    np.testing.assert_allclose(gmm.torch(torch.tensor(X)).numpy(), gmm(X), rtol=1e-10)


def test_mixture_scalar_and_per_component_stds():
    means = np.array([[0.0, 0.0], [3.0, 1.0]])
    X = np.random.default_rng(1).normal(size=(50, 2))
    for stds in (0.7, np.array([0.5, 1.5])):
        s = np.broadcast_to(stds, (2,))
        expected = _scipy_mixture(X, means, [si ** 2 * np.eye(2) for si in s], [0.5, 0.5])
        np.testing.assert_allclose(GaussianMixtureDensity(means, stds)(X), expected, rtol=1e-10)


def test_mixture_far_points_do_not_underflow():
    gmm = GaussianMixtureDensity(np.zeros((1, 2)), 0.01)
    lp = gmm(np.array([[10.0, 0.0]]))  # exp(-5e5): log p must stay finite
    np.testing.assert_allclose(lp, multivariate_normal(np.zeros(2), 1e-4 * np.eye(2)).logpdf([10.0, 0.0]))


def test_mixture_sample_moments():
    gmm = GaussianMixtureDensity(np.array([[2.0, -1.0]]), np.array([[1.0, 0.3], [0.3, 0.5]]))
    S = gmm.sample(20000, seed=3)
    np.testing.assert_allclose(S.mean(0), [2.0, -1.0], atol=0.03)
    np.testing.assert_allclose(np.cov(S.T), gmm.covs[0], atol=0.03)


def test_mixture_validation_names_argument():
    with pytest.raises(ValueError, match="covs"):
        GaussianMixtureDensity(np.zeros((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="weights"):
        GaussianMixtureDensity(np.zeros((2, 3)), 1.0, [1.0, -1.0])
    with pytest.raises(ValueError, match="columns"):
        GaussianMixtureDensity(np.zeros((2, 3)))(np.zeros((4, 2)))


def test_kde_matches_sklearn_and_brute_force():
    rng = np.random.default_rng(2)
    data = rng.normal(size=(300, 3))
    Q = rng.normal(size=(77, 3)) * 1.5
    kde = KernelDensity(data, bandwidth=0.4, chunk_size=10)
    ref = SkKDE(bandwidth=0.4, kernel="gaussian").fit(data).score_samples(Q)
    np.testing.assert_allclose(kde(Q), ref, rtol=1e-9)
    d2 = ((Q[:, None] - data[None]) ** 2).sum(-1)
    brute = np.log(np.mean(np.exp(-d2 / (2 * 0.16)), axis=1)) - 1.5 * np.log(2 * np.pi * 0.16)
    np.testing.assert_allclose(kde(Q), brute, rtol=1e-9)
    np.testing.assert_allclose(kde.torch(torch.tensor(Q)).numpy(), brute, rtol=1e-9)


def test_kde_scott_default_and_far_queries():
    data = np.random.default_rng(4).normal(size=(500, 2)) * np.array([1.0, 2.0])
    kde = KernelDensity(data)
    sigma = np.sqrt(np.mean(data.var(axis=0)))
    assert kde.bandwidth == pytest.approx(sigma * 500 ** (-1 / 6))
    far = kde(np.array([[1e3, 1e3]]))  # every kernel underflows in linear space
    assert np.isfinite(far).all() and far[0] < -1e4
    with pytest.raises(ValueError, match="bandwidth"):
        KernelDensity(data, bandwidth=-1.0)

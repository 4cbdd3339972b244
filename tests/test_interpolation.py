"""Straight lines, profiles along a polyline and L-BFGS path refinement, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.geodesics import discrete_length, profile_along, refine_path, straight_line
from explorer.geodesics.convergence import convergence_study, reference_distances, ring_density


def test_straight_line_and_profile_on_constant_density():
    P = straight_line([0.0, 0.0], [3.0, 4.0], n=11)
    assert P.shape == (11, 2)
    np.testing.assert_array_equal(P[[0, -1]], [[0, 0], [3, 4]])
    p, lam, p0 = 0.2, 0.1, 1.0
    prof = profile_along(P, lambda X: np.full(len(X), np.log(p)), lam=lam, p0=p0, n_between=3)
    factor = (p0 + lam) / (p + lam)
    assert len(prof["points"]) == 41
    np.testing.assert_allclose(prof["c"], factor)
    np.testing.assert_allclose(prof["arclength"][-1], 5.0)
    assert prof["metric_length"] == pytest.approx(5.0 * factor)


def test_profile_log_p_and_c_match_density():
    f = ring_density()
    P = straight_line([-1.2, 0.1], [1.3, -0.2], n=30)
    prof = profile_along(P, f, lam=0.05, p0=2.0)
    np.testing.assert_allclose(prof["log_p"], f(P))
    np.testing.assert_allclose(prof["c"], 2.05 / (np.exp(f(P)) + 0.05), rtol=1e-12)


def test_refine_straightens_zigzag_under_constant_density():
    p, lam = 0.5, 0.5
    factor = (1 + lam) / (p + lam)
    P = straight_line([0.0, 0.0], [1.0, 1.0], n=12)
    P[1:-1] += np.random.default_rng(0).normal(scale=0.1, size=(10, 2))

    def log_p(X):
        return torch.full((len(X),), float(np.log(p)), dtype=X.dtype) + 0.0 * X.sum(1)

    r = refine_path(P, log_p, lam=lam, p0=1.0)
    assert r.length_before > 1.05 * factor * np.sqrt(2)
    assert r.length_after == pytest.approx(factor * np.sqrt(2), rel=1e-6)
    # refined points lie on the diagonal
    np.testing.assert_allclose(r.points[:, 0], r.points[:, 1], atol=1e-4)
    assert discrete_length(r.points, lambda X: np.full(len(X), np.log(p)), lam, 1.0) == pytest.approx(r.length_after)


def test_refine_follows_ring_at_small_lambda():
    f = ring_density()
    lam = 0.01
    t = np.linspace(0, 1, 40)
    # a bent start (the straight line is a symmetric critical point): bulging towards the upper half ring
    P = np.c_[1 - 2 * t, 0.3 * np.sin(np.pi * t)]
    r = refine_path(P, f.torch, lam=lam, p0=1.0, n_quad=3, max_iter=300)
    ang = np.linspace(0, np.pi, 200)
    half_circle = discrete_length(np.c_[np.cos(ang), np.sin(ang)], f, lam, 1.0)
    assert r.length_after < 0.5 * r.length_before
    assert r.length_after <= half_circle * 1.001  # at least as good as the upper half of the ring
    radius = np.linalg.norm(r.points, axis=1)
    assert radius.min() > 0.7 and radius.max() < 1.3
    assert r.length_after == pytest.approx(discrete_length(r.points, f, lam, 1.0, n_quad=3), rel=1e-9)


def test_convergence_study_small():
    rows = convergence_study(sizes=(250, 1000), lams=(10.0, 0.01), ref_grid=201, n_repeats=1)
    assert len(rows) == 8 and [r["k"] for r in rows[:4]] == [10, 10, 20, 20]
    by = {(r["sampling"], r["lam"], r["n"]): r for r in rows}
    # the reference is the eikonal distance, converged on this smooth density: 201 and 401 nodes agree to 1e-3
    fine = reference_distances(ring_density(), (1.0, 0.0), (-1.0, 0.0), (10.0, 0.01), grid=401)
    for lam in (10.0, 0.01):
        assert by[("uniform", lam, 250)]["reference"] == pytest.approx(fine[lam], rel=1e-3)
    # λ = 10 (absolute, p ≤ 0.5): 1 < c ≤ (p0 + λ)/λ = 1.1 everywhere, so 2 < d ≤ 1.1 · ‖a − b‖
    assert 2.0 < fine[10.0] < 2.2
    # graph distances are lengths of polylines: never below the continuum distance (up to its grid error)
    assert all(r["distance"] > 0.999 * r["reference"] for r in rows)
    # uniform points with a shrinking neighbourhood converge at both λ
    for lam in (10.0, 0.01):
        assert by[("uniform", lam, 1000)]["rel_error"] < 0.5 * by[("uniform", lam, 250)]["rel_error"]
    # at large λ the straight geodesic crosses the empty middle: samples from p stay far worse than uniform ones
    assert by[("density", 10.0, 1000)]["rel_error"] > 3 * by[("uniform", 10.0, 1000)]["rel_error"]
    assert by[("density", 0.01, 1000)]["rel_error"] < by[("density", 10.0, 1000)]["rel_error"]


def test_refine_path_falls_back_to_descent_when_lbfgs_stalls(monkeypatch):
    """On the digits' noisy ODE log p with score gradients, L-BFGS's line search makes no progress; then a
    normalised gradient descent keeping only improving steps still shortens the path and never lengthens it."""
    import explorer.geodesics.interpolation as interp

    class Stalled:  # an optimiser whose line search gives up at once
        def __init__(self, *args, **kwargs):
            pass

        def zero_grad(self):
            pass

        def step(self, closure):
            return closure()

    monkeypatch.setattr(interp.torch.optim, "LBFGS", Stalled)

    def log_p(P):  # a Gaussian bump at the origin
        return -0.5 * (np.asarray(P) ** 2).sum(1)

    def log_p_torch(x):
        return -0.5 * (x ** 2).sum(1)

    P = np.stack([np.linspace(-2, 2, 9), np.full(9, 1.5)], axis=1)  # a line passing above the bump
    r = refine_path(P, log_p_torch, lam=1e-3, max_iter=30)
    assert r.length_after < 0.9 * r.length_before
    assert r.length_after == pytest.approx(discrete_length(r.points, log_p, lam=1e-3), rel=1e-9)
    assert abs(r.points[4, 1]) < 1.4  # pulled towards the bump
    np.testing.assert_array_equal(r.points[[0, -1]], P[[0, -1]])

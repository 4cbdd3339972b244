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


def test_subdivided_length_does_not_depend_on_the_number_of_vertices():
    f = ring_density()
    a, b = np.array([1.0, 0.0]), np.array([-0.2, 0.9])
    two = np.stack([a, b])
    many = straight_line(a, b, n=7)  # the same segment with 5 more vertices
    h = 0.02
    assert discrete_length(two, f, lam=0.05, max_step=h) == pytest.approx(
        discrete_length(many, f, lam=0.05, max_step=h), rel=1e-3)
    # without subdivision the two differ (3 nodes on one long segment misjudge c), and both converge as h → 0
    coarse = discrete_length(two, f, lam=0.05)
    fine = discrete_length(two, f, lam=0.05, max_step=0.002)
    assert abs(coarse - fine) > 0.05 * fine
    assert discrete_length(many, f, lam=0.05, max_step=0.004) == pytest.approx(fine, rel=1e-4)
    from explorer.geodesics.interpolation import subdivide

    S = subdivide(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.25]]), 0.3)
    np.testing.assert_allclose(S, [[0, 0], [0.25, 0], [0.5, 0], [0.75, 0], [1, 0], [1, 0.25]])


def test_finite_difference_gradient_matches_the_analytic_one():
    from explorer.geodesics.interpolation import finite_difference_torch

    f = ring_density()
    x = torch.tensor(np.random.default_rng(0).uniform(-1.2, 1.2, size=(20, 2)), requires_grad=True)
    fn = finite_difference_torch(f, 1e-4)
    out = fn(x)
    np.testing.assert_allclose(out.detach().numpy(), f(x.detach().numpy()))
    out.sum().backward()
    y = x.detach().clone().requires_grad_(True)
    f.torch(y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_refine_shortest_starts_from_the_shortest_candidate_and_is_never_longer():
    from explorer.geodesics.interpolation import refine_shortest

    f = ring_density()
    a, b = np.array([1.0, 0.0]), np.array([-1.0, 0.0])
    t = np.linspace(0, 1, 25)
    upper = np.c_[np.cos(np.pi * t), np.sin(np.pi * t)]  # along the ring
    upper[[0, -1]] = a, b
    zigzag = upper + np.c_[np.zeros(25), 0.15 * (-1) ** np.arange(25)] * np.r_[0, np.ones(23), 0][:, None]
    cands = {"zigzag": zigzag, "straight": np.stack([a, b]), "ring": upper}
    for lam, best_start in ((0.01, "ring"), (100.0, "straight")):
        r = refine_shortest(cands, f, f.torch, lam=lam, max_step=0.02, max_iter=100)
        assert r.start == best_start and r.start == min(r.lengths, key=r.lengths.get)
        assert r.length <= min(r.lengths.values())
        assert r.length == pytest.approx(discrete_length(r.points, f, lam=lam, max_step=0.02), rel=1e-12)
        np.testing.assert_array_equal(r.points[[0, -1]], [a, b])
    # no gradient: the shortest candidate itself
    r = refine_shortest(cands, f, None, lam=0.01, max_step=0.02)
    assert r.start == "ring" and r.points is not None and not r.refined and r.refinement is None
    with pytest.raises(ValueError, match="same two points"):
        refine_shortest({"a": upper, "b": np.stack([a, [0.0, 1.0]])}, f)


def test_refined_ring_path_is_never_longer_than_its_graph_path():
    """The graph path between opposite points of the ring, refined (restarts on), measured by one rule."""
    import warnings

    from explorer.geodesics import GenerativeGeodesics
    from explorer.geodesics.interpolation import refine_shortest

    f = ring_density()
    X = np.r_[[[1.0, 0.0], [-1.0, 0.0]], f.sample(400, seed=3), np.random.default_rng(4).uniform(-1.6, 1.6, (100, 2))]
    for lam in (10.0, 0.01):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            g = GenerativeGeodesics(lam=lam, k=None).fit(X, f)
        path, d_graph = g.path(0, 1, return_length=True)
        r = refine_shortest({"graph": X[path]}, f, f.torch, lam=lam, max_step=2 / 64, restarts=2)
        assert r.length <= r.lengths["graph"] and r.refined
        # and against the eikonal solution: within 1 % (the graph alone is several per cent longer)
        ref = reference_distances(f, X[0], X[1], (lam,), grid=201)[lam]
        assert ref * 0.999 < r.length < 1.01 * ref < d_graph

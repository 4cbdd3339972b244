"""The fast-marching eikonal solver against closed-form geodesic distances.

- c ≡ 1: T = ‖x − s‖.
- c = e^{a y}: the metric e^{2ay}|dz|² is the pull-back of the Euclidean one by f(z) = (i/a) e^{−iaz}
  (|f'(z)| = e^{ay}), so d(z₁, z₂) = |f(z₁) − f(z₂)| = sqrt(e^{2ay₁} + e^{2ay₂} − 2 e^{a(y₁+y₂)} cos a(x₁ − x₂))/a
  while |a(x₁ − x₂)| < π (the image chord then misses the origin).
- c = 1/r: in log-polar coordinates (log r, θ) the metric is flat, d = sqrt(log²(r₁/r₂) + Δθ²) for |Δθ| < π.
"""

from __future__ import annotations

import numpy as np
import pytest

from explorer.geodesics.eikonal import (
    bilinear,
    conformal_grid,
    eikonal_distance,
    fast_marching,
    subsample,
    trace_geodesic,
)


def grid(n, lo=-1.0, hi=1.0):
    x = np.linspace(lo, hi, n)
    X, Y = np.meshgrid(x, x)
    return x, X, Y


def test_constant_c_is_euclidean_distance_second_order():
    s = np.array([0.013, -0.021])  # off the nodes
    errors = {}
    for order in (1, 2):
        for n in (41, 81):
            x, X, Y = grid(n)
            T = fast_marching(np.ones((n, n)), x, x, s, order=order, init_radius=0.2)  # a fixed disk
            E = np.hypot(X - s[0], Y - s[1])
            errors[order, n] = np.abs(T - E)[E > 0.3].max()
    assert errors[2, 81] < 2e-3 and errors[2, 81] < 0.25 * errors[1, 81]
    assert errors[2, 41] / errors[2, 81] > 3.0  # second order: about 4× per halving of h
    assert errors[1, 41] / errors[1, 81] > 1.4  # first order: about 2×


def test_exponential_c_matches_conformal_map_distance():
    a, s = 1.0, np.array([0.013, 0.6])
    mean_err = []
    for n in (51, 101):
        x, X, Y = grid(n)
        T = fast_marching(np.exp(a * Y), x, x, s)
        E = np.sqrt(np.exp(2 * a * s[1]) + np.exp(2 * a * Y)
                    - 2 * np.exp(a * (s[1] + Y)) * np.cos(a * (X - s[0]))) / a
        # keep targets whose geodesic stays in the grid: the image chord's nearest point to 0 maps to y ≥ −1
        P = np.exp(a * s[1]) * np.array([np.cos(a * s[0]), -np.sin(a * s[0])]) / a
        Q = np.exp(a * Y)[..., None] * np.stack([np.cos(a * X), -np.sin(a * X)], -1) / a
        d = Q - P
        t = np.clip(-(d @ P) / (d ** 2).sum(-1), 0, 1)
        y_min = np.log(a * np.linalg.norm(P + t[..., None] * d, axis=-1)) / a
        ok = (y_min > -1) & (np.hypot(X - s[0], Y - s[1]) > 0.3)
        assert ok.mean() > 0.8
        rel = np.abs(T - E)[ok] / E[ok]
        mean_err.append(rel.mean())
        assert rel.max() < 0.03
    assert mean_err[1] < 0.004 and mean_err[0] / mean_err[1] > 1.6


def test_inverse_radius_c_matches_log_polar_distance():
    s = np.array([1.2, 0.1])
    n = 102  # the origin (c = ∞) falls between nodes
    x, X, Y = grid(n, -2.0, 2.0)
    R = np.hypot(X, Y)
    T = fast_marching(1 / R, x, x, s)
    dth = (np.arctan2(Y, X) - np.arctan2(s[1], s[0]) + np.pi) % (2 * np.pi) - np.pi
    E = np.hypot(np.log(R / np.hypot(*s)), dth)
    ok = (R > 0.5) & (R < 1.9) & (np.abs(dth) < 2.5) & (np.hypot(X - s[0], Y - s[1]) > 0.3)
    rel = np.abs(T - E)[ok] / E[ok]
    assert rel.mean() < 0.004 and rel.max() < 0.03
    # half way round (Δθ = π/2 at r = 1): within 0.5 %
    d = bilinear(T, x, x, [[-0.1, 1.2]])[0]
    target = np.hypot(np.log(np.hypot(-0.1, 1.2) / np.hypot(*s)),
                      np.arctan2(1.2, -0.1) - np.arctan2(s[1], s[0]))
    assert d == pytest.approx(target, rel=5e-3)


def test_eikonal_distance_from_log_density_and_subsampled_grids():
    # a constant density: c = (p0 + λ)/(p + λ) everywhere, so d = c‖a − b‖
    x = np.linspace(-1, 1, 81)
    log_p = np.full((81, 81), np.log(0.3))
    a, b = [-0.6, -0.5], [0.7, 0.4]
    out = eikonal_distance(a, b, lam=0.2, p0=1.0, log_p=log_p, x=x, y=x)
    factor = 1.2 / 0.5
    assert out["distance"] == pytest.approx(factor * np.hypot(1.3, 0.9), rel=2e-3)
    np.testing.assert_allclose(out["c"], factor)
    lp2, x2, y2 = subsample(log_p, x, x, 2)
    assert x2[0] == x[0] and x2[-1] == x[-1] and lp2.shape == (41, 41)
    # relative units and an undefined (NaN) density: c at its largest, (p0 + λ)/λ
    c = conformal_grid(np.array([np.nan, -np.inf, 2.0]), lam=0.5, p0=1.0, log_p_ref=2.0)
    np.testing.assert_allclose(c, [3.0, 3.0, 1.0])


def test_bilinear_is_exact_for_linear_functions_and_trace_follows_the_gradient():
    x = np.linspace(-1, 1, 21)
    y = np.linspace(0, 3, 31)
    X, Y = np.meshgrid(x, y)
    P = np.random.default_rng(0).uniform([-1, 0], [1, 3], size=(50, 2))
    np.testing.assert_allclose(bilinear(2 * X - 3 * Y + 1, x, y, P), 2 * P[:, 0] - 3 * P[:, 1] + 1, atol=1e-12)
    s = np.array([0.0, 0.5])
    T = fast_marching(np.ones_like(X), x, y, s)
    path = trace_geodesic(T, x, y, [0.6, 2.5], s)
    # c ≡ 1: the traced geodesic is the straight segment
    u = (path - s) @ np.array([0.6, 2.0]) / np.hypot(0.6, 2.0)
    off = np.abs((path - s) @ np.array([2.0, -0.6]) / np.hypot(0.6, 2.0))
    assert off.max() < 0.05 and u[0] > u[-1]  # h = 0.1


def test_input_validation():
    x = np.linspace(0, 1, 11)
    with pytest.raises(ValueError, match="positive"):
        fast_marching(np.zeros((11, 11)), x, x, [0.5, 0.5])
    with pytest.raises(ValueError, match="outside the grid"):
        fast_marching(np.ones((11, 11)), x, x, [1.5, 0.5])
    with pytest.raises(ValueError, match="shape"):
        fast_marching(np.ones((10, 11)), x, x, [0.5, 0.5])
    with pytest.raises(ValueError, match="equally spaced"):
        fast_marching(np.ones((11, 11)), x ** 2, x, [0.5, 0.5])
    with pytest.raises(ValueError, match="order"):
        fast_marching(np.ones((11, 11)), x, x, [0.5, 0.5], order=3)

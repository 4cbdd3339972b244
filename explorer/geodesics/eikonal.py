"""An independent continuum reference for d_{Ψ,λ} in 2-D: fast marching for the eikonal equation |∇T| = c.

The distance from a source s, T(x) = d_{Ψ,λ}(s, x) = inf_γ ∫ c(γ) ‖γ'‖ dt, is the viscosity solution of

    |∇T(x)| = c(x),   T(s) = 0,

so a fine-grid eikonal solve gives the metric's own distance without any graph or path: the oracle that the
graph and refined lengths are checked against (Kim et al.'s Figure 4; issue 11, item 19). Not a shortest path
on a grid graph (an 8- or 16-neighbour Dijkstra keeps a metrication error of a few per cent however fine the
grid); Sethian's fast marching instead solves the upwind discretisation

    Σ_axes max(D⁻T, −D⁺T, 0)² = c²,

accepting grid nodes in increasing T (a heap), each node's value from its already accepted neighbours.
``order=1`` uses one-sided first differences (T − T₁)/h; ``order=2`` the second-order one-sided difference
(3T − 4T₁ + T₂)/(2h) wherever two accepted upwind nodes line up with T₂ ≤ T₁ (Sethian 1999, §8.2), else the
first-order one. The point source is started analytically: nodes within ``init_radius`` of s get
T = ‖x − s‖ · Simpson(c along the segment s → x). For second-order convergence that disk must keep its physical
size as h shrinks: a disk of a fixed number of cells leaves the front's curvature near the source
under-resolved on every grid (measured on c ≡ 1 over [−1, 1]²: with 2.5 cells the error halves per halving of h,
with a radius of 0.1 it falls 4×). Default: 2 % of the grid's smaller side, at least 5 cells.
Accuracy is checked against closed forms in tests/test_eikonal.py (c ≡ 1; c = e^{a y}; c = 1/r) and, on the
ring, by refining the grid (``eikonal_distance`` on grids that are subsamples of one evaluated grid).

numpy and the standard library only: the march is a Python loop over the nodes.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np

from explorer.geodesics.metric import log_conformal_factor


def _axis(v, name: str) -> tuple[float, float, int]:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if len(v) < 3:
        raise ValueError(f"{name} must hold at least 3 grid coordinates; got {len(v)}")
    d = np.diff(v)
    if not (d > 0).all() or not np.allclose(d, d[0], rtol=1e-9, atol=0):
        raise ValueError(f"{name} must be increasing and equally spaced")
    return float(v[0]), float(d[0]), len(v)


def bilinear(F: np.ndarray, x, y, points) -> np.ndarray:
    """Bilinear interpolation of the grid values ``F`` (ny, nx) on axes ``x``, ``y`` at ``points`` (M, 2);
    points outside the grid are clamped to its border cells."""
    x0, hx, nx = _axis(x, "x")
    y0, hy, ny = _axis(y, "y")
    P = np.atleast_2d(np.asarray(points, dtype=np.float64))
    u = np.clip((P[:, 0] - x0) / hx, 0.0, nx - 1.0)
    v = np.clip((P[:, 1] - y0) / hy, 0.0, ny - 1.0)
    j = np.minimum(u.astype(np.int64), nx - 2)
    i = np.minimum(v.astype(np.int64), ny - 2)
    fu, fv = u - j, v - i
    return ((1 - fv) * ((1 - fu) * F[i, j] + fu * F[i, j + 1])
            + fv * ((1 - fu) * F[i + 1, j] + fu * F[i + 1, j + 1]))


def fast_marching(c, x, y, source, order: int = 2, init_radius: float | None = None) -> np.ndarray:
    """T(x) = d(source, x) on the grid, solving |∇T| = c by fast marching (see the module docstring).

    ``c``: (ny, nx) positive finite conformal factor at the nodes (x[j], y[i]); ``x``, ``y``: equally spaced
    increasing axes; ``source``: (2,) a point inside the grid (not necessarily a node); ``order``: 1 or 2;
    ``init_radius``: the radius (in x, y units) of the disk around the source set analytically (default
    max(5 h, 0.02 × the grid's smaller side); at least 1.5 h).
    Returns T (ny, nx) float64.
    """
    c = np.asarray(c, dtype=np.float64)
    x0, hx, nx = _axis(x, "x")
    y0, hy, ny = _axis(y, "y")
    if c.shape != (ny, nx):
        raise ValueError(f"c must have shape (len(y), len(x)) = ({ny}, {nx}); got {c.shape}")
    if not (np.isfinite(c).all() and (c > 0).all()):
        raise ValueError("c must be positive and finite at every grid node")
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2; got {order!r}")
    h = max(hx, hy)
    if init_radius is None:
        init_radius = max(5 * h, 0.02 * min((nx - 1) * hx, (ny - 1) * hy))
    if not init_radius >= 1.5 * h:
        raise ValueError(f"init_radius must be at least 1.5 grid cells ({1.5 * h:.4g}); got {init_radius!r}")
    s = np.asarray(source, dtype=np.float64).reshape(-1)
    if s.shape != (2,) or not np.isfinite(s).all():
        raise ValueError(f"source must be a finite 2-D point; got {source!r}")
    if not (x0 <= s[0] <= x0 + (nx - 1) * hx and y0 <= s[1] <= y0 + (ny - 1) * hy):
        raise ValueError(f"source {s.tolist()} lies outside the grid [{x0}, {x0 + (nx - 1) * hx}] × "
                         f"[{y0}, {y0 + (ny - 1) * hy}]")

    # ---- analytic start: T = ‖x − s‖ · Simpson(c(s), c(mid), c(x)) on the nodes near the source
    r = float(init_radius)
    j_lo, j_hi = max(0, int(math.floor((s[0] - r - x0) / hx))), min(nx - 1, int(math.ceil((s[0] + r - x0) / hx)))
    i_lo, i_hi = max(0, int(math.floor((s[1] - r - y0) / hy))), min(ny - 1, int(math.ceil((s[1] + r - y0) / hy)))
    II, JJ = np.meshgrid(np.arange(i_lo, i_hi + 1), np.arange(j_lo, j_hi + 1), indexing="ij")
    XY = np.stack([x0 + JJ.ravel() * hx, y0 + II.ravel() * hy], axis=1)
    dist = np.linalg.norm(XY - s, axis=1)
    near = dist <= r
    XY, dist, II, JJ = XY[near], dist[near], II.ravel()[near], JJ.ravel()[near]
    c_s = bilinear(c, x, y, s[None])[0]
    c_mid = bilinear(c, x, y, 0.5 * (XY + s))
    T0 = dist * (c_s + 4 * c_mid + c[II, JJ]) / 6

    # ---- the march, on flat Python lists (much faster than numpy scalar indexing)
    N = nx * ny
    INF = math.inf
    T = [INF] * N
    accepted = [False] * N
    cf = c.ravel().tolist()
    heap: list[tuple[float, int]] = []
    for k, t in zip((II * nx + JJ).tolist(), T0.tolist(), strict=True):
        T[k] = t
        accepted[k] = True
    init = (II * nx + JJ).tolist()
    inv_hx2, inv_hy2 = 1.0 / (hx * hx), 1.0 / (hy * hy)
    second = order == 2

    def solve(k: int, i: int, j: int) -> float:
        # per axis: (a, b) for the term a (T − b)², from the smaller accepted neighbour
        terms = []
        for axis in (0, 1):
            if axis == 0:
                cand = ((j - 1, k - 1, k - 2, j - 2 >= 0), (j + 1, k + 1, k + 2, j + 2 < nx))
                lim, inv_h2 = nx, inv_hx2
                best = None
                for jj, k1, k2, ok2 in cand:
                    if 0 <= jj < lim and accepted[k1] and (best is None or T[k1] < best[0]):
                        best = (T[k1], k2 if ok2 else -1)
            else:
                cand = ((i - 1, k - nx, k - 2 * nx, i - 2 >= 0), (i + 1, k + nx, k + 2 * nx, i + 2 < ny))
                lim, inv_h2 = ny, inv_hy2
                best = None
                for ii, k1, k2, ok2 in cand:
                    if 0 <= ii < lim and accepted[k1] and (best is None or T[k1] < best[0]):
                        best = (T[k1], k2 if ok2 else -1)
            if best is None:
                continue
            t1, k2 = best
            if second and k2 >= 0 and accepted[k2] and T[k2] <= t1:
                terms.append((2.25 * inv_h2, (4.0 * t1 - T[k2]) / 3.0))
            else:
                terms.append((inv_h2, t1))
        cc = cf[k] * cf[k]
        if len(terms) == 2:
            (a1, b1), (a2, b2) = terms
            A, B, C = a1 + a2, a1 * b1 + a2 * b2, a1 * b1 * b1 + a2 * b2 * b2 - cc
            disc = B * B - A * C
            if disc >= 0:
                t = (B + math.sqrt(disc)) / A
                if t >= max(b1, b2):
                    return t
            # the two-sided solution is not upwind: the better one-sided one
            return min(b1 + math.sqrt(cc / a1), b2 + math.sqrt(cc / a2))
        a1, b1 = terms[0]
        return b1 + math.sqrt(cc / a1)

    def relax(k: int) -> None:
        i, j = divmod(k, nx)
        for ii, jj in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= ii < ny and 0 <= jj < nx:
                kk = ii * nx + jj
                if not accepted[kk]:
                    t = solve(kk, ii, jj)
                    if t < T[kk]:
                        T[kk] = t
                        heapq.heappush(heap, (t, kk))

    for k in init:
        relax(k)
    while heap:
        t, k = heapq.heappop(heap)
        if accepted[k] or t > T[k]:
            continue
        accepted[k] = True
        relax(k)
    return np.asarray(T, dtype=np.float64).reshape(ny, nx)


def conformal_grid(log_p: np.ndarray, lam: float, p0: float = 1.0, log_p_ref: float = 0.0) -> np.ndarray:
    """c = (p0 + λ)/(p + λ) on a grid of log p (λ, p0 in units of p_ref = exp(log_p_ref)); −inf or NaN log p
    (a density of 0, or an undefined one) give c = (p0 + λ)/λ, its largest value."""
    log_p = np.where(np.isfinite(log_p), log_p, -np.inf)
    return np.exp(log_conformal_factor(log_p, math.log(lam) + log_p_ref, math.log(p0) + log_p_ref))


def grid_axes(box: tuple[float, float, float, float], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Axes of an ``n`` × ``n`` node grid over ``box`` = (x_min, x_max, y_min, y_max)."""
    x_min, x_max, y_min, y_max = map(float, box)
    if not (x_max > x_min and y_max > y_min):
        raise ValueError(f"box must be (x_min, x_max, y_min, y_max) with max > min; got {box!r}")
    if int(n) < 3:
        raise ValueError(f"n (grid nodes per side) must be at least 3; got {n!r}")
    return np.linspace(x_min, x_max, int(n)), np.linspace(y_min, y_max, int(n))


def grid_log_density(log_density: Callable, x: np.ndarray, y: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """log p at every node (x[j], y[i]) of the grid: (len(y), len(x))."""
    X, Y = np.meshgrid(x, y)
    P = np.stack([X.ravel(), Y.ravel()], axis=1)
    out = np.empty(len(P))
    for s in range(0, len(P), batch_size):  # NaN (undefined) is allowed here: it becomes the largest c
        chunk = P[s:s + batch_size]
        v = log_density(chunk)
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        out[s:s + len(chunk)] = np.asarray(v, dtype=np.float64).reshape(-1)
    return out.reshape(len(y), len(x))


def eikonal_distance(a, b, lam: float, p0: float = 1.0, log_p_ref: float = 0.0, *, log_p: np.ndarray,
                     x: np.ndarray, y: np.ndarray, order: int = 2, init_radius: float | None = None) -> dict:
    """d_{Ψ,λ}(a, b) by fast marching from ``a`` on the grid of ``log_p`` (len(y), len(x)), read at ``b`` by
    bilinear interpolation. Returns {"distance", "T", "c", "x", "y", "h"}."""
    c = conformal_grid(log_p, lam, p0, log_p_ref)
    T = fast_marching(c, x, y, a, order=order, init_radius=init_radius)
    b = np.asarray(b, dtype=np.float64).reshape(1, 2)
    return {"distance": float(bilinear(T, x, y, b)[0]), "T": T, "c": c, "x": x, "y": y,
            "h": float(x[1] - x[0])}


def subsample(log_p: np.ndarray, x: np.ndarray, y: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``step``-th node of a grid (corners kept when (n − 1) is a multiple of ``step``): a coarser grid with
    no new density evaluations, for checking the eikonal solution's grid convergence."""
    return log_p[::step, ::step], x[::step], y[::step]


def trace_geodesic(T: np.ndarray, x: np.ndarray, y: np.ndarray, start, end, step: float | None = None,
                   max_steps: int = 100000) -> np.ndarray:
    """The geodesic from ``start`` back to the eikonal source ``end``: steps of ``step`` (default h/2) along
    −∇T (central differences, bilinear), stopping within 2h of ``end``; (M, 2) points from start to end."""
    x0, hx, nx = _axis(x, "x")
    y0, hy, ny = _axis(y, "y")
    h = min(hx, hy)
    step = 0.5 * h if step is None else float(step)
    gy, gx = np.gradient(T, hy, hx)
    p = np.asarray(start, dtype=np.float64).reshape(2)
    e = np.asarray(end, dtype=np.float64).reshape(2)
    out = [p.copy()]
    for _ in range(max_steps):
        if np.linalg.norm(p - e) <= 2 * h:
            break
        g = np.array([bilinear(gx, x, y, p[None])[0], bilinear(gy, x, y, p[None])[0]])
        n = np.linalg.norm(g)
        if not np.isfinite(n) or n == 0:
            break
        p = p - step * g / n
        out.append(p.copy())
    out.append(e)
    return np.asarray(out)

"""The convergence study of Kim et al.'s Figure 4: graph distance error vs number of points.

For endpoints a, b and a density p, the graph estimate d_N(a, b) on N points (uniform over a box, or drawn
from p) plus {a, b} is compared with a reference d_ref that owes nothing to graphs or paths: the eikonal
solution |∇T| = c by second-order fast marching on a fine grid over the box (``explorer.geodesics.eikonal``;
on this smooth mixture it is converged to about 1e-4 relative at 401 × 401 nodes). Before, the reference was a
dense graph's own path refined by ``refine_path``: the method measured against itself, blind to an error
the two share (issue 11, item 19). Relative error |d_N − d_ref| / d_ref, at a large λ (nearly
Euclidean, straight geodesics) and a small λ (density-hugging geodesics). Points drawn from p leave the
low-density gap empty, so at large λ their error stops shrinking: the reason for background points.

The graph is the symmetric k-NN graph with k growing as ``auto_k(N)`` = 10·sqrt(N/250): in 2-D its radius then
shrinks as ε ∝ N^(−1/4), so ε → 0 while N ε² → ∞, the regime of the paper's convergence result. With a fixed
k the k-NN graph keeps a constant stretch error (a few per cent in 2-D) however many points it gets.
"""

from __future__ import annotations

import warnings

import numpy as np

from explorer.density.analytic import GaussianMixtureDensity
from explorer.geodesics.eikonal import eikonal_distance, grid_axes, grid_log_density
from explorer.geodesics.estimator import GenerativeGeodesics


def ring_density(n_modes: int = 8, radius: float = 1.0, std: float = 0.2) -> GaussianMixtureDensity:
    """An equal-weight mixture of ``n_modes`` isotropic Gaussians on a circle (like the toy2d/ring model)."""
    ang = np.linspace(0.0, 2 * np.pi, n_modes, endpoint=False)
    return GaussianMixtureDensity(radius * np.c_[np.cos(ang), np.sin(ang)], std)


def auto_k(n: int) -> int:
    """k(N) = max(10, round(10·sqrt(N/250))): a neighbourhood that shrinks in radius but grows in count."""
    return max(10, int(round(10 * np.sqrt(n / 250))))


def _graph_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray, density, lam: float, p0: float, k: int,
                    n_quad: int) -> tuple[GenerativeGeodesics, int, int]:
    X = np.concatenate([points, a[None], b[None]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # disconnection shows up as inf in the table
        g = GenerativeGeodesics(lam=lam, p0=p0, k=k, n_quad=n_quad).fit(X, density)
    return g, len(X) - 2, len(X) - 1


def reference_distances(density, a, b, lams, p0: float = 1.0, box: tuple[float, float] = (-1.6, 1.6),
                        grid: int = 401, order: int = 2) -> dict[float, float]:
    """d_ref(a, b) for each λ: the eikonal distance by fast marching on a ``grid`` × ``grid`` node grid over the
    square ``box``, with c from ``density`` (log p, evaluated once at every node)."""
    x, y = grid_axes((box[0], box[1], box[0], box[1]), grid)
    log_p = grid_log_density(density, x, y)
    return {lam: eikonal_distance(a, b, lam, p0, log_p=log_p, x=x, y=y, order=order)["distance"] for lam in lams}


def convergence_study(density=None, a=(1.0, 0.0), b=(-1.0, 0.0), sizes=(250, 500, 1000, 2000),
                      lams=(10.0, 0.01), p0: float = 1.0, box: tuple[float, float] = (-1.6, 1.6),
                      k: int | None = None, n_quad: int = 3, ref_grid: int = 401, n_repeats: int = 2,
                      seed: int = 0) -> list[dict]:
    """Rows ``{sampling, lam, n, k, distance, reference, rel_error, rel_error_std, n_disconnected}``.

    ``k=None`` uses ``auto_k(n)``; an integer fixes it for every size.

    ``density`` (default ``ring_density()``) needs ``__call__`` (log p) and ``sample(n, seed)`` (as
    ``GaussianMixtureDensity``). ``reference`` is the eikonal distance on a ``ref_grid`` × ``ref_grid`` grid
    over the box (``reference_distances``). ``rel_error`` is the mean over ``n_repeats`` draws of
    |d_N − d_ref| / d_ref (disconnected draws excluded and counted).
    """
    density = ring_density() if density is None else density
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    refs = reference_distances(density, a, b, lams, p0, box, grid=ref_grid)
    rows = []
    for sampling in ("uniform", "density"):
        for n in sizes:
            d = {lam: [] for lam in lams}
            k_n = auto_k(n) if k is None else int(k)
            for r in range(n_repeats):
                s = seed + 1000 * r + n
                pts = (np.random.default_rng(s).uniform(box[0], box[1], size=(n, len(a))) if sampling == "uniform"
                       else density.sample(n, seed=s))
                g, ia, ib = _graph_distance(pts, a, b, density, lams[0], p0, k_n, n_quad)
                for lam in lams:
                    d[lam].append(float(g.set_lam(lam).distances(ia)[ib]))
            for lam in lams:
                v = np.array(d[lam])
                fin = v[np.isfinite(v)]
                err = np.abs(fin - refs[lam]) / refs[lam]
                rows.append({"sampling": sampling, "lam": lam, "n": n, "k": k_n,
                             "distance": float(fin.mean()) if fin.size else float("inf"),
                             "reference": refs[lam],
                             "rel_error": float(err.mean()) if err.size else float("inf"),
                             "rel_error_std": float(err.std()) if err.size else float("nan"),
                             "n_disconnected": int((~np.isfinite(v)).sum())})
    return rows

"""The convergence study of Kim et al.'s Figure 4: graph distance error vs number of points.

For endpoints a, b and a density p, the graph estimate d_N(a, b) on N points (uniform over a box, or drawn
from p) plus {a, b} is compared with a reference d_ref: a dense graph's geodesic refined by minimising its
discretised metric length (``refine_path``). Relative error |d_N − d_ref| / d_ref, at a large λ (nearly
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
from explorer.geodesics.estimator import GenerativeGeodesics
from explorer.geodesics.interpolation import refine_path


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


def reference_distance(density, a, b, lam: float, p0: float = 1.0, box: tuple[float, float] = (-1.6, 1.6),
                       n_ref: int = 4000, k: int = 15, n_quad: int = 5, n_points: int = 96,
                       seed: int = 12345) -> dict:
    """d_ref(a, b): geodesic on a dense graph (half uniform, half from p), then refined (``density.torch``)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    pts = np.concatenate([rng.uniform(box[0], box[1], size=(n_ref // 2, len(a))),
                          density.sample(n_ref - n_ref // 2, seed=seed + 1)])
    g, ia, ib = _graph_distance(pts, a, b, density, lam, p0, k, n_quad)
    path, d_graph = g.path(ia, ib, return_length=True)
    refined = refine_path(g.X_[path], density.torch, lam=lam, p0=p0, n_quad=n_quad, n_points=n_points)
    return {"graph": d_graph, "refined": refined.length_after, "points": refined.points}


def convergence_study(density=None, a=(1.0, 0.0), b=(-1.0, 0.0), sizes=(250, 500, 1000, 2000),
                      lams=(10.0, 0.01), p0: float = 1.0, box: tuple[float, float] = (-1.6, 1.6),
                      k: int | None = None, n_quad: int = 3, n_ref: int = 4000, n_repeats: int = 2,
                      seed: int = 0) -> list[dict]:
    """Rows ``{sampling, lam, n, k, distance, reference, rel_error, rel_error_std, n_disconnected}``.

    ``k=None`` uses ``auto_k(n)``; an integer fixes it for every size.

    ``density`` (default ``ring_density()``) needs ``__call__`` (log p), ``sample(n, seed)`` and ``torch``
    (as ``GaussianMixtureDensity``). ``rel_error`` is the mean over ``n_repeats`` draws of
    |d_N − d_ref| / d_ref (disconnected draws excluded and counted).
    """
    density = ring_density() if density is None else density
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    refs = {lam: reference_distance(density, a, b, lam, p0, box, n_ref=n_ref, seed=seed + 777)["refined"]
            for lam in lams}
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

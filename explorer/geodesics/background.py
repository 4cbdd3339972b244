"""Uniform background points over the bounding box of the data.

With data-only nodes, a geodesic that should cross a low-density region cannot (at large λ the graph
error then stops shrinking with more data points); background nodes let it (DESIGN.md §3).
"""

from __future__ import annotations

import numpy as np

from explorer.density.analytic import as_points


def add_background_points(X, n: int, margin: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``X`` followed by ``n`` points uniform over its bounding box widened by ``margin`` × its extent per side.

    Returns ``(points, is_background)``: ``points`` is ``(N + n, D)`` float64 with the original points
    first (their indices are unchanged), ``is_background`` a boolean mask of length N + n.
    """
    X = as_points(X, name="X")
    n = int(n)
    if n < 0:
        raise ValueError(f"n (background points) must be non-negative; got {n}")
    if margin < 0:
        raise ValueError(f"margin must be non-negative; got {margin}")
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = margin * (hi - lo)
    B = np.random.default_rng(seed).uniform(lo - pad, hi + pad, size=(n, X.shape[1]))
    mask = np.r_[np.zeros(len(X), dtype=bool), np.ones(n, dtype=bool)]
    return np.concatenate([X, B]), mask

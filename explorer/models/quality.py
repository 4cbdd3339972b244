"""Sample-quality figures for the built-in models."""

from __future__ import annotations

import numpy as np


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced 1-Wasserstein distance: mean over random unit directions θ of W1(θ·a, θ·b).

    W1 of two 1-D empirical measures is ∫_0^1 |F_a⁻¹(u) − F_b⁻¹(u)| du, exact on the grid of
    K = max(|a|, |b|) midpoints u_k when one size divides the other (for equal sizes: the mean gap of
    the sorted values).
    """
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    theta = np.random.default_rng(seed).standard_normal((a.shape[1], n_projections))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    pa, pb = np.sort(a @ theta, axis=0), np.sort(b @ theta, axis=0)
    u = (np.arange(max(len(a), len(b))) + 0.5) / max(len(a), len(b))
    qa, qb = pa[(u * len(a)).astype(int)], pb[(u * len(b)).astype(int)]
    return float(np.abs(qa - qb).mean())

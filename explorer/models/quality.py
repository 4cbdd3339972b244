"""Sample-quality figures for the built-in models."""

from __future__ import annotations

import numpy as np


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced 1-Wasserstein distance: mean over random unit directions θ of W1(θ·a, θ·b).

    Equal-size samples: W1 of two 1-D empirical measures is the mean gap of their sorted values.
    """
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    if len(a) != len(b):
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
    theta = np.random.default_rng(seed).standard_normal((a.shape[1], n_projections))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    pa, pb = np.sort(a @ theta, axis=0), np.sort(b @ theta, axis=0)
    return float(np.abs(pa - pb).mean())

"""Built-in 2-D toy data sets, drawn deterministically from a seed.

Every set is scaled to a spread of about 1 (coordinates roughly within [-2.5, 2.5]), so that the
noise schedule and the on-/off-manifold radius mean the same on all of them.
"""

from __future__ import annotations

import numpy as np

TOY2D_DATASETS = ("moons", "circles", "ring", "spiral")

RING_MODES = 8
RING_RADIUS = 2.0
RING_STD = 0.15


def ring_centres() -> np.ndarray:
    """The 8 mode centres of ``ring``: RING_RADIUS·(cos 2πk/8, sin 2πk/8)."""
    angle = 2 * np.pi * np.arange(RING_MODES) / RING_MODES
    return RING_RADIUS * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def sample_toy2d(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` points of data set ``name``; returns (points (n, 2) float32, labels (n,) int)."""
    if name not in TOY2D_DATASETS:
        raise ValueError(f"unknown toy2d dataset {name!r}; valid: {', '.join(TOY2D_DATASETS)}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    if name == "moons":  # i.i.d. angles (sklearn's make_moons spaces them evenly: no sampling noise)
        y = rng.integers(0, 2, size=n)
        a = rng.uniform(0, np.pi, size=n)
        x = np.where(y[:, None] == 0, np.stack([np.cos(a), np.sin(a)], 1),
                     np.stack([1 - np.cos(a), 0.5 - np.sin(a)], 1))
        x = (x + 0.06 * rng.standard_normal((n, 2)) - [0.5, 0.25]) * 1.6
    elif name == "circles":
        y = rng.integers(0, 2, size=n)
        a = rng.uniform(0, 2 * np.pi, size=n)
        x = np.where(y[:, None] == 0, 1.0, 0.5) * np.stack([np.cos(a), np.sin(a)], 1)
        x = (x + 0.04 * rng.standard_normal((n, 2))) * 2.0
    elif name == "ring":
        y = rng.integers(0, RING_MODES, size=n)
        x = ring_centres()[y] + RING_STD * rng.standard_normal((n, 2))
    else:  # spiral: two interleaved arms, r ∝ angle
        y = rng.integers(0, 2, size=n)
        s = np.sqrt(rng.uniform(0.05, 1.0, size=n))
        angle = 3.0 * np.pi * s + np.pi * y
        r = 2.2 * s
        x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
        x = x + 0.06 * rng.standard_normal((n, 2))
    return np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)


def ring_mode_of(x: np.ndarray) -> np.ndarray:
    """Index of the nearest ring centre for each point of ``x`` (n, 2)."""
    d = ((np.asarray(x)[:, None, :] - ring_centres()[None]) ** 2).sum(-1)
    return d.argmin(1)

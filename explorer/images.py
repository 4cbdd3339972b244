"""Image-model display helpers (Streamlit-free): flat samples → crisp upscaled grey-scale strips and grids."""

from __future__ import annotations

import numpy as np


def to_grey(x, image_shape: tuple[int, int], lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """Flat samples (n, H·W) in [lo, hi] → (n, H, W) grey levels in [0, 1], clipped."""
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), *image_shape)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def image_strip(x, image_shape: tuple[int, int], scale: int = 8, gap: int = 2, columns: int | None = None,
                gap_value: int = 255) -> np.ndarray:
    """Samples (n, H·W) as one uint8 picture: each image upscaled ``scale``× by pixel repetition (no blur),
    ``columns`` per row (default all in one row), ``gap`` pixels of ``gap_value`` between them."""
    imgs = to_grey(x, image_shape)
    n = len(imgs)
    if n == 0:
        raise ValueError("image_strip needs at least one image")
    if scale < 1 or gap < 0:
        raise ValueError(f"scale must be ≥ 1 and gap ≥ 0; got {scale}, {gap}")
    cols = n if columns is None else max(1, min(int(columns), n))
    rows = -(-n // cols)
    H, W = image_shape[0] * scale, image_shape[1] * scale
    out = np.full((rows * H + (rows - 1) * gap, cols * W + (cols - 1) * gap), gap_value, dtype=np.uint8)
    big = np.repeat(np.repeat((imgs * 255).round().astype(np.uint8), scale, axis=1), scale, axis=2)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (H + gap):r * (H + gap) + H, c * (W + gap):c * (W + gap) + W] = big[k]
    return out

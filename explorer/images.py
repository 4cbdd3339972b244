"""Image-model display helpers (Streamlit-free): flat samples → crisp upscaled grey-scale strips and grids."""

from __future__ import annotations

import numpy as np


def to_grey(x, image_shape, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """Flat samples (…, H·W) in [lo, hi] (model space: [−1, 1]) → (…, H, W) grey levels in [0, 1], clipped."""
    x = np.asarray(x, dtype=np.float64)
    h, w = (int(s) for s in image_shape)
    if x.shape[-1] != h * w:
        raise ValueError(f"a sample has {x.shape[-1]} values; image_shape {h}×{w} needs {h * w}")
    return np.clip((x.reshape(*x.shape[:-1], h, w) - lo) / (hi - lo), 0.0, 1.0)


def upscale(grey, scale: int) -> np.ndarray:
    """Grey levels (…, H, W) in [0, 1] → uint8 (…, H·scale, W·scale) by pixel repetition: crisp, no blur."""
    img = np.round(np.clip(np.asarray(grey, np.float64), 0, 1) * 255).astype(np.uint8)
    return np.repeat(np.repeat(img, scale, axis=-2), scale, axis=-1)


def image_strip(x, image_shape: tuple[int, int], scale: int = 8, gap: int = 2, columns: int | None = None,
                gap_value: int = 255) -> np.ndarray:
    """Samples (n, H·W) as one uint8 picture: each image upscaled ``scale``× by pixel repetition (no blur),
    ``columns`` per row (default all in one row), ``gap`` pixels of ``gap_value`` between them."""
    x = np.asarray(x)
    imgs = to_grey(x.reshape(len(x), -1), image_shape)
    n = len(imgs)
    if n == 0:
        raise ValueError("image_strip needs at least one image")
    if scale < 1 or gap < 0:
        raise ValueError(f"scale must be ≥ 1 and gap ≥ 0; got {scale}, {gap}")
    cols = n if columns is None else max(1, min(int(columns), n))
    rows = -(-n // cols)
    H, W = image_shape[0] * scale, image_shape[1] * scale
    out = np.full((rows * H + (rows - 1) * gap, cols * W + (cols - 1) * gap), gap_value, dtype=np.uint8)
    big = upscale(imgs, scale)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (H + gap):r * (H + gap) + H, c * (W + gap):c * (W + gap) + W] = big[k]
    return out

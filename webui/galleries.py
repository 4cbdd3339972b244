"""Image galleries and mosaics as pure arrays (no Streamlit): flat model-space images → grey levels, one
mosaic per gallery (a single heatmap trace), the order of a gallery sorted by a descriptor."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from explorer.images import image_strip, to_grey


def grey_images(x: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Flat model-space images (…, h·w) in [−1, 1] → grey levels (N, h, w) in [0, 1] for display, clipped."""
    h, w = (int(s) for s in image_shape)
    return to_grey(np.asarray(x).reshape(-1, h * w), (h, w))


def mosaic(images: np.ndarray, ncols: int, gap: int = 1) -> dict:
    """Images (N, h, w) tiled row-major into one (H, W) array for a single heatmap trace (NaN in the gaps, drawn
    transparent), with each image's centre ``x``, ``y`` and its box ``[x0, y0, x1, y1]`` in heatmap coordinates
    (pixel (r, c) of the mosaic sits at x = c, y = r; draw with the y axis reversed)."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or not len(images):
        raise ValueError(f"images must be a non-empty (N, h, w) array; got shape {images.shape}")
    N, h, w = images.shape
    ncols = max(1, min(int(ncols), N))
    nrows = math.ceil(N / ncols)
    z = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.nan)
    rows, cols = np.divmod(np.arange(N), ncols)
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        z[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = images[k]
    x0, y0 = cols * (w + gap) - 0.5, rows * (h + gap) - 0.5
    return {"z": z, "x": x0 + w / 2, "y": y0 + h / 2, "boxes": np.stack([x0, y0, x0 + w, y0 + h], 1),
            "nrows": nrows, "ncols": ncols}


def sorted_by(values: np.ndarray, ascending: bool = True) -> np.ndarray:
    """Indices that sort ``values`` (NaN last), stable: the order of a gallery sorted by a descriptor."""
    v = np.asarray(values, dtype=np.float64)
    key = np.where(np.isnan(v), np.inf, v if ascending else -v)
    return np.argsort(key, kind="stable")


def strip(points, image_shape, scale: int = 8) -> np.ndarray:
    """Flat images (n, h·w) side by side as one crisp uint8 picture (upscaled ``scale``×, no blur)."""
    return image_strip(np.asarray(points), image_shape, scale=scale)

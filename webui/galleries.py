"""Image galleries and mosaics as pure arrays (no Streamlit): flat model-space images → grey levels, or RGB through
the model's own ``to_display`` (a pipeline's colour images; a latent model's latents are decoded), one mosaic per
gallery (a single heatmap or image trace), the order of a gallery sorted by a descriptor."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from explorer.images import image_strip, to_grey


def grey_images(x: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Flat model-space images (…, h·w) in [−1, 1] → grey levels (N, h, w) in [0, 1] for display, clipped."""
    h, w = (int(s) for s in image_shape)
    return to_grey(np.asarray(x).reshape(-1, h * w), (h, w))


def display_of(model):
    """The model's ``to_display`` when its images need it (colour, or a latent model's decoded latents), else None
    (grey images drawn from their values directly, as for the digit models)."""
    if getattr(model, "image_shape", None) is None:
        return None
    if int(getattr(model, "channels", 1)) == 1 and not getattr(model, "latent_space", False):
        return None
    return model.to_display


def pixels(x, image_shape: Sequence[int], display=None) -> np.ndarray:
    """Flat images → (N, h, w) grey levels in [0, 1] (``grey_images``), or with ``display`` (a model's
    ``to_display``: uint8 (N, h, w, C)) RGB (N, h, w, 3) in [0, 1] (grey when C = 1)."""
    if display is None:
        return grey_images(x, image_shape)
    img = np.asarray(display(np.asarray(x)), dtype=np.float64) / 255.0
    return img[..., 0] if img.shape[-1] == 1 else img


def mosaic(images: np.ndarray, ncols: int, gap: int = 1) -> dict:
    """Images (N, h, w) or (N, h, w, 3) tiled row-major into one (H, W) or (H, W, 3) array for a single trace (NaN
    in the gaps, drawn transparent), with each image's centre ``x``, ``y`` and its box ``[x0, y0, x1, y1]`` in
    heatmap coordinates (pixel (r, c) of the mosaic sits at x = c, y = r; draw with the y axis reversed)."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim not in (3, 4) or not len(images):
        raise ValueError(f"images must be a non-empty (N, h, w) or (N, h, w, 3) array; got shape {images.shape}")
    N, h, w = images.shape[:3]
    ncols = max(1, min(int(ncols), N))
    nrows = math.ceil(N / ncols)
    z = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap, *images.shape[3:]), np.nan)
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


def strip(points, image_shape, scale: int = 8, display=None, gap: int = 2) -> np.ndarray:
    """Flat images (n, h·w) side by side as one crisp uint8 picture (upscaled ``scale``×, no blur); with
    ``display`` (a model's ``to_display``) in colour, white gaps of ``gap`` pixels."""
    if display is None:
        return image_strip(np.asarray(points), image_shape, scale=scale)
    img = np.asarray(display(np.asarray(points)), dtype=np.uint8)
    img = img.repeat(scale, axis=1).repeat(scale, axis=2)
    n, H, W, C = img.shape
    out = np.full((H, n * W + (n - 1) * gap, C), 255, dtype=np.uint8)
    for k in range(n):
        out[:, k * (W + gap):k * (W + gap) + W] = img[k]
    return out[..., 0] if C == 1 else out

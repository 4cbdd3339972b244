"""Descriptor maps drawn as images that a click reliably lands on (pure functions; no Streamlit).

A map of n × n cells is coloured through a Plotly colour scale into an RGB image, each cell ``scale`` pixels wide
(crisp, no smoothing), with the v axis pointing up as on a chart: row i of the map (v[i]) is image row n − 1 − i.
The page shows it with ``streamlit_image_coordinates``, which sends the clicked pixel and the size the image was
drawn at, ``{"x", "y", "width", "height", "unix_time"}`` (recorded from Chromium in
tests/browser_payloads.json); ``cell_from_click`` maps that to (i, j). No WebGL context is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Colour of cells whose value is NaN or infinite.
MISSING = (190, 190, 190)


def colour_lut(colorscale: str = "Viridis", n: int = 256) -> np.ndarray:
    """An (n, 3) uint8 lookup table of a Plotly colour scale."""
    from plotly.colors import get_colorscale, sample_colorscale, unlabel_rgb

    colours = sample_colorscale(get_colorscale(colorscale), list(np.linspace(0.0, 1.0, n)))
    return np.array([[round(c) for c in unlabel_rgb(s)] for s in colours], dtype=np.uint8)


def value_range(values: np.ndarray) -> tuple[float, float]:
    """(min, max) over the finite values (0, 1 when there are none; a constant map gets a unit range)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def colorize(values: np.ndarray, colorscale: str = "Viridis", lo: float | None = None,
             hi: float | None = None) -> np.ndarray:
    """(n_v, n_u) values → (n_v, n_u, 3) uint8 colours, linear between ``lo`` and ``hi`` (default the finite
    range), clipped; non-finite values in MISSING grey. Row i stays row i (``heatmap_image`` flips)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"a map must be 2-D (n_v, n_u); got shape {v.shape}")
    d_lo, d_hi = value_range(v)
    lo = d_lo if lo is None else float(lo)
    hi = d_hi if hi is None else float(hi)
    lut = colour_lut(colorscale)
    frac = np.clip((np.nan_to_num(v, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    out = lut[np.round(frac * (len(lut) - 1)).astype(int)]
    out[~np.isfinite(v)] = MISSING
    return out


def heatmap_image(values: np.ndarray, scale: int, colorscale: str = "Viridis",
                  marks: Sequence[Mapping] = (), lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """The map as an RGB image (n_v·scale, n_u·scale, 3), v up, with ``marks`` drawn on cells: dicts with ``i``, ``j``,
    ``colour`` (RGB) and ``shape`` ``"ring"`` (a frame around the cell) or ``"cross"`` (an × over it)."""
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be at least 1; got {scale}")
    rgb = colorize(values, colorscale, lo, hi)[::-1]  # row 0 of the image is the top: the largest v
    img = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    n_v = rgb.shape[0]
    for m in marks:
        i, j = int(m["i"]), int(m["j"])
        if not (0 <= i < n_v and 0 <= j < rgb.shape[1]):
            continue
        r0, c0 = (n_v - 1 - i) * scale, j * scale
        colour = np.array(m.get("colour", (255, 0, 0)), dtype=np.uint8)
        if m.get("shape", "ring") == "cross":
            k = np.arange(scale)
            img[r0 + k, c0 + k] = colour
            img[r0 + k, c0 + scale - 1 - k] = colour
        else:
            w = max(1, scale // 6)
            img[r0:r0 + scale, c0:c0 + w] = colour
            img[r0:r0 + scale, c0 + scale - w:c0 + scale] = colour
            img[r0:r0 + w, c0:c0 + scale] = colour
            img[r0 + scale - w:r0 + scale, c0:c0 + scale] = colour
    return img


def cell_from_click(click, n_v: int, n_u: int | None = None) -> tuple[int, int] | None:
    """(i, j) of the cell a click on a ``heatmap_image`` landed on, or None for no click (or a malformed one).

    ``click``: what ``streamlit_image_coordinates`` returns, ``{"x", "y", "width", "height", ...}`` in the pixels
    of the drawn image (which may be scaled to its column). Column j = ⌊x / width · n_u⌋; the image's row from the
    top is ⌊y / height · n_v⌋, which is map row i = n_v − 1 − that (v points up)."""
    n_u = n_v if n_u is None else n_u
    if not isinstance(click, Mapping):
        return None
    try:
        x, y = float(click["x"]), float(click["y"])
        width, height = float(click["width"]), float(click["height"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (width > 0 and height > 0 and 0 <= x < width and 0 <= y < height):
        return None
    j = min(int(x / width * n_u), n_u - 1)
    row = min(int(y / height * n_v), n_v - 1)
    return n_v - 1 - row, j


def marks_for(anchor_cells: Sequence[tuple[int, int]], selected: tuple[int, int] | None) -> list[dict]:
    """Marks for the anchors (white crosses) and the selected cell (a red frame)."""
    out = [{"i": i, "j": j, "colour": (255, 255, 255), "shape": "cross"} for i, j in anchor_cells]
    if selected is not None:
        out.append({"i": selected[0], "j": selected[1], "colour": (230, 30, 30), "shape": "ring"})
    return out


def nearest_cell(u: np.ndarray, v: np.ndarray, coords: np.ndarray) -> list[tuple[int, int]]:
    """The cells (i, j) whose centres are nearest to plane coordinates (u, v) (the anchors), inside the grid."""
    out = []
    for cu, cv in np.asarray(coords, dtype=np.float64).reshape(-1, 2):
        if u[0] - 1e-9 <= cu <= u[-1] + 1e-9 and v[0] - 1e-9 <= cv <= v[-1] + 1e-9:
            out.append((int(np.argmin(np.abs(v - cv))), int(np.argmin(np.abs(u - cu)))))
    return out

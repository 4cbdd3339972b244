"""Chart helpers (pure): colour ranges and the data of clickable grids."""

from __future__ import annotations

import numpy as np


def log_p_color_range(log_p: np.ndarray, span: float = 25.0) -> dict:
    """Heatmap ``zmin``/``zmax`` for a log p map: the top ``span`` nats below its maximum. A model's exact
    density falls to log p ≈ −1e5 far from the data, which would otherwise wash the data region out."""
    finite = np.asarray(log_p, np.float64)[np.isfinite(log_p)]
    if not len(finite):
        return {}
    top = float(finite.max())
    return {"zmin": max(float(finite.min()), top - span), "zmax": top}


def grid_cells(u: np.ndarray, v: np.ndarray, values: np.ndarray) -> dict:
    """Scatter data for an (n, n) map drawn as square markers: ``x, y, value, customdata=[i, j]`` (row i ↔ v[i])."""
    values = np.asarray(values)
    n_v, n_u = values.shape
    if (len(v), len(u)) != (n_v, n_u):
        raise ValueError(f"map shape {values.shape} does not match len(v)={len(v)}, len(u)={len(u)}")
    ii, jj = np.meshgrid(np.arange(n_v), np.arange(n_u), indexing="ij")
    return {"x": np.asarray(u)[jj.ravel()], "y": np.asarray(v)[ii.ravel()], "value": values.ravel(),
            "customdata": np.stack([ii.ravel(), jj.ravel()], 1)}


#: Above this many points a scatter uses WebGL; below it SVG, so that a page holds only a handful of WebGL contexts
#: (browsers keep about 16 and drop the oldest, which blanks its chart).
WEBGL_ABOVE = 5000


def scatter_trace(n_points: int):
    """``go.Scatter`` (SVG) for up to WEBGL_ABOVE points, ``go.Scattergl`` beyond."""
    import plotly.graph_objects as go

    return go.Scattergl if int(n_points) > WEBGL_ABOVE else go.Scatter


def categorical_colours(n: int) -> list[str]:
    """``n`` distinct colours for clusters or classes (Plotly's qualitative palettes, repeated beyond 24)."""
    from plotly.colors import qualitative

    palette = qualitative.D3 + qualitative.Dark24
    return [palette[i % len(palette)] for i in range(int(n))]

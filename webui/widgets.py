"""Shared Streamlit widgets: the cost confirm, progress bars, clickable image galleries and downloads."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from webui import costs, downloads, galleries, profiles, session


def confirm_cost(name: str, seconds: float, key: str) -> bool:
    """True when the work may run: cheap work at once; work over the confirm limit after a click."""
    limit = profiles.profile()["confirm_seconds"]
    if not costs.needs_confirm(seconds, limit):
        return True
    if st.session_state.get(f"_confirmed_{key}"):
        return True
    st.info(f"{name} will take {costs.describe_seconds(seconds)} on this machine "
            "(then it is cached on disk and instant next time).")
    if st.button(f"Compute {name}", key=f"confirm_{key}", type="primary"):
        st.session_state[f"_confirmed_{key}"] = True
        return True
    return False


class Progress:
    """``st.progress`` driven by a library callback ``progress(fraction)`` or ``progress(fraction, what)``."""

    def __init__(self, label: str):
        self.label = label
        self.bar = st.progress(0.0, text=label)

    def __call__(self, frac: float, what: str | None = None) -> None:
        frac = min(max(float(frac), 0.0), 1.0)
        self.bar.progress(frac, text=f"{self.label}: {what + ', ' if what else ''}{frac:.0%}")

    def done(self) -> None:
        self.bar.empty()


GREYS = [[0.0, "black"], [1.0, "white"]]


def gallery_figure(x, image_shape, ids, *, ncols: int = 12, pixel: int = 5, highlight=(), values=None,
                   value_name: str = "", hover=None, title: str | None = None, name: str = "images",
                   display=None) -> go.Figure:
    """Flat model-space images ``x`` (N, h·w) in [−1, 1] as one clickable mosaic: a grey heatmap of all images (the
    trace ``name``) and one invisible square marker per image carrying ``ids`` as customdata (hover text
    ``hover``). ``highlight``: ids framed in red; ``values``: each image framed in that value's Plasma colour,
    with a colour bar titled ``value_name``. Frames are shapes in data coordinates, so they stay on their images
    at any figure size. ``display`` (a model's ``to_display``, ``galleries.display_of``): colour images (or decoded
    latents) drawn as one RGBA image trace."""
    from plotly.colors import sample_colorscale

    pix = galleries.pixels(x, image_shape, display)
    h, w = pix.shape[1:3]
    m = galleries.mosaic(pix, ncols)
    ids = np.asarray(ids)
    hover = [f"{value}" for value in ids] if hover is None else list(hover)
    if m["z"].ndim == 3:  # RGB: the gaps transparent
        alpha = np.where(np.isnan(m["z"][..., :1]), 0, 255)
        rgba = np.concatenate([np.nan_to_num(m["z"]) * 255, alpha], axis=2).round().astype(np.uint8)
        fig = go.Figure(go.Image(z=rgba, colormodel="rgba", hoverinfo="skip", name=name))
    else:
        fig = go.Figure(go.Heatmap(z=m["z"], colorscale=GREYS, zmin=0.0, zmax=1.0, showscale=False,
                                   hoverinfo="skip", name=name))
    marker = {"symbol": "square", "size": h * pixel, "opacity": 0.0, "color": "white"}
    shapes = []
    if values is not None:
        vals = np.asarray(values, dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        marker.update(color=vals, colorscale="Plasma", cmin=lo, cmax=hi, showscale=True,
                      colorbar={"title": value_name, "thickness": 10, "len": 0.9})
        frac = np.clip((np.nan_to_num(vals, nan=lo) - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
        for (x0, y0, x1, y1), c in zip(m["boxes"], sample_colorscale("Plasma", frac.tolist()), strict=True):
            shapes.append({"type": "rect", "x0": x0 - 0.25, "y0": y0 - 0.25, "x1": x1 + 0.25, "y1": y1 + 0.25,
                           "line": {"color": c, "width": 2}})
    marked = {int(i) for i in highlight}
    for (x0, y0, x1, y1), i in zip(m["boxes"], ids, strict=True):
        if int(i) in marked:
            shapes.append({"type": "rect", "x0": x0 - 0.4, "y0": y0 - 0.4, "x1": x1 + 0.4, "y1": y1 + 0.4,
                           "line": {"color": "#d62728", "width": 3}})
    fig.add_trace(go.Scatter(x=m["x"], y=m["y"], mode="markers", customdata=ids, text=hover, marker=marker,
                             name=f"{name} (select)", hovertemplate="%{text}<extra></extra>"))
    H, W = m["z"].shape[:2]
    top = 40 if title else 8
    fig.update_layout(title=title, width=W * pixel + 40 + (90 if values is not None else 0),
                      height=H * pixel + top + 16, margin={"l": 10, "r": 10, "t": top, "b": 10}, showlegend=False,
                      plot_bgcolor="rgba(0,0,0,0)", shapes=shapes)
    fig.update_xaxes(visible=False, range=[-1, W], fixedrange=True)
    fig.update_yaxes(visible=False, range=[H, -1], scaleanchor="x", scaleratio=1, fixedrange=True)
    return fig


def image_gallery(x, image_shape, ids, key: str, *, selectable: bool = True, **kwargs) -> list:
    """Draw ``gallery_figure``; with ``selectable``, return the ids the user just clicked (else [])."""
    fig = gallery_figure(x, image_shape, ids, **kwargs)
    if not selectable:
        st.plotly_chart(fig, key=key, width="content", config={"displayModeBar": False})
        return []
    ev = st.plotly_chart(fig, key=key, width="content", on_select="rerun", selection_mode="points",
                         config={"displayModeBar": False})
    return session.new_selection(key, ev)


def show_image(x, image_shape, caption: str, scale: int = 20, display=None) -> None:
    """One flat model-space image as a crisp (nearest-neighbour upscaled) picture (``display``: in colour)."""
    if display is not None:
        st.image(galleries.strip(np.asarray(x).reshape(1, -1), image_shape, scale, display), caption=caption)
        return
    pix = galleries.grey_images(x, image_shape)[0]
    st.image(np.kron(pix, np.ones((scale, scale))), caption=caption, clamp=True)


def _offered(key: str, file_name: str, data: bytes) -> bytes:
    """Remember what each download button of this run carries (its file name and parameters)."""
    st.session_state.setdefault("_downloads", {})[key] = {"file_name": file_name,
                                                         "params": downloads.read_params(data)}
    return data


def download_csv(label: str, table, params: dict, file_name: str, key: str) -> None:
    data = _offered(key, file_name, downloads.csv_bytes(table, params))
    st.download_button(label, data, file_name=file_name, mime="text/csv", key=key, on_click="ignore",
                       help="CSV; its first line '# params: {...}' holds the parameters that produced it")


def download_npz(label: str, arrays: dict, params: dict, file_name: str, key: str) -> None:
    data = _offered(key, file_name, downloads.npz_bytes(arrays, params))
    st.download_button(label, data, file_name=file_name, mime="application/octet-stream", key=key,
                       on_click="ignore", help="NumPy .npz; the entry 'params_json' holds the parameters that made it")


def cli_hint(command: str) -> None:
    """An expander with the CLI command that recomputes this view (through the same disk cache)."""
    with st.expander("The same from the command line"):
        st.code(command, language="bash")
        st.caption("It runs the same computation through the same disk cache: a page opens its results at once.")

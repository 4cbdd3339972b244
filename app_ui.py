"""Shared Streamlit pieces of the app: the sidebar, cached resources, widget state bound to the URL,
downloads and the cost confirm. Logic without UI lives in ``explorer.app_state`` / ``explorer.app_compute``.
"""

from __future__ import annotations

import threading

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer import app_compute, app_state, cache
from explorer.device import choose_device
from explorer.models import DEFAULT_MODEL, list_models, load_model

# Keys whose value depends on the model: reset when the model changes.
MODEL_DEPENDENT = ("lg_seeds", "lg_cell", "geo_ends", "geo_source", "emb_sel")
# Sizes whose defaults depend on the kind of model (app_state.sizes_for): reset when the kind changes
# (2-D points ↔ images), so that a 128 × 128 plane chosen for a toy never starts on a digits model.
KIND_DEPENDENT = ("lg_steps", "lg_extent", "lg_res", "lg_dirs", "lg_t", "emb_n", "emb_k", "emb_density",
                  "geo_n", "geo_nbg", "geo_k")


# ---------------------------------------------------------------------------- cached resources
@st.cache_resource(show_spinner=False)
def get_model(spec: str):
    """The model, loaded once per process (shared across sessions, never mutated)."""
    return load_model(spec)


@st.cache_resource(show_spinner=False)
def get_density(spec: str, source: str):
    return app_compute.make_density(get_model(spec), source)


@st.cache_resource(show_spinner=False)
def available_models(extra: tuple[str, ...] = ()) -> list[str]:
    return app_compute.available_models(extra)


@st.cache_resource(show_spinner=False)
def umap_warmer() -> dict:
    """Starts UMAP's JIT warm-up in a background thread, once per server process."""
    info: dict = {"done": False, "seconds": None}

    def run():
        try:
            info["seconds"] = app_compute.warm_umap()
        finally:
            info["done"] = True

    threading.Thread(target=run, name="umap-warmup", daemon=True).start()
    return info


# ---------------------------------------------------------------------------- state ↔ widgets ↔ URL
def init_state() -> None:
    """On a session's first run: state from the URL query parameters (problems are shown once)."""
    if st.session_state.get("_qp_loaded"):
        return
    state, problems = app_state.decode_query(st.query_params.to_dict())
    for key, value in state.items():
        st.session_state[key] = value
    st.session_state["_qp_problems"] = problems
    st.session_state["_qp_loaded"] = True


def bind(key: str, default, valid=None) -> dict:
    """Widget keyword arguments that bind a widget to the state ``key`` (set to ``default`` when missing or not
    ``valid``): the state is the truth, copied into the widget before it is drawn, and a user's change is copied
    back by ``on_change`` before the rerun. Widget state alone does not survive a page switch; this does."""
    if key not in st.session_state or (valid is not None and not valid(st.session_state[key])):
        st.session_state[key] = default
    wkey = f"w_{key}"
    st.session_state[wkey] = st.session_state[key]
    return {"key": wkey, "on_change": _copy_back, "args": (key, wkey)}


def _copy_back(key: str, wkey: str) -> None:
    st.session_state[key] = st.session_state[wkey]


def store(key: str, value) -> None:
    """Record a widget's value as the state ``key`` (after the widget)."""
    st.session_state[key] = value


def set_state(key: str, value) -> None:
    """Change state ``key`` from code (a click); its widget takes the value on the next run."""
    st.session_state[key] = value


def new_selection(chart_key: str, event) -> list:
    """The customdata of a chart selection, only when it differs from the one already handled."""
    data = app_state.selected_customdata(event)
    seen = st.session_state.get(f"_seen_{chart_key}")
    if not data:
        st.session_state[f"_seen_{chart_key}"] = None
        return []
    if data == seen:
        return []
    st.session_state[f"_seen_{chart_key}"] = data
    return data


def sync_query(keys) -> None:
    """Write the model and this page's shareable state into the URL (replacing the previous page's)."""
    state = {k: st.session_state.get(k) for k in ("model", *keys)}
    wanted = app_state.encode_query(state)
    if wanted != st.query_params.to_dict():
        st.query_params.from_dict(wanted)


# ---------------------------------------------------------------------------- sidebar
def sidebar() -> str:
    """The shared sidebar: model, device, cache state; returns the model spec."""
    init_state()
    extra = [*app_compute.extra_model_paths(), *st.session_state.get("extra_models", [])]
    wanted = st.session_state.get("model")
    if isinstance(wanted, str) and wanted.endswith(".safetensors") and wanted not in extra:
        extra.append(wanted)  # a shared link to a trained model file
    models = available_models(tuple(extra))
    missing = [m for m in list_models() if m not in models]
    if not models:
        st.error("No built-in model loads here: " + "; ".join(
            f"{m}: {app_compute.model_status(m)[1]}" for m in list_models()))
        st.stop()
    default = DEFAULT_MODEL if DEFAULT_MODEL in models else models[0]
    with st.sidebar:
        st.header("Model")
        spec = st.selectbox("Model", models, **bind("model", default, valid=lambda v: v in models),
                            help="Small 2-D DDPMs (toy2d/…, 50-step deterministic DDIM sampler) and 8×8 digit "
                                 "image DDPMs (digits/…, 20 steps) shipped in assets/, and models you trained "
                                 "with `python -m explorer train toy2d --csv FILE`.")
        path = st.text_input("Add a trained model (.safetensors path)", key="extra_model_path",
                             help="The file `python -m explorer train toy2d --csv FILE --out DIR` wrote "
                                  "(DIR/toy2d/NAME.safetensors); also EXPLORER_MODELS=path1:path2.")
        if path:
            ok, why = app_compute.model_status(path.strip())
            if ok and path.strip() not in models:
                st.session_state.setdefault("extra_models", []).append(path.strip())
                set_state("model", path.strip())
                st.rerun()
            elif not ok:
                st.error(f"Cannot load {path}: {why}")
        kind = app_state.model_kind(get_model(spec))
        if st.session_state.get("_model_prev") not in (None, spec):
            reset = MODEL_DEPENDENT + (KIND_DEPENDENT if st.session_state.get("_kind_prev") != kind else ())
            for k in reset:
                st.session_state.pop(k, None)
                st.session_state.pop(f"w_{k}", None)
        st.session_state["_model_prev"] = spec
        st.session_state["_kind_prev"] = kind
        store("model", spec)
        if missing:
            st.caption("Not available here (weights missing; `python -m explorer train`): " + ", ".join(missing))
        st.caption(f"Device: **{choose_device()}**")
        prof = app_state.profile_name()
        if prof != "default":
            st.caption(f"Size profile: **{prof}** (EXPLORER_PROFILE)")
        st.header("Cache")
        s = cache.stats()
        st.caption(f"`{s['folder']}`: {s['entries']} results, {s['bytes'] / 1e6:.1f} MB")
        if st.button("Clear cache", key="clear_cache", help="Delete every cached result on disk"):
            n = cache.clear()
            st.cache_data.clear()
            st.toast(f"Removed {n} cache files")
        for p in st.session_state.get("_qp_problems", []):
            st.warning(f"Ignored an unreadable link parameter: {p}")
    return spec


# ---------------------------------------------------------------------------- long work
def confirm_cost(name: str, seconds: float, key: str) -> bool:
    """True when the work may run: cheap work at once; work over the confirm limit after a click."""
    limit = app_state.profile()["confirm_seconds"]
    if not app_state.needs_confirm(seconds, limit):
        return True
    if st.session_state.get(f"_confirmed_{key}"):
        return True
    st.info(f"{name} will take {app_state.describe_seconds(seconds)} on this machine "
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


# ---------------------------------------------------------------------------- image galleries
GREYS = [[0.0, "black"], [1.0, "white"]]


def gallery_figure(x, image_shape, ids, *, ncols: int = 12, pixel: int = 5, highlight=(), values=None,
                   value_name: str = "", hover=None, title: str | None = None, name: str = "images") -> go.Figure:
    """Flat model-space images ``x`` (N, h·w) in [−1, 1] as one clickable mosaic: a grey heatmap of all images (the
    trace ``name``) and one invisible square marker per image carrying ``ids`` as customdata (hover text
    ``hover``). ``highlight``: ids framed in red; ``values``: each image framed in that value's Plasma colour,
    with a colour bar titled ``value_name``. Frames are shapes in data coordinates, so they stay on their images
    at any figure size."""
    from plotly.colors import sample_colorscale

    pix = app_state.grey_images(x, image_shape)
    h, w = pix.shape[1:]
    m = app_state.mosaic(pix, ncols)
    ids = np.asarray(ids)
    hover = [f"{value}" for value in ids] if hover is None else list(hover)
    fig = go.Figure(go.Heatmap(z=m["z"], colorscale=GREYS, zmin=0.0, zmax=1.0, showscale=False, hoverinfo="skip",
                               name=name))
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
    H, W = m["z"].shape
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
    return new_selection(key, ev)


def show_image(x, image_shape, caption: str, scale: int = 20) -> None:
    """One flat model-space image as a crisp (nearest-neighbour upscaled) picture."""
    pix = app_state.grey_images(x, image_shape)[0]
    st.image(np.kron(pix, np.ones((scale, scale))), caption=caption, clamp=True)


# ---------------------------------------------------------------------------- downloads
def _offered(key: str, file_name: str, data: bytes) -> bytes:
    """Remember what each download button of this run carries (its file name and parameters)."""
    st.session_state.setdefault("_downloads", {})[key] = {"file_name": file_name,
                                                         "params": app_state.read_params(data)}
    return data


def download_csv(label: str, table, params: dict, file_name: str, key: str) -> None:
    data = _offered(key, file_name, app_state.csv_bytes(table, params))
    st.download_button(label, data, file_name=file_name, mime="text/csv", key=key,
                       help="CSV; its first line '# params: {...}' holds the parameters that produced it")


def download_npz(label: str, arrays: dict, params: dict, file_name: str, key: str) -> None:
    data = _offered(key, file_name, app_state.npz_bytes(arrays, params))
    st.download_button(label, data, file_name=file_name, mime="application/octet-stream", key=key,
                       help="NumPy .npz; the entry 'params_json' holds the parameters that produced it")

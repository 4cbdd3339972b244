"""Shared Streamlit pieces of the app: the sidebar, cached resources, widget state bound to the URL,
downloads and the cost confirm. Logic without UI lives in ``explorer.app_state`` / ``explorer.app_compute``.
"""

from __future__ import annotations

import threading

import streamlit as st

from explorer import app_compute, app_state, cache
from explorer.device import choose_device
from explorer.models import DEFAULT_MODEL, list_models, load_model

# Keys whose value depends on the model: reset when the model changes.
MODEL_DEPENDENT = ("lg_seeds", "lg_cell", "geo_ends", "geo_source", "emb_sel")


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
                            help="Small 2-D DDPMs shipped in assets/ (50-step deterministic DDIM sampler), and "
                                 "models you trained with `python -m explorer train toy2d --csv FILE`.")
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
        if st.session_state.get("_model_prev") not in (None, spec):
            for k in MODEL_DEPENDENT:
                st.session_state.pop(k, None)
                st.session_state.pop(f"w_{k}", None)
        st.session_state["_model_prev"] = spec
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

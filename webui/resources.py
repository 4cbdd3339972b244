"""Resources shared by every session of the server (``st.cache_resource``): models, densities, the model list,
UMAP's warm-up. Shared objects are never mutated: computations convert through ``model.at(...)`` views."""

from __future__ import annotations

import json
import threading

import streamlit as st

from explorer.density.cached import make_density
from explorer.models import load_model
from explorer.views.embedding import warm_umap
from webui import catalog


@st.cache_resource(show_spinner=False)
def get_model(spec: str):
    """The model, loaded once per process (shared across sessions, never mutated)."""
    return load_model(spec)


@st.cache_resource(show_spinner=False)
def get_density(spec: str, source: str, condition: str = ""):
    """The density ``source`` of the model ``spec``; ``condition`` the JSON of a conditional model's class or prompt
    (``webui.conditioning.key_of``; the density is the model's at guidance scale 1)."""
    return make_density(get_model(spec), source, condition=json.loads(condition) if condition else None)


@st.cache_resource(show_spinner=False)
def available_models(extra: tuple[str, ...] = (), cached: tuple[str, ...] = ()) -> list[str]:
    return catalog.available_models(extra, cached)


@st.cache_resource(show_spinner=False)
def umap_warmer() -> dict:
    """Starts UMAP's JIT warm-up in a background thread, once per server process."""
    info: dict = {"done": False, "seconds": None}

    def run():
        try:
            info["seconds"] = warm_umap()
        finally:
            info["done"] = True

    threading.Thread(target=run, name="umap-warmup", daemon=True).start()
    return info

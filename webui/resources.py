"""Resources shared by every session of the server (``st.cache_resource``): models, densities, the model list,
UMAP's warm-up. Shared objects are never mutated: computations convert through ``model.at(...)`` views."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import streamlit as st

from explorer.density.cached import make_density
from explorer.models import load_model
from webui import catalog

_ROOT = Path(__file__).resolve().parents[1]


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
def umap_warmer(delay: float = 15.0) -> dict:
    """Warm UMAP's numba JIT up once per server process, without holding the first page: after ``delay`` seconds
    and only while the compute worker is idle, a low-priority subprocess runs one tiny UMAP, which fills numba's
    on-disk cache (a later UMAP in the server loads compiled code instead of compiling it)."""
    info: dict = {"done": False, "seconds": None}

    def run():
        import subprocess
        import sys
        import time

        from explorer.jobs import default_registry

        time.sleep(delay)
        while default_registry().jobs(active_only=True):
            time.sleep(5.0)
        start = time.perf_counter()
        try:
            subprocess.run(["nice", "-n", "15", sys.executable, "-c",
                            "from explorer.views.embedding import warm_umap; warm_umap()"],
                           check=False, capture_output=True, timeout=600, cwd=str(_ROOT))
        except (OSError, subprocess.SubprocessError):
            pass
        finally:
            info["seconds"] = time.perf_counter() - start
            info["done"] = True

    threading.Thread(target=run, name="umap-warmup", daemon=True).start()
    return info

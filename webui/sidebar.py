"""The shared sidebar of every page: the model (built-ins, the server's ``EXPLORER_MODELS``, the pipelines of the
local Hugging Face cache, models added here: a trained file, a pipeline folder, a cache id),
the device really used, the disk cache (with a confirmed Clear), and what a link asked for that was dropped."""

from __future__ import annotations

import streamlit as st

from explorer import cache
from explorer.device import device_report
from explorer.models import DEFAULT_MODEL, list_models
from explorer.views.sizes import model_kind
from webui import catalog, jobs, profiles, resources
from webui.query import plain
from webui.session import bind, init_state, set_state, store

# Keys whose value depends on the model: reset when the model changes.
MODEL_DEPENDENT = ("lg_seeds", "lg_cell", "geo_ends", "geo_source", "emb_sel", "mem_sel", "cond_class", "cond_prompt",
                   "cond_negative", "cond_scale")
# Sizes whose defaults depend on the kind of model: reset when the kind changes (2-D points ↔ images), so that a
# 128 × 128 plane chosen for a toy never starts on a digits model.
KIND_DEPENDENT = ("lg_steps", "lg_extent", "lg_res", "lg_dirs", "lg_t", "lg_map", "emb_n", "emb_k", "emb_density",
                  "geo_n", "geo_nbg", "geo_k", "mem_steps")


def _added() -> list[str]:
    return list(st.session_state.get("extra_models", []))


def sidebar() -> str:
    """Draw the shared sidebar and return the model spec of this run."""
    init_state()
    extra = [*catalog.server_models(), *_added()]
    wanted = st.session_state.get("model")
    problems = list(st.session_state.get("_qp_problems", []))
    if isinstance(wanted, str) and not catalog.link_may_open(wanted, _added()):
        st.session_state.pop("model", None)
        problems.append(f"model={wanted!r} (a link may name only the built-in models, EXPLORER_MODELS and models "
                        "added in this session; add a path under 'Add a model')")
        st.session_state["_qp_problems"] = problems
        wanted = None
    models = resources.available_models(tuple(extra), tuple(catalog.cached_models()))
    if not models:
        st.error("No built-in model loads here: " + "; ".join(
            f"{m}: {catalog.model_status(m)[1]}" for m in list_models()))
        st.stop()
    if isinstance(wanted, str) and wanted not in models and f"model={wanted!r}" not in " ".join(problems):
        problems.append(f"model={wanted!r} does not load here ({catalog.model_status(wanted)[1]}); showing "
                        f"{DEFAULT_MODEL if DEFAULT_MODEL in models else models[0]}")
        st.session_state["_qp_problems"] = problems
    default = DEFAULT_MODEL if DEFAULT_MODEL in models else models[0]
    with st.sidebar:
        st.header("Model")
        spec = st.selectbox("Model", models, **bind("model", default, valid=lambda v: v in models),
                            help="Small 2-D DDPMs (toy2d/…, 50-step deterministic DDIM sampler) and 8×8 digit "
                                 "image DDPMs (digits/…, 20 steps) shipped in assets/, the server's "
                                 "EXPLORER_MODELS, the diffusers pipelines (DDPM, DiT, Stable Diffusion 1.x) in "
                                 "the local Hugging Face cache (HF_HUB_CACHE / HF_HOME), and models you add below.")
        path = st.text_input("Add a model (a diffusers pipeline folder, an org/name in the local Hugging Face cache, "
                             "a trained .safetensors path or package.module:function)",
                             key="extra_model_path",
                             help="A folder written by pipeline.save_pretrained (with model_index.json, safetensors "
                                  "weights), such as assets/pipelines/digits-unet; the file `python -m explorer "
                                  "train toy2d --csv FILE` wrote; or your own adapter's factory. The server can "
                                  "also be started with EXPLORER_MODELS=a:b (any of these).")
        if path and path.strip() not in models:
            ok, why = catalog.model_status(path.strip())
            if ok:
                st.session_state.setdefault("extra_models", []).append(path.strip())
                set_state("model", path.strip())
                st.rerun()
            st.error(f"Cannot load {plain(path)}: {plain(why)}")
        kind = model_kind(resources.get_model(spec))
        if st.session_state.get("_model_prev") not in (None, spec):
            reset = MODEL_DEPENDENT + (KIND_DEPENDENT if st.session_state.get("_kind_prev") != kind else ())
            for k in reset:
                st.session_state.pop(k, None)
                st.session_state.pop(f"w_{k}", None)
        st.session_state["_model_prev"] = spec
        st.session_state["_kind_prev"] = kind
        store("model", spec)
        missing = [m for m in list_models() if m not in models]
        if missing:
            st.caption("Not available here (weights missing; `python -m explorer train`): " + ", ".join(missing))
        st.caption(f"Device: **{device_report()}**")
        prof = profiles.profile_name()
        if prof != "default":
            st.caption(f"Size profile: **{prof}** (EXPLORER_PROFILE)")
        jobs.jobs_panel()
        _cache_panel()
        for p in problems:
            st.warning(f"Ignored a link parameter: {plain(p)}")
    return spec


def _cache_panel() -> None:
    st.header("Cache")
    s = cache.stats()
    st.caption(f"`{s['folder']}`: {s['entries']} results, {s['bytes'] / 1e6:.1f} MB")
    if st.session_state.get("_confirm_clear"):
        st.warning("Delete every result this cache computed? (Files the cache did not write, and the shipped "
                   "results in assets/cache, are kept.)")
        yes, no = st.columns(2)
        if yes.button("Delete", key="clear_cache_yes", type="primary"):
            st.session_state["_confirm_clear"] = False
            try:
                n = cache.clear()
            except ValueError as err:  # e.g. EXPLORER_CACHE_DIR points into the shipped assets/
                st.error(plain(str(err)))
            else:
                st.cache_data.clear()
                st.toast(f"Removed {n} cache files")
        if no.button("Keep", key="clear_cache_no"):
            st.session_state["_confirm_clear"] = False
            st.rerun()
    elif st.button("Clear cache…", key="clear_cache", help="Delete the results this cache computed (asks first)"):
        st.session_state["_confirm_clear"] = True
        st.rerun()

"""The Memorization page for a pipeline without a training set (Streamlit UI; the report is
``explorer.views.memorization.prompt_report_cached``).

A text-to-image pipeline takes a prompt list (CSV or JSONL, ``caption`` and an optional ``memorized`` label; or
prompts typed one a line): per prompt the descriptors of its samples and Wen et al.'s ‖ε(x_t, c) − ε(x_t, ∅)‖,
the AUROC table when labels are given. Any other pipeline (DDPM, DiT) gets one row: the samples of the chosen
class. The nearest-neighbour score needs a folder of reference images (PNG / JPEG) on the server, else it is off
and the page says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from explorer.errors import UserError
from explorer.prompt_memorization import read_prompts
from webui import conditioning, galleries, jobs, profiles, session, widgets
from webui.query import plain


def _prompt_list(upload, typed: str):
    """(captions, labels or None) of the uploaded file, else of the typed prompts (one a line)."""
    if upload is not None:
        suffix = Path(upload.name).suffix.lower() or ".csv"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"prompts{suffix}"
            path.write_bytes(upload.getvalue())
            table = read_prompts(path)
        return list(table["caption"]), (list(table["memorized"]) if "memorized" in table else None)
    lines = [line.strip() for line in typed.splitlines() if line.strip()]
    return lines, None


def render(spec: str, model) -> None:
    S = profiles.sizes_for(model)
    texts = "prompt" in model.capabilities.conditioning
    display = galleries.display_of(model)
    st.title("Memorization")
    st.caption("This pipeline has no training set of its own. "
               + ("Give a list of prompts (a CSV or JSONL with a `caption` field and an optional `memorized` label, "
                  "the shape of public memorized-prompt lists): per prompt, the local descriptors ψ, ν, ν_eff, δ of "
                  "its samples and, as a baseline, Wen et al. 2024's ‖ε(x_t, c) − ε(x_t, ∅)‖ over the first DDIM "
                  "steps (memorized prompts have a strong text signal from the first step); with labels, the AUROC "
                  "of each." if texts else
                  "The samples of the chosen conditioning and their local descriptors; the nearest-neighbour "
                  "memorization score compares them with reference images."))
    c1, c2 = st.columns([3, 2])
    captions, labels, conditions = [], None, None
    with c1:
        if texts:
            cond = conditioning.condition_fields(model)
            upload = st.file_uploader("Prompt list (CSV or JSONL)", type=["csv", "jsonl", "json", "txt"],
                                      key="memp_upload")
            typed = st.text_area("…or prompts, one a line", cond.get("prompt", ""), key="memp_typed", height=90)
            try:
                captions, labels = _prompt_list(upload, typed)
            except UserError as err:
                st.error(plain(str(err)))
                st.stop()
            guidance = float(cond.get("guidance_scale", 1.0))
        else:
            cond = conditioning.condition_fields(model)
            guidance = float(cond.pop("guidance_scale", 1.0))
            captions, conditions = [conditioning.describe(cond) or "unconditional"], [cond]
    with c2:
        ref = st.text_input("Reference image folder (PNG/JPEG on the server; optional)", key="memp_ref",
                            help="the nearest-neighbour score: each sample's distance to its nearest reference image "
                                 "over that to the nearest distinct other (ratio < 1/3: a copy); e.g. the training "
                                 "images of the memorized prompts")
        per = int(st.number_input("Samples per prompt" if texts else "Samples", 1, 64,
                                  **session.bind("memp_per", int(S["mem_per_prompt"] if texts else S["n_samples"]),
                                                 lambda v: 1 <= v <= 64)))
        session.store("memp_per", per)
        steps = int(st.number_input("DDIM steps", 1, 1000, **session.bind("memp_steps", int(S["steps"]),
                                                                          lambda v: 1 <= v <= 1000)))
        session.store("memp_steps", steps)
        wen = int(st.number_input("Wen et al.'s first steps", 1, 50, int(S["wen_steps"]), key="memp_wen",
                                  disabled=not texts))
    if not captions:
        st.info("Upload a prompt list or type prompts to start.")
        st.stop()
    ref = ref.strip() or None
    if ref is None:
        st.info("Nearest-neighbour score: **off** (this pipeline has no training set and no reference image folder "
                "is given).", icon="ℹ️")
    params = {"captions": captions, "labels": labels, "per_prompt": per, "seed": 0, "steps": steps, "wen_steps": wen,
              "guidance_scale": guidance, "reference_dir": ref, "conditions": conditions,
              "n_directions": int(S["n_directions"]) if S.get("n_directions") else None}
    got = jobs.result_of("prompt_memorization", model, params)
    if got is None:
        st.stop()
    rep, rec = got
    st.caption(("From the disk cache" if rec["hit"] else f"Computed in {rec['seconds']:.1f} s")
               + f"; {rep.params['steps']} DDIM steps, P = {rep.params['P']} Jacobian directions, δ radius "
                 f"{rep.params['radius']:.3g}; nearest neighbours: {rep.params['nearest']}.")
    st.subheader("Per prompt" if texts else "The samples")
    cols = [c for c in ("caption", "memorized", "psi", "nu", "nu_eff", "delta", "wen", "d_nearest", "ratio",
                        "copied") if c in rep.prompts.columns and (texts or c != "wen")]
    st.dataframe(rep.prompts[cols] if texts else rep.samples.drop(columns=["prompt", "wen"]), hide_index=True)
    if rep.auroc is not None:
        st.subheader("How well each feature separates the memorized prompts")
        st.dataframe(rep.auroc, hide_index=True)
        st.caption("AUROC = P(f(memorized prompt) > f(other prompt)); 1: memorized prompts have the larger values, "
                   "0.5: no separation. wen is Wen et al.'s baseline; ratio and d_nearest need reference images.")
    elif texts:
        st.caption("No memorized labels in the list: no AUROC table.")
    shown = min(len(captions), 12)
    rows = []
    for k in range(shown):
        idx = np.flatnonzero(rep.samples["prompt"].to_numpy() == k)
        rows.append(galleries.strip(rep.images[idx], model.image_shape, 6, display))
    st.image(rows, caption=[f"{k}: {captions[k]}" for k in range(shown)], output_format="PNG")
    widgets.download_csv("Download the per-prompt table (CSV)", rep.prompts, rep.params, "prompt_memorization.csv",
                         "dl_memp_prompts")
    widgets.download_csv("Download the per-sample table (CSV)", rep.samples, rep.params, "prompt_samples.csv",
                         "dl_memp_samples")
    if texts:
        widgets.cli_hint(f"python -m explorer memorization --model {spec} --prompts PROMPTS.jsonl"
                         + (f" --reference-images {ref}" if ref else "") + f" --per-prompt {per} --steps {steps} "
                         f"--wen-steps {wen} --out runs/prompts")

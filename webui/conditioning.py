"""The conditioning fields of a conditional pipeline, shared by the pages: a class picker for a class-conditional
model (DiT), a prompt, a negative prompt and a guidance scale for a text-to-image model (Stable Diffusion). Each
returns the model's canonical condition (``model.canonical_condition``: what the views' cache keys hold), starting
from ``explorer.views.sizes.default_condition(model)``. A density is the model's at guidance scale 1:
``density_condition`` drops what only guidance uses."""

from __future__ import annotations

import json

import streamlit as st

from explorer.views.sizes import default_condition
from webui.session import bind, store

#: Session keys of the fields (model-dependent: the sidebar resets them when the model changes).
KEYS = ("cond_class", "cond_prompt", "cond_negative", "cond_scale")


def condition_fields(model, guidance: bool = True) -> dict:
    """Draw the fields ``model`` takes (none for an unconditional model) and return the canonical condition;
    ``guidance=False`` leaves out the negative prompt and the guidance scale (pages over the model's density)."""
    takes = model.capabilities.conditioning
    if not takes:
        return {}
    start = default_condition(model)
    cond: dict = {}
    cols = st.columns(3 if guidance and "guidance_scale" in takes else 1 if "class_label" in takes else 2)
    if "class_label" in takes:
        names = list(getattr(model, "class_names", []) or [])
        options = list(range(len(names)))
        label = cols[0].selectbox("Class (class-conditional model)", options, format_func=lambda i: f"{i}: {names[i]}",
                                  **bind("cond_class", int(start.get("class_label", 0)), lambda v: v in options),
                                  help="the class every view generates; null class (unconditional) not offered")
        store("cond_class", int(label))
        cond["class_label"] = int(label)
    if "prompt" in takes:
        prompt = cols[0].text_input("Prompt", **bind("cond_prompt", start.get("prompt", ""),
                                                     lambda v: isinstance(v, str)),
                                    help="the text every view generates from (empty: the unconditional model)")
        store("cond_prompt", prompt)
        cond["prompt"] = prompt
        if guidance:
            neg = cols[1].text_input("Negative prompt", **bind("cond_negative", "", lambda v: isinstance(v, str)),
                                     help="classifier-free guidance pushes away from this prompt's embedding "
                                          "(empty: the unconditional one); used only with a guidance scale above 1")
            store("cond_negative", neg)
            cond["negative_prompt"] = neg
    if guidance and "guidance_scale" in takes:
        scale = cols[-1].number_input("Guidance scale", 1.0, 30.0, step=0.5,
                                      **bind("cond_scale", 1.0, lambda v: 1.0 <= float(v) <= 30.0),
                                      help="classifier-free guidance s: ε(∅) + s·(ε(c) − ε(∅)); 1 is the conditional "
                                           "model itself (the pipelines' own default is 7.5 for SD, 4 for DiT)")
        store("cond_scale", float(scale))
        cond["guidance_scale"] = float(scale)
    return model.canonical_condition(cond)


def density_condition(model, condition: dict) -> dict:
    """The part of ``condition`` a likelihood takes: the class or prompt, at guidance scale 1."""
    return model.canonical_condition({k: v for k, v in condition.items()
                                      if k not in ("guidance_scale", "negative_prompt")})


def describe(condition: dict) -> str:
    """One line for a caption: 'class 3', 'prompt "…"', guidance when set; '' for none."""
    parts = []
    if "class_label" in condition:
        parts.append(f"class {condition['class_label']}")
    if condition.get("prompt"):
        parts.append(f"prompt “{condition['prompt']}”")
    if condition.get("negative_prompt"):
        parts.append(f"negative prompt “{condition['negative_prompt']}”")
    if condition.get("guidance_scale", 1.0) != 1.0:
        parts.append(f"guidance scale {condition['guidance_scale']:g}")
    return ", ".join(parts)


def key_of(condition: dict) -> str:
    """A hashable form of a condition (for ``st.cache_resource`` arguments)."""
    return json.dumps(condition, sort_keys=True)

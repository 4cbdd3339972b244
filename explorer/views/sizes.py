"""The sizes of the default views, per preset and model kind, and the per-model rules every view shares
(P Jacobian directions, δ's radius).

Presets: ``default`` (what a visitor sees and ``python -m explorer precompute`` ships: 128 × 128 planes of the
50-step sampler, a 2,000-point graph with k = 10 plus background points) and ``test`` (every view in a second or
two, for the tests). Kinds: ``points`` (2-D models), ``image`` (samples are images: the digit models'
d = D = 64 costs about 0.2 s per latent for ψ, ν and δ with the full Jacobian, and 20–60 points/s for the ODE
likelihood, so planes are 16 × 16 through three anchor seeds, graphs a few hundred images without uniform
background points: a uniform point in a 64-D box has density ≈ 0) and ``pipeline`` (diffusers pipelines: a UNet
or transformer per step, about a second a point for the ODE likelihood even on the shipped 8×8 digits UNet, so on
the CPU the views are tiny, ``DEVICE_OVERRIDES``: 8 × 8 planes, a P = 8 sketch, 16 samples, a 60-image graph;
larger on CUDA). ``model_kind`` (points or image: how a page draws samples) and ``size_kind`` (which sizes) differ
for pipelines, whose samples are images.

A pipeline's plane extent and P are per model: ``extent`` None means 1.5·sqrt(d) (the anchors of three latents,
about sqrt(2d) apart, lie inside; 12 for d = 64 as for the digit models), ``n_directions`` None means
``default_directions(d)``. ``default_condition(model)`` is the conditioning every view starts from (a DiT class, an
SD prompt).
"""

from __future__ import annotations

import numpy as np

PRESETS: dict[str, dict] = {
    "default": {
        "plane_n": 128, "steps": 50, "n_pool": 200, "n_samples": 300, "extent": 3.0, "seeds": (),
        "graph_n": 2000, "n_background": 500, "k": 10, "view_grid": 80,
        "embed_n": 1000, "embed_lams": (0.05, 0.3, 1.0, 3.0, 10.0), "onoff_grid": 40, "auroc_ts": 8,
        # the Geodesics page on image models: a k-NN graph over training images
        "igraph_n": 1000, "igraph_k": 10, "igraph_nq": 3, "igraph_points": 10, "igraph_refine_iter": 20,
        # the Memorization page: samples, their DDIM steps (None: the model's) and AUROC bootstrap resamples
        "mem_n": 512, "mem_steps": None, "mem_boot": 1000,
        # P Jacobian directions (None: default_directions(d)), the Embedding graph's nodes per edge, and the
        # Memorization page's prompt lists: samples per prompt and Wen et al.'s first steps
        "n_directions": None, "embed_nq": 3, "mem_per_prompt": 4, "wen_steps": 1,
        # the Guidance page: the ρ grid, samples per ρ, the reward's training latents and iterations (None: by kind)
        "guide_rhos": (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0), "guide_n": 512, "guide_reward_n": 2048,
        "guide_reward_iterations": None, "guide_boot": 1000,
    },
    "test": {
        "plane_n": 6, "steps": 3, "n_pool": 24, "n_samples": 12, "extent": 3.0, "seeds": (),
        "graph_n": 150, "n_background": 40, "k": 10, "view_grid": 16,
        "embed_n": 40, "embed_lams": (0.1, 5.0), "onoff_grid": 8, "auroc_ts": 2,
        "igraph_n": 40, "igraph_k": 5, "igraph_nq": 1, "igraph_points": 4, "igraph_refine_iter": 2,
        "mem_n": 24, "mem_steps": 3, "mem_boot": 200,
        "n_directions": None, "embed_nq": 3, "mem_per_prompt": 1, "wen_steps": 1,
        "guide_rhos": (0.0, 1.0), "guide_n": 16, "guide_reward_n": 32, "guide_reward_iterations": 100,
        "guide_boot": 50,
    },
}

KIND_OVERRIDES: dict[str, dict[str, dict]] = {
    "default": {
        "image": {"plane_n": 16, "steps": 20, "n_pool": 48, "n_samples": 64, "extent": 12.0, "seeds": (0, 1, 2),
                  "graph_n": 400, "n_background": 0, "k": 10, "embed_n": 300,
                  "guide_rhos": (-0.25, 0.0, 0.25, 0.5), "guide_n": 256},
        # the sizes on CUDA (and δ's radius everywhere); DEVICE_OVERRIDES shrinks them on the CPU
        "pipeline": {"plane_n": 16, "steps": 50, "n_pool": 48, "n_samples": 64, "extent": None, "seeds": (0, 1, 2),
                     "graph_n": 200, "n_background": 0, "k": 10, "embed_n": 200, "igraph_n": 200, "igraph_k": 10,
                     "igraph_nq": 3, "igraph_points": 10, "igraph_refine_iter": 20, "mem_n": 128},
    },
    "test": {
        "image": {"plane_n": 4, "steps": 3, "n_pool": 12, "n_samples": 8, "extent": 12.0, "seeds": (0, 1, 2),
                  "graph_n": 60, "n_background": 0, "k": 10, "embed_n": 40, "guide_n": 8},
        "pipeline": {"plane_n": 3, "steps": 2, "n_pool": 4, "n_samples": 3, "extent": None, "seeds": (0, 1, 2),
                     "n_directions": 2, "graph_n": 12, "n_background": 0, "k": 3, "embed_n": 12, "embed_nq": 1,
                     "igraph_n": 12, "igraph_k": 3, "igraph_nq": 1, "igraph_points": 3, "igraph_refine_iter": 1,
                     "mem_n": 4, "mem_steps": 2, "mem_boot": 50, "guide_n": 4},
    },
}
#: Per compute-device type, on top of a kind's sizes (``sizes(..., device=...)``).
DEVICE_OVERRIDES: dict[str, dict[str, dict[str, dict]]] = {
    "default": {
        "pipeline": {"cpu": {"plane_n": 8, "steps": 20, "n_pool": 16, "n_samples": 16, "n_directions": 8,
                             "graph_n": 60, "k": 5, "embed_n": 60, "embed_nq": 1, "igraph_n": 60, "igraph_k": 5,
                             "igraph_nq": 1, "igraph_points": 8, "igraph_refine_iter": 5, "mem_n": 32,
                             "mem_boot": 200, "mem_per_prompt": 1}},
    },
}
KINDS = ("points", "image", "pipeline")
#: The prompt SD-like pipelines start from (the diffusers documentation's), unless their record names another.
DEFAULT_PROMPT = "a photograph of an astronaut riding a horse"


def sizes(preset: str = "default", kind: str = "points", device=None) -> dict:
    """The sizes of ``preset`` for a model ``kind`` (``points``, ``image`` or ``pipeline``) on ``device`` (a
    torch device or its type; None: the compute device, ``explorer.device.compute_device``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown size preset {preset!r}; valid: {', '.join(PRESETS)}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if device is None:
        from explorer.device import compute_device

        device = compute_device()
    dtype = getattr(device, "type", None) or str(device).split(":")[0]
    return {**_base_sizes(preset, kind), **DEVICE_OVERRIDES.get(preset, {}).get(kind, {}).get(dtype, {})}


def _base_sizes(preset: str, kind: str) -> dict:
    """A kind's sizes before any device override (what δ's radius is defined on, the same on every device)."""
    return {**PRESETS[preset], **KIND_OVERRIDES.get(preset, {}).get(kind, {})}


def model_kind(model) -> str:
    """``image`` for a model whose samples are images (``model.image_shape`` set: grey digits or RGB pipelines),
    else ``points``: how the pages draw its samples."""
    return "image" if getattr(model, "image_shape", None) else "points"


def size_kind(model) -> str:
    """Which sizes a model's views get: ``pipeline`` for a diffusers pipeline, else ``model_kind(model)``."""
    from explorer.models.pipelines.adapter import PipelineModel

    return "pipeline" if isinstance(model, PipelineModel) else model_kind(model)


def sizes_for(model, preset: str = "default", device=None) -> dict:
    """``sizes(preset, size_kind(model), device)`` for ``model``: the steps capped by the model's own default steps
    (at the ``default`` preset the model's default steps themselves, except for pipelines, capped there too), and a
    pipeline's ``extent`` (1.5·sqrt(d)) filled in; ``directions_for`` resolves ``n_directions``."""
    kind = size_kind(model)
    out = sizes(preset, kind, device)
    if model.default_steps is not None:
        capped = preset != "default" or kind == "pipeline"
        out["steps"] = min(int(out["steps"]), int(model.default_steps)) if capped else int(model.default_steps)
    if out.get("extent") is None:
        out["extent"] = default_extent(model)
    return out


def directions_for(model, sizes: dict) -> int:
    """P of a model's views from its ``sizes``: ``n_directions`` (at most d), else ``default_directions(d)``."""
    d = latent_dim(model)
    return default_directions(d) if sizes.get("n_directions") is None else min(int(sizes["n_directions"]), d)


def default_extent(model) -> float:
    """A pipeline's plane half-width: 1.5·sqrt(d) in latent units (three latents, about sqrt(2d) apart, fit)."""
    return round(1.5 * float(np.sqrt(latent_dim(model))), 6)


def default_condition(model) -> dict:
    """The conditioning every view of ``model`` starts from, in canonical form: the record's ``default_condition``
    when it names one; else a DiT's first class (``class_label`` 0), an SD pipeline's ``DEFAULT_PROMPT``; else {}.
    Guidance stays at scale 1 (the model itself)."""
    record = (getattr(model, "meta", None) or {}).get("record") or {}
    takes = model.capabilities.conditioning
    if isinstance(record.get("default_condition"), dict):
        return model.canonical_condition(record["default_condition"])
    if "class_label" in takes:
        return model.canonical_condition({"class_label": 0})
    if "prompt" in takes:
        return model.canonical_condition({"prompt": DEFAULT_PROMPT})
    return {}


def latent_dim(model) -> int:
    return int(np.prod(model.latent_shape))


def default_directions(d: int, max_full: int = 64) -> int:
    """The default number P of Jacobian directions for a d-dimensional latent: the full Jacobian (P = d) up to
    ``max_full`` (64: 0.2 s per latent for the digits), else a sketch of the compute device's default size
    (``explorer.device.default_sketch_size``: 16 on CUDA, 8 on the CPU)."""
    from explorer.device import default_sketch_size

    return int(d) if d <= max_full else min(default_sketch_size(), int(d))


def delta_radius(model) -> float:
    """δ's cross-polytope radius r for ``model``: one rule per model, used by every view (planes, samples,
    memorization) and shown next to every δ. ``model.meta["delta_radius"]`` when the model's record sets it,
    else a quarter of the cell spacing of the model's default latent plane: r = 2·extent/(n − 1)/4 at the
    ``default`` preset (2-D models: 0.0118; digit models: 0.4; pipelines: 0.05·sqrt(d), 0.4 for d = 64), on any
    device."""
    given = (getattr(model, "meta", None) or {}).get("delta_radius")
    if given is not None:
        return float(given)
    s = _base_sizes("default", size_kind(model))
    extent = default_extent(model) if s["extent"] is None else float(s["extent"])
    return 2.0 * extent / (int(s["plane_n"]) - 1) / 4.0

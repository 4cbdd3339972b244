"""The sizes of the default views, per preset and model kind, and the per-model rules every view shares
(P Jacobian directions, δ's radius).

Presets: ``default`` (what a visitor sees and ``python -m explorer precompute`` ships: 128 × 128 planes of the
50-step sampler, a 2,000-point graph with k = 10 plus background points) and ``test`` (every view in a second or
two, for the tests). Kinds: ``points`` (2-D models) and ``image`` (samples are images: the digit models'
d = D = 64 costs about 0.2 s per latent for ψ, ν and δ with the full Jacobian, and 20–60 points/s for the ODE
likelihood, so planes are 16 × 16 through three anchor seeds, graphs a few hundred images without uniform
background points: a uniform point in a 64-D box has density ≈ 0).
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
    },
    "test": {
        "plane_n": 6, "steps": 3, "n_pool": 24, "n_samples": 12, "extent": 3.0, "seeds": (),
        "graph_n": 150, "n_background": 40, "k": 10, "view_grid": 16,
        "embed_n": 40, "embed_lams": (0.1, 5.0), "onoff_grid": 8, "auroc_ts": 2,
        "igraph_n": 40, "igraph_k": 5, "igraph_nq": 1, "igraph_points": 4, "igraph_refine_iter": 2,
        "mem_n": 24, "mem_steps": 3, "mem_boot": 200,
    },
}

KIND_OVERRIDES: dict[str, dict[str, dict]] = {
    "default": {
        "image": {"plane_n": 16, "steps": 20, "n_pool": 48, "n_samples": 64, "extent": 12.0, "seeds": (0, 1, 2),
                  "graph_n": 400, "n_background": 0, "k": 10, "embed_n": 300},
    },
    "test": {
        "image": {"plane_n": 4, "steps": 3, "n_pool": 12, "n_samples": 8, "extent": 12.0, "seeds": (0, 1, 2),
                  "graph_n": 60, "n_background": 0, "k": 10, "embed_n": 40},
    },
}
KINDS = ("points", "image")


def sizes(preset: str = "default", kind: str = "points") -> dict:
    """The sizes of ``preset`` for a model ``kind`` (``points`` or ``image``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown size preset {preset!r}; valid: {', '.join(PRESETS)}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    return {**PRESETS[preset], **KIND_OVERRIDES.get(preset, {}).get(kind, {})}


def model_kind(model) -> str:
    """``image`` for a model whose samples are images (``model.image_shape`` set), else ``points``."""
    return "image" if getattr(model, "image_shape", None) else "points"


def sizes_for(model, preset: str = "default") -> dict:
    """``sizes(preset, model_kind(model))``, with the steps capped by the model's own default steps."""
    out = sizes(preset, model_kind(model))
    if model.default_steps is not None:
        out["steps"] = min(int(out["steps"]), int(model.default_steps)) if preset != "default" else int(
            model.default_steps)
    return out


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
    ``default`` preset (2-D models: 0.0118; digit models: 0.4)."""
    given = (getattr(model, "meta", None) or {}).get("delta_radius")
    if given is not None:
        return float(given)
    s = sizes("default", model_kind(model))
    return 2.0 * float(s["extent"]) / (int(s["plane_n"]) - 1) / 4.0

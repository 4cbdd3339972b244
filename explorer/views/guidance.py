"""The Guidance view's defaults and its disk-cached report (Streamlit-free).

``guidance_defaults(model, preset)`` gives what the page shows first and ``python -m explorer precompute`` ships;
``guidance_view(model, preset)`` computes (or reads) it: ``explorer.guidance.report.guidance_report`` at those
settings, the same entry a ``python -m explorer guidance`` run with the same settings writes.
"""

from __future__ import annotations

from collections.abc import Callable

from explorer.guidance.report import guidance_report
from explorer.guidance.targets import DEFAULT_STATES
from explorer.views.sizes import sizes_for

#: The models whose Guidance default view ``python -m explorer precompute`` ships (issue 15): one toy, one image model.
SHIPPED_GUIDANCE = ("toy2d/ring", "digits/full")


def guidance_defaults(model, preset: str = "default") -> dict:
    """The keyword arguments of ``guidance_report`` for the page's first view of ``model``: the ρ grid, samples per ρ
    (latents of seed 0), the DDIM steps (the model's at ``default``), the reward's training set (``reward_n`` latents
    of seed 1, its states, iterations) and the bootstrap resamples, from ``sizes_for(model, preset)``."""
    s = sizes_for(model, preset)
    steps = model.default_steps if preset == "default" else s["steps"]
    fit = {} if s["guide_reward_iterations"] is None else {"iterations": int(s["guide_reward_iterations"])}
    return {"rhos": [float(r) for r in s["guide_rhos"]], "n": int(s["guide_n"]), "seed": 0,
            "steps": None if steps is None else int(steps), "reward_n": int(s["guide_reward_n"]), "reward_seed": 1,
            "map": "sampler", "n_directions": None, "reward_states": DEFAULT_STATES, "reward_fit": fit,
            "n_boot": int(s["guide_boot"])}


def guidance_view(model, preset: str = "default", progress: Callable | None = None, **overrides):
    """``guidance_report(model, **guidance_defaults(model, preset) | overrides)``: (arrays, record)."""
    kw = {**guidance_defaults(model, preset), **overrides}
    return guidance_report(model, progress=progress, **kw)


__all__ = ["SHIPPED_GUIDANCE", "guidance_defaults", "guidance_view"]

"""What a worker computes on one chunk: plain functions ``task(model, shared, rows) -> {name: array}``, with the
same library calls a one-process run makes on the same rows (so a chunk's result is the one-process result for
those rows). ``shared`` holds what every chunk of a run shares (settings, the driver's sketch directions);
``rows`` the chunk's latents ``z`` or points ``x``. Every returned array has one row per input row."""

from __future__ import annotations

import numpy as np
import torch


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, str(name).replace("torch.", ""))


def descriptors(model, shared: dict, rows: dict) -> dict:
    """Singular values of J·Bᵀ (``local_descriptors`` with the driver's B), δ over the cross-polytope of the
    driver's B_δ (``local_complexity``; skipped when ``radius`` is None) and, with ``samples_steps``, the samples
    G(z) of the ``samples_steps``-step sampler (in float64, from the compute dtype) at the latents ``rows["z"]``."""
    from explorer.descriptors import local_complexity, local_descriptors
    from explorer.device import compute_view

    view = compute_view(model, _dtype(shared["dtype"]))
    G = view.generator(shared["map"], steps=shared["steps"], t=shared.get("t"), **(shared.get("condition") or {}))
    z = torch.from_numpy(np.ascontiguousarray(rows["z"])).to(_dtype(shared.get("z_dtype", rows["z"].dtype.name)))
    d = local_descriptors(G, z, directions=shared["directions"], rank_tol=shared.get("rank_tol", 1e-3),
                          psi_floor=shared.get("psi_floor", 1e-8))
    out = {"singular_values": d.singular_values}
    if shared.get("radius") is not None:
        lc = local_complexity(G, z, shared["radius"], directions=shared["delta_directions"])
        out.update(delta=lc.delta, n_layer_calls=np.full(len(z), lc.n_layer_calls),
                   n_neurons=np.full(len(z), lc.n_neurons))
    if shared.get("samples_steps") is not None:
        same = shared["map"] == "sampler" and shared["steps"] == shared["samples_steps"]
        S = G if same else view.generator("sampler", steps=shared["samples_steps"])
        with torch.no_grad():
            out["samples"] = S(z.to(view.device, view.dtype)).double().cpu().numpy()
    return out


def log_density(model, shared: dict, rows: dict) -> dict:
    """log p at the points ``rows["x"]`` (M, D): the model's ``log_density(**shared["kwargs"])`` (with no keywords:
    what ``make_density(model, "model")`` evaluates), or the shipped density object ``shared["fn"]`` (a KDE)."""
    fn = shared["fn"] if "fn" in shared else model.log_density(**shared["kwargs"])
    return {"log_p": np.asarray(fn(rows["x"]), dtype=np.float64).reshape(-1)}


def log_prob(model, shared: dict, rows: dict) -> dict:
    """``model.log_prob(rows["x"], **shared["kwargs"])`` (the memorization report's likelihood of samples)."""
    return {"log_p": np.asarray(model.log_prob(rows["x"], **shared["kwargs"]), dtype=np.float64).reshape(-1)}


TASKS = {"descriptors": descriptors, "log_density": log_density, "log_prob": log_prob}

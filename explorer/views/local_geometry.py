"""The Local geometry view's computations (Streamlit-free, disk-cached): descriptor maps over latent planes,
descriptors of samples, the clicked cell's details, the sample pool, and the on-/off-manifold analysis.

Each heavy result goes through ``explorer.cache.cached`` (keyed by the model's weights hash, the code version, the
dtype and every parameter) and runs on ``explorer.device.compute_view(model)``.

Conditional pipelines: every function takes ``condition`` (a DiT ``class_label``, an SD ``prompt``, a guidance scale;
``explorer.views.sizes.default_condition`` is where the views start) and keys its cache entry on its canonical form
(absent when empty, so unconditional models keep their keys). The ``decoder`` map (a latent model's VAE decoder)
takes x_0 latents, not noise: its planes pass through, and its sample descriptors sit at, the x_0 of the seeds'
samples (``anchors="x0"``), computed with the sampler's ``steps`` under ``condition``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from explorer import cache, distributed
from explorer.device import compute_view
from explorer.views.sizes import default_condition, delta_radius, directions_for, latent_dim, sizes_for

#: What a map's inputs are: noise latents z (every map), or for the ``decoder`` the x_0 latents of samples.
ANCHORS = ("z", "x0")


def _condition(model, condition) -> dict:
    return model.canonical_condition(condition)


def anchors_for(map_name: str, anchors: str | None = None) -> str:
    """``anchors`` checked, or the map's default: ``x0`` (the x_0 latents of samples) for the ``decoder``, else
    ``z`` (the latents of the seeds themselves)."""
    if anchors is None:
        return "x0" if map_name == "decoder" else "z"
    if anchors not in ANCHORS:
        raise ValueError(f"anchors must be one of {', '.join(ANCHORS)}; got {anchors!r}")
    return anchors


def _samples_of(model, z: torch.Tensor, steps: int, condition: dict | None = None) -> np.ndarray:
    """G(z) through the ``steps``-step sampler on the compute device, as float32 numpy."""
    view = compute_view(model)
    G = view.generator("sampler", steps=steps, **(condition or {}))
    with torch.no_grad():
        return G(z.to(view.device, view.dtype)).float().cpu().numpy()


def _halves(progress):
    """A ``progress(done, total)`` for one sharded pass that computes what the one-process code reports as two
    halves (ψ/ν, then δ): the fraction of chunks done."""
    return None if progress is None else (lambda done, total: progress(done / max(total, 1)))


def seed_inputs(model, seeds, anchors: str = "z", steps: int | None = None, condition: dict | None = None,
                dtype=torch.float32) -> torch.Tensor:
    """The inputs of the seeds' latents (k, *latent_shape): the latents z themselves (``z``), or the x_0 of their
    samples (``x0``: the ``steps``-step sampler before the decoder, under ``condition``)."""
    z = torch.stack([model.latent_of_seed(int(s), torch.float64) for s in seeds])
    if anchors == "z" or not len(z):
        return z.to(dtype)
    view = compute_view(model)
    x0 = view.run_batched(view.x0_generator(steps, **(condition or {})), z, model.latent_shape)
    return torch.from_numpy(x0).to(dtype)


def plane_for(model, seeds, n: int, extent: float, dtype=torch.float32, anchors: str = "z", steps: int | None = None,
              condition: dict | None = None):
    """The latent plane: through the inputs of three ``seeds`` (``seed_inputs``: their latents z, or with
    ``anchors="x0"`` the x_0 latents of their samples), else (2-D latents) the whole latent plane."""
    from explorer.descriptors import latent_plane

    seeds = [int(s) for s in seeds]
    if len(seeds) == 3:
        points = seed_inputs(model, seeds, anchors, steps, condition, torch.float64)
        return latent_plane(model.latent_shape, anchors=points, n=n, extent=extent, dtype=dtype)
    return latent_plane(model.latent_shape, n=n, extent=extent, dtype=dtype)


def n_directions_for(model, n_directions: int | None = None) -> int:
    """P, the number of Jacobian directions: ``n_directions`` clipped to [1, d], or the full d when None."""
    d = latent_dim(model)
    return d if n_directions is None else max(1, min(int(n_directions), d))


def _sketch(model, P: int) -> int | None:
    """``n_directions`` for the descriptor functions: None (the full Jacobian) when P = d, else P (a random
    orthonormal sketch from seed 0, the same for every latent of a run)."""
    return None if P >= latent_dim(model) else P


def _plane_params(model, map_name, steps, t, seeds, n, extent, n_directions=None, radius=None, direction_seed=0,
                  condition=None, anchors=None) -> dict:
    seeds = [int(s) for s in seeds] if len(seeds) == 3 else []
    t = None if map_name in ("sampler", "decoder") else int(t)
    radius = delta_radius(model) if radius is None else float(radius)
    params = {"map": map_name, "steps": int(steps), "t": t, "seeds": seeds, "n": int(n), "extent": float(extent),
              "n_directions": n_directions_for(model, n_directions), "radius": radius, "model": model.name,
              "direction_seed": int(direction_seed)}
    condition = _condition(model, condition)
    if condition:
        params["condition"] = condition
    if anchors_for(map_name, anchors) != "z":
        params["anchors"] = anchors_for(map_name, anchors)
    return params


def descriptor_plane_is_cached(model, map_name: str, steps: int, t: int | None, seeds, n: int, extent: float,
                               n_directions: int | None = None, radius: float | None = None, direction_seed: int = 0,
                               condition: dict | None = None, dtype: torch.dtype | None = None,
                               anchors: str | None = None) -> bool:
    """Whether ``descriptor_plane`` with these arguments would read the disk cache (no confirm needed)."""
    params = _plane_params(model, map_name, steps, t, seeds, n, extent, n_directions, radius, direction_seed,
                           condition, anchors)
    return cache.exists("descriptor_maps", params, model.weights_hash, _dtype_name(model, dtype))


def _dtype_name(model, dtype) -> str:
    return str(compute_view(model, dtype).dtype).replace("torch.", "")


def descriptor_plane(model, map_name: str, steps: int, t: int | None, seeds, n: int, extent: float,
                     n_directions: int | None = None, progress=None, radius: float | None = None,
                     direction_seed: int = 0, condition: dict | None = None,
                     dtype: torch.dtype | None = None, anchors: str | None = None) -> tuple[dict, dict]:
    """ψ, ν, ν_eff, δ (n, n) over the plane with u, v, singular values, origin and basis (disk-cached).

    ``n_directions``: P Jacobian directions (None or d: the full Jacobian; fewer: a sketch from
    ``direction_seed``, shared by ψ, ν and δ). ``radius``: δ's cross-polytope radius (default
    ``delta_radius(model)``, the same on every view). ``condition``: the generator's conditioning (pipelines).
    ``dtype``: the compute dtype (default the model's, float32); part of the cache key. ``anchors``: what the
    plane passes through (``anchors_for``: the x_0 latents of the seeds' samples for the ``decoder``, else z).
    """
    from explorer.descriptors import descriptor_maps

    params = _plane_params(model, map_name, steps, t, seeds, n, extent, n_directions, radius, direction_seed,
                           condition, anchors)
    seeds, t, P, radius = params["seeds"], params["t"], params["n_directions"], params["radius"]
    condition, anchor_kind = params.get("condition", {}), anchors_for(map_name, anchors)
    view = compute_view(model, dtype)

    def compute():
        plane = plane_for(model, seeds, n, extent, dtype=view.dtype, anchors=anchor_kind, steps=steps,
                          condition=condition)
        backend = distributed.active()
        if backend is not None:  # the same maps, computed chunk by chunk on the workers of a Ray cluster
            from explorer.distributed.compute import descriptor_maps as sharded_maps

            dm = sharded_maps(backend, model, plane, map_name=map_name, steps=steps, t=t, condition=condition,
                              dtype=view.dtype, radius=radius, n_directions=_sketch(model, P),
                              seed=int(direction_seed), progress=_halves(progress))
        else:
            G = view.generator(map_name, steps=steps, t=t, **condition)
            dm = descriptor_maps(G, plane, radius=radius, n_directions=_sketch(model, P), seed=int(direction_seed),
                                 progress=progress)
        anchors = plane.anchor_coords if len(plane.anchor_coords) else np.zeros((0, 2))
        return {**dm.maps, "u": plane.u, "v": plane.v, "singular_values": dm.singular_values,
                "origin": plane.origin.numpy(), "basis": plane.basis.numpy(), "anchor_coords": anchors,
                "radius": np.array(dm.params["radius"]), "n_layer_calls": np.array(dm.params["n_layer_calls"])}

    return cache.cached("descriptor_maps", params, compute, weights_hash=model.weights_hash,
                        dtype=_dtype_name(model, dtype))


def cell_latent(arrays: dict, i: int, j: int) -> np.ndarray:
    """The latent z(u_j, v_i) = origin + u_j e_1 + v_i e_2 of cell (i, j) of a descriptor plane (float64)."""
    return np.asarray(arrays["origin"] + arrays["u"][j] * arrays["basis"][0] + arrays["v"][i] * arrays["basis"][1],
                      dtype=np.float64)


def sample_of_latent(model, map_name: str, steps: int, t: int | None, z, condition: dict | None = None) -> np.ndarray:
    """G(z) of one latent (for the ``decoder``: an x_0 latent) through ``map_name`` under ``condition``, on the
    compute device, as float64 numpy (flat)."""
    view = compute_view(model)
    G = view.generator(map_name, steps=steps, t=None if map_name in ("sampler", "decoder") else t,
                       **_condition(model, condition))
    with torch.no_grad():
        zt = torch.as_tensor(np.asarray(z), dtype=view.dtype).reshape(1, *model.latent_shape).to(view.device)
        return G(zt).double().cpu().numpy().reshape(-1)


def cell_details(model, map_name: str, steps: int, t: int | None, arrays: dict, i: int, j: int,
                 sample: np.ndarray | None = None, condition: dict | None = None) -> dict:
    """The latent of cell (i, j), its image G(z) (``sample`` when already computed), descriptor values and
    singular-value spectrum."""
    u, v = arrays["u"], arrays["v"]
    z = cell_latent(arrays, i, j)
    x = (sample_of_latent(model, map_name, steps, t, z, condition) if sample is None
         else np.asarray(sample, np.float64))
    n = len(u)
    return {"i": i, "j": j, "u": float(u[j]), "v": float(v[i]), "latent": z, "sample": x,
            "values": {k: float(arrays[k][i, j]) for k in ("psi", "nu", "nu_eff", "delta", "n_psi")},
            "singular_values": np.asarray(arrays["singular_values"][i * n + j], dtype=np.float64)}


def pool_params(model, n: int, steps: int, condition: dict | None = None) -> dict:
    """The cache parameters of ``pool`` (the ``pool`` job's ``cached`` check uses them too)."""
    params = {"n": int(n), "steps": int(steps), "model": model.name}
    condition = _condition(model, condition)
    if condition:
        params["condition"] = condition
    return params


def pool(model, n: int, steps: int, condition: dict | None = None) -> tuple[dict, dict]:
    """Latents of seeds 0..n−1 (``latent_of_seed``) and their samples through the ``steps``-step sampler under
    ``condition``."""
    params = pool_params(model, n, steps, condition)

    def compute():
        z = torch.stack([model.latent_of_seed(s) for s in range(n)])
        return {"seeds": np.arange(n), "latents": z.numpy(),
                "samples": _samples_of(model, z, steps, params.get("condition"))}

    return cache.cached("pool", params, compute, weights_hash=model.weights_hash)


def _sample_params(model, map_name, steps, t, n, radius, n_directions=None, condition=None) -> dict:
    t = None if map_name in ("sampler", "decoder") else int(t)
    params = {"map": map_name, "steps": int(steps), "t": t, "n": int(n), "radius": float(radius),
              "n_directions": n_directions_for(model, n_directions), "model": model.name}
    condition = _condition(model, condition)
    if condition:
        params["condition"] = condition
    if anchors_for(map_name) != "z":
        params["inputs"] = anchors_for(map_name)
    return params


def sample_descriptors_is_cached(model, map_name: str, steps: int, t: int | None, n: int, radius: float,
                                 n_directions: int | None = None, condition: dict | None = None) -> bool:
    return cache.exists("sample_descriptors", _sample_params(model, map_name, steps, t, n, radius, n_directions,
                                                             condition), model.weights_hash)


def sample_descriptors(model, map_name: str, steps: int, t: int | None, n: int, radius: float,
                       n_directions: int | None = None, progress=None,
                       condition: dict | None = None) -> tuple[dict, dict]:
    """ψ, ν, ν_eff, δ at the inputs of seeds 0..n−1 (their latents; for the ``decoder`` the x_0 of their samples,
    ``seed_inputs``) under ``condition``, with their generated samples (disk-cached); P = ``n_directions``
    Jacobian directions as in ``descriptor_plane``. ``latents`` holds the inputs the descriptors were taken at."""
    from explorer.descriptors import local_complexity, local_descriptors

    params = _sample_params(model, map_name, steps, t, n, radius, n_directions, condition)
    t, P, condition = params["t"], params["n_directions"], params.get("condition", {})

    def compute():
        z = torch.stack([model.latent_of_seed(s) for s in range(n)])
        backend = distributed.active()
        if backend is not None and not condition and anchors_for(map_name) == "z":
            # descriptors and samples chunk by chunk on the workers of a Ray cluster (unconditional, at z)
            from explorer.distributed.compute import latent_descriptors

            view = compute_view(model)
            d, lc, x = latent_descriptors(backend, model, z, map_name=map_name, steps=steps, t=t, dtype=view.dtype,
                                          n_directions=_sketch(model, P), radius=radius, samples_steps=steps,
                                          progress=_halves(progress))
            return {"seeds": np.arange(n), "latents": z.numpy(), "samples": x.astype(np.float32), "psi": d.psi,
                    "nu": d.nu, "nu_eff": d.nu_eff, "delta": lc.delta}
        inputs = seed_inputs(model, range(n), anchors_for(map_name), steps, condition)
        G = compute_view(model).generator(map_name, steps=steps, t=t, **condition)
        half = (lambda k: (lambda done, total: progress(done / max(total, 1) / 2 + k / 2))) if progress else (
            lambda k: None)
        d = local_descriptors(G, inputs, n_directions=_sketch(model, P), progress=half(0))
        lc = local_complexity(G, inputs, radius, n_directions=_sketch(model, P), progress=half(1))
        x = _samples_of(model, z, steps, condition)
        return {"seeds": np.arange(n), "latents": inputs.numpy(), "samples": x, "psi": d.psi, "nu": d.nu,
                "nu_eff": d.nu_eff, "delta": lc.delta}

    return cache.cached("sample_descriptors", params, compute, weights_hash=model.weights_hash)


def local_geometry_defaults(model, preset: str = "default") -> dict:
    """The Local geometry view's defaults for ``model`` (the page's widget defaults, and what ``python -m explorer
    precompute`` ships): map, steps, t, anchor seeds, plane size n and extent, P Jacobian directions, δ radius
    (``delta_radius``: the model's one rule), pool and sample counts, from ``sizes_for(model, preset)``, and the
    conditioning (``default_condition``: a DiT class, an SD prompt; {} otherwise)."""
    P = sizes_for(model, preset)
    n, extent = int(P["plane_n"]), float(P["extent"])
    T = model.num_train_timesteps
    return {"map": "sampler", "steps": int(P["steps"]), "t": None if T is None else int(0.17 * T),
            "seeds": [int(s) for s in P["seeds"]], "n": n, "extent": extent,
            "n_directions": directions_for(model, P), "radius": delta_radius(model),
            "n_pool": int(P["n_pool"]), "n_samples": int(P["n_samples"]), "condition": default_condition(model)}


DESCRIPTORS = ("psi", "nu", "nu_eff", "delta")


def descriptor_correlations(arrays: dict):
    """Pearson and Spearman correlations of ψ, ν, ν_eff, δ over the samples (pandas DataFrames)."""
    import pandas as pd

    df = pd.DataFrame({k: np.asarray(arrays[k], dtype=np.float64) for k in DESCRIPTORS})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        return df.corr(method="pearson"), df.corr(method="spearman")


def on_off(model, map_name: str, t: int, steps: int, grid_n: int, r_factor: float = 0.05):
    """Per-input descriptors with the on/off label (column ``on``) and the class counts (disk-cached)."""
    import pandas as pd

    from explorer.analysis.onmanifold import on_off_manifold

    params = {"map": map_name, "t": int(t), "steps": int(steps), "grid_n": int(grid_n), "r_factor": float(r_factor),
              "model": model.name}

    def compute():
        table = on_off_manifold(compute_view(model), map=map_name, t=int(t), steps=int(steps), grid_n=int(grid_n),
                                r_on_factor=float(r_factor)).table
        return {c: table[c].to_numpy() for c in table.columns}

    arrays, _ = cache.cached("on_off", params, compute, weights_hash=model.weights_hash)
    table = pd.DataFrame({c: arrays[c] for c in ("x", "y", "dist", "on", "psi", "nu", "nu_eff", "delta")})
    on = int(table["on"].sum())
    return table, {"on": on, "off": len(table) - on}


def on_off_sweep(model, map_name: str, steps: int, grid_n: int, r_factor: float, n_ts: int):
    """AUROC per descriptor over ``n_ts`` timesteps up to T/2 (the paper finds the best separation near 0.17·T): one
    row per t, one column per descriptor."""
    import pandas as pd

    from explorer.analysis.onmanifold import DESCRIPTORS, auroc

    T = model.num_train_timesteps
    ts = sorted({int(x) for x in np.linspace(0.05 * T, 0.5 * T, n_ts)})
    rows = []
    for t in ts:
        table, _ = on_off(model, map_name, t, steps, grid_n, r_factor)
        rows.append({"t": t, **{k: auroc(table[k], table["on"]) for k in DESCRIPTORS}})
    return pd.DataFrame(rows)

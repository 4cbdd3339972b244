"""Driver side of the sharded computations: what the library calls in place of its one-process loops while a backend
is active. Each returns what the one-process code would compute (the same functions, on the same rows, with the
directions drawn here once), so the callers store the same cache entries."""

from __future__ import annotations

import math

import numpy as np
import torch

#: Latents per chunk at most (a worker splits a chunk further by its memory budget, explorer.device).
MAX_LATENT_CHUNK = 1024


def latent_chunk(n: int, workers: int) -> int:
    """Latents per chunk: about four chunks per worker (so that a slow or lost worker delays little), at most
    MAX_LATENT_CHUNK."""
    return max(1, min(MAX_LATENT_CHUNK, math.ceil(n / (4 * max(1, workers)))))


def latent_descriptors(backend, model, z: torch.Tensor, *, map_name: str, steps: int, t: int | None = None,
                       condition: dict | None = None, dtype: torch.dtype, n_directions: int | None = None,
                       seed: int = 0, radius: float | None = None, rank_tol: float = 1e-3, psi_floor: float = 1e-8,
                       samples_steps: int | None = None, chunk: int | None = None, progress=None):
    """(LocalDescriptors, LocalComplexity or None, samples or None) at the latents z, as ``local_descriptors(G, z,
    n_directions=n_directions, seed=seed)``, ``local_complexity(G, z, radius, n_directions=n_directions, seed=seed)``
    and the ``samples_steps``-step sampler's G(z) (float64 of the compute dtype) would give them here, G being
    ``compute_view(model, dtype).generator(map_name, steps=steps, t=t, **condition)``. The sketch directions of
    both (the full identity, or a random orthonormal B from ``seed``) are drawn here once and shipped."""
    from explorer.descriptors import LocalComplexity, descriptors_from_singular_values
    from explorer.descriptors.directions import check_latents, resolve_directions

    z = check_latents(z)
    d = int(np.prod(z.shape[1:]))
    B = resolve_directions(d, None, n_directions, seed)
    shared = {"map": map_name, "steps": steps, "t": t, "condition": dict(condition or {}),
              "dtype": str(dtype).replace("torch.", ""), "directions": B.numpy(), "rank_tol": rank_tol,
              "psi_floor": psi_floor, "radius": None if radius is None else float(radius),
              "delta_directions": resolve_directions(d, None, n_directions, seed, default_full=False).numpy(),
              "samples_steps": samples_steps, "z_dtype": str(z.dtype).replace("torch.", "")}
    # numpy has no bfloat16: such latents travel as float32 (exact) and are cast back on the worker
    rows = z.numpy() if z.dtype in (torch.float16, torch.float32, torch.float64) else z.float().numpy()
    out = backend.map_chunks(model, "descriptors", shared, {"z": rows},
                             chunk or latent_chunk(len(z), backend.workers), progress)
    desc = descriptors_from_singular_values(out["singular_values"], rank_tol, psi_floor, B.shape[0])
    lc = None
    if radius is not None:
        lc = LocalComplexity(out["delta"], int(out["n_layer_calls"][0]), int(out["n_neurons"][0]), float(radius),
                             int(shared["delta_directions"].shape[0]))
    return desc, lc, out.get("samples")


def descriptor_maps(backend, model, plane, *, map_name: str, steps: int, t: int | None, condition: dict | None,
                    dtype: torch.dtype, radius: float | None = None, n_directions: int | None = None, seed: int = 0,
                    rank_tol: float = 1e-3, psi_floor: float = 1e-8, progress=None):
    """``explorer.descriptors.descriptor_maps(G, plane, radius, n_directions=..., seed=...)`` on the backend."""
    from explorer.descriptors.planes import assemble_maps

    radius = float(plane.u[1] - plane.u[0]) / 4 if radius is None else float(radius)
    desc, lc, _ = latent_descriptors(backend, model, plane.latents, map_name=map_name, steps=steps, t=t,
                                     condition=condition, dtype=dtype, n_directions=n_directions, seed=seed,
                                     radius=radius, rank_tol=rank_tol, psi_floor=psi_floor, progress=progress)
    return assemble_maps(plane, desc, lc, radius, seed, rank_tol, psi_floor)


def log_density(backend, density, P: np.ndarray, progress=None) -> np.ndarray | None:
    """``density.fn`` at the rows of P in the density's own chunks (``density.chunk`` rows, as the one-process loop
    takes them), on the backend; None when the density cannot be shipped (``density.remote`` unset: then it is
    evaluated here). ``density.remote`` = (model, kwargs): the workers evaluate that model's
    ``log_density(**kwargs)``; (model, fn): they evaluate the shipped object ``fn`` (a KDE)."""
    remote = getattr(density, "remote", None)
    if remote is None or len(P) == 0:
        return None
    model, how = remote
    shared = {"kwargs": dict(how)} if isinstance(how, dict) else {"fn": how}
    out = backend.map_chunks(model, "log_density", shared, {"x": P}, density.chunk, progress)
    return out["log_p"]


def log_prob(backend, model, x: np.ndarray, kwargs: dict, chunk: int, progress=None) -> np.ndarray:
    """``model.log_prob(x[s:s + chunk], **kwargs)`` chunk by chunk, on the backend."""
    return backend.map_chunks(model, "log_prob", {"kwargs": dict(kwargs)}, {"x": np.asarray(x)}, chunk,
                              progress)["log_p"]

"""Local complexity δ: boundary neurons of G inside a cross-polytope around z (Humayun et al. 2025).

δ(z) = number of (activation call, neuron) pairs whose pre-activation sign is not constant over the
centre z and the 2P vertices z ± r·v_p. Every call of an activation module counts as its own layer,
so an S-step sampler counts S copies of each layer of ε_θ.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explorer.descriptors.directions import check_latents, resolve_directions
from explorer.models.base import module_device_dtype

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus,
               nn.Hardtanh, nn.Hardswish, nn.Tanh, nn.Sigmoid)


@dataclass
class LocalComplexity:
    """``delta`` (N,) boundary-neuron counts; ``n_layer_calls`` hooked activation calls per forward pass."""

    delta: np.ndarray
    n_layer_calls: int
    n_neurons: int
    radius: float
    n_directions: int


def activation_modules(G: nn.Module) -> list[nn.Module]:
    """The activation modules inside G that δ hooks."""
    return [m for m in G.modules() if isinstance(m, ACTIVATIONS)]


def cross_polytope(z: torch.Tensor, B: torch.Tensor, radius: float) -> torch.Tensor:
    """(N, 2P+1, *shape): the centre z, then z + r·v_p, then z − r·v_p."""
    V = (radius * B).to(z.dtype).reshape(B.shape[0], *z.shape[1:])
    return torch.cat([z[:, None], z[:, None] + V[None], z[:, None] - V[None]], dim=1)


def local_complexity(G: nn.Module, z, radius: float, directions=None, n_directions: int | None = None,
                     seed: int = 0, chunk_size: int | None = None, progress=None) -> LocalComplexity:
    """δ at each latent of z: the boundary-neuron count over the cross-polytope of ``radius``.

    Directions: the given orthonormal rows, ``n_directions`` random ones from ``seed``, or by
    default a random orthonormal basis of all d directions.
    """
    z = check_latents(z)
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive finite number, got {radius}")
    modules = activation_modules(G)
    if not modules:
        raise ValueError("G contains no activation module to hook (nn.ReLU, nn.SiLU, …); δ needs them "
                         "(a G built on F.relu would report δ = 0 everywhere)")
    d = int(np.prod(z.shape[1:]))
    B = resolve_directions(d, directions, n_directions, seed, default_full=False)
    n_vert = 2 * B.shape[0] + 1
    device, dtype = module_device_dtype(G, (z.device, z.dtype))
    if chunk_size is None:
        from explorer.device import rows_per_chunk

        chunk_size = rows_per_chunk(G, z[:1].to(device, dtype), n_vert) if len(z) else 1
    state = {"counts": None, "calls": 0, "neurons": 0}
    owner = threading.get_ident()

    def hook(_module, inputs):
        if threading.get_ident() != owner:  # the networks are shared: count only this call's passes
            return
        x = inputs[0]
        pos = (x > 0).reshape(-1, n_vert, x[0].numel())
        crossed = pos.any(1) & ~pos.all(1)
        state["counts"] += crossed.sum(1)
        state["calls"] += 1
        state["neurons"] += x[0].numel()

    handles = [m.register_forward_pre_hook(hook) for m in modules]
    deltas = []
    try:
        with torch.no_grad():
            for start in range(0, z.shape[0], chunk_size):
                zc = z[start:start + chunk_size].to(device=device, dtype=dtype)
                state.update(counts=torch.zeros(zc.shape[0], dtype=torch.long, device=device), calls=0, neurons=0)
                G(cross_polytope(zc, B.to(device), radius).reshape(-1, *zc.shape[1:]))
                deltas.append(state["counts"].cpu())
                if progress is not None:
                    progress(min(start + chunk_size, z.shape[0]), z.shape[0])
    finally:
        for h in handles:
            h.remove()
    delta = torch.cat(deltas).numpy() if deltas else np.zeros(0, dtype=np.int64)
    return LocalComplexity(delta, state["calls"], state["neurons"], float(radius), B.shape[0])

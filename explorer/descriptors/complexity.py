"""Local complexity δ: boundary neurons of G inside a cross-polytope around z (Humayun et al. 2025).

δ(z) = number of (activation call, neuron) pairs whose pre-activation sign is not constant over the
centre z and the 2P vertices z ± r·v_p. Every call of an activation module counts as its own layer,
so an S-step sampler counts S copies of each layer of ε_θ.

What is hooked (``preactivation_points``): the input of every torch activation module (``nn.ReLU``, ``nn.SiLU``,
``nn.GELU``, …, which is what diffusers' ``get_activation`` builds for its ResNet blocks, and the gate of
``SwiGLU``), and, for diffusers' ``GELU`` / ``ApproximateGELU`` / ``GEGLU`` (which apply ``F.gelu`` or a sigmoid to
the output of their own ``.proj``), the output of ``.proj`` (for ``GEGLU`` its gate half). Not counted: softmax in
attention and every normalisation (GroupNorm, LayerNorm, ada-norm), the products of gated units, and functional
activations outside modules (in diffusers' networks these act on the timestep or class embedding, the same at
every vertex). For smooth activations (SiLU, GELU) δ counts the sign changes of those inputs over the
cross-polytope, an analogue of the ReLU count, not a count of linear regions.

A network that runs a batch twice in one call (classifier-free guidance doubles it along dim 0, as whole copies
of the batch) counts each copy's neurons: a call's rows are read as (copies, latents, vertices).
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


def _diffusers_activations() -> tuple[tuple, tuple]:
    """(projected-GELU, gated-GELU, plain activation) classes of diffusers; empty when diffusers is missing."""
    try:
        from diffusers.models.activations import GEGLU, GELU, ApproximateGELU, FP32SiLU
    except ImportError:  # pragma: no cover - diffusers is a requirement, but δ does not need it
        return (), (), ()
    return (GELU, ApproximateGELU), (GEGLU,), (FP32SiLU,)


def activation_modules(G: nn.Module) -> list[nn.Module]:
    """The activation modules inside G that δ hooks (torch's, and diffusers' GELU/GEGLU/FP32SiLU units)."""
    projected, gated, plain = _diffusers_activations()
    return [m for m in G.modules() if isinstance(m, ACTIVATIONS + projected + gated + plain)]


def _whole(x: torch.Tensor) -> torch.Tensor:
    return x


def _gate_half(x: torch.Tensor) -> torch.Tensor:
    return x.chunk(2, dim=-1)[1]


def preactivation_points(G: nn.Module) -> list[tuple[nn.Module, str, object]]:
    """(module, "input" | "output", select) for every pre-activation tensor δ reads: the input of an activation
    module, or the (selected part of the) output of a diffusers GELU/GEGLU unit's ``.proj``."""
    projected, gated, plain = _diffusers_activations()
    points = []
    for m in activation_modules(G):
        if isinstance(m, ACTIVATIONS + plain):
            points.append((m, "input", _whole))
        else:
            points.append((m.proj, "output", _gate_half if isinstance(m, gated) else _whole))
    return points


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
    points = preactivation_points(G)
    if not points:
        raise ValueError("G contains no activation module to hook (nn.ReLU, nn.SiLU, diffusers' GELU, …); δ needs "
                         "them (a G built on F.relu would report δ = 0 everywhere)")
    d = int(np.prod(z.shape[1:]))
    B = resolve_directions(d, directions, n_directions, seed, default_full=False)
    n_vert = 2 * B.shape[0] + 1
    device, dtype = module_device_dtype(G, (z.device, z.dtype))
    if chunk_size is None:
        from explorer.device import progress_chunk, rows_per_chunk

        chunk_size = progress_chunk(rows_per_chunk(G, z[:1].to(device, dtype), n_vert), len(z)) if len(z) else 1
    state = {"counts": None, "calls": 0, "neurons": 0}
    owner = threading.get_ident()

    def count(x: torch.Tensor) -> None:
        if threading.get_ident() != owner:  # the networks are shared: count only this call's passes
            return
        n = state["counts"].shape[0]
        copies = x.shape[0] // (n * n_vert)
        if copies * n * n_vert != x.shape[0]:
            raise ValueError(f"an activation saw {x.shape[0]} rows for {n} latents × {n_vert} vertices; δ needs G to "
                             "run each row of its input through the network (or whole copies of the batch)")
        pos = (x > 0).reshape(copies, n, n_vert, -1)
        crossed = pos.any(2) & ~pos.all(2)
        state["counts"] += crossed.sum((0, 2))
        state["calls"] += 1
        state["neurons"] += copies * pos.shape[-1]

    def pre_hook(select):
        return lambda _module, inputs: count(select(inputs[0]))

    def post_hook(select):
        return lambda _module, _inputs, output: count(select(output))

    handles = [m.register_forward_pre_hook(pre_hook(sel)) if where == "input"
               else m.register_forward_hook(post_hook(sel)) for m, where, sel in points]
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

"""Batched Jacobian sketches J·Bᵀ of a generator by forward-mode AD: ``torch.func.vmap`` over ``jvp``.

The work runs where G's networks are (``explorer.models.base.module_device_dtype``): latents and directions are
moved there, chunked by the memory budget (``explorer.device.rows_per_chunk``: P + 1 copies of each latent
are live at once, the primal and P tangents).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.func import jvp, vmap

from explorer.device import FORWARD_AD_LOCK
from explorer.models.base import module_device_dtype


def sketch_chunk_size(G, z: torch.Tensor, n_directions: int) -> int:
    """Latents per chunk for a P-direction sketch of G at latents like z (the memory budget's rule)."""
    from explorer.device import rows_per_chunk

    device, dtype = module_device_dtype(G, (z.device, z.dtype))
    return rows_per_chunk(G, z[:1].to(device, dtype), n_directions + 1)


def iter_jacobian_sketches(G, z: torch.Tensor, B: torch.Tensor, chunk_size: int | None = None,
                           progress=None) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, J(z[start:start+b])·Bᵀ) chunk by chunk: (b, D, P) tensors on G's device in G's dtype.

    Column p is the JVP ∂G/∂z · v_p; the P tangents of one chunk go through G in one vmapped forward-mode
    pass (the primal is computed once per chunk).
    """
    device, dtype = module_device_dtype(G, (z.device, z.dtype))
    n, shape = z.shape[0], tuple(z.shape[1:])
    P = B.shape[0]
    V = B.to(device=device, dtype=dtype).reshape(P, *shape)
    if chunk_size is None:
        from explorer.device import progress_chunk

        chunk_size = progress_chunk(sketch_chunk_size(G, z, P), n) if n else 1
    for start in range(0, n, chunk_size):
        zc = z[start:start + chunk_size].to(device=device, dtype=dtype)

        def column(v, zc=zc):
            return jvp(G, (zc,), (v.expand_as(zc),))[1]

        try:
            with FORWARD_AD_LOCK:
                out = vmap(column)(V)  # (P, b, *out_shape)
        except RuntimeError as err:
            raise ValueError(f"G could not be differentiated by torch.func.jvp: {err}") from err
        J = out.reshape(P, out.shape[1], -1).permute(1, 2, 0)
        if not torch.isfinite(J).all():
            raise ValueError("the Jacobian of G holds non-finite values at some latents")
        yield start, J
        if progress is not None:
            progress(min(start + chunk_size, n), n)


def jacobian_sketch(G, z: torch.Tensor, B: torch.Tensor, chunk_size: int | None = None,
                    progress=None) -> torch.Tensor:
    """J(z)·Bᵀ for every latent of the batch z: a (N, D, P) CPU tensor in G's dtype (see
    ``iter_jacobian_sketches``)."""
    parts = [J.cpu() for _, J in iter_jacobian_sketches(G, z, B, chunk_size, progress)]
    if not parts:
        _, dtype = module_device_dtype(G, (z.device, z.dtype))
        return torch.zeros((0, 0, B.shape[0]), dtype=dtype)
    return torch.cat(parts)


def value_and_jacobian(F, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(F(x), ∂F/∂x) for a row-wise map F of a flat batch x (M, D): values (M, D'), Jacobians (M, D', D).

    The D tangents e_p go through F in one vmapped forward-mode pass over the whole batch.
    """
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    with FORWARD_AD_LOCK:
        value, cols = vmap(lambda v: jvp(F, (x,), (v.expand_as(x),)))(eye)
    return value[0], cols.permute(1, 2, 0)

"""Batched Jacobian sketches J·Bᵀ of a generator by forward-mode AD: ``torch.func.vmap`` over ``jvp``."""

from __future__ import annotations

import torch
from torch.func import jvp, vmap


def jacobian_sketch(G, z: torch.Tensor, B: torch.Tensor, chunk_size: int | None = None,
                    progress=None) -> torch.Tensor:
    """J(z)·Bᵀ for every latent of the batch z: a (N, D, P) tensor in z's dtype.

    Column p is the JVP ∂G/∂z · v_p; the P tangents of one chunk go through G in one vmapped
    forward-mode pass (the primal is computed once per chunk). ``chunk_size`` latents at a time
    (default: about 32,768 tangent rows per chunk) keep memory bounded for any N.
    """
    n, shape = z.shape[0], tuple(z.shape[1:])
    P = B.shape[0]
    V = B.to(z.dtype).reshape(P, *shape)
    if chunk_size is None:
        chunk_size = max(1, 32768 // P)
    cols = []
    for start in range(0, n, chunk_size):
        zc = z[start:start + chunk_size]

        def column(v, zc=zc):
            return jvp(G, (zc,), (v.expand_as(zc),))[1]

        try:
            out = vmap(column)(V)  # (P, b, *out_shape)
        except RuntimeError as err:
            raise ValueError(f"G could not be differentiated by torch.func.jvp: {err}") from err
        cols.append(out.reshape(P, out.shape[1], -1).permute(1, 2, 0))
        if progress is not None:
            progress(min(start + chunk_size, n), n)
    J = torch.cat(cols)
    if not torch.isfinite(J).all():
        raise ValueError("the Jacobian of G holds non-finite values at some latents")
    return J


def value_and_jacobian(F, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(F(x), ∂F/∂x) for a row-wise map F of a flat batch x (M, D): values (M, D'), Jacobians (M, D', D).

    The D tangents e_p go through F in one vmapped forward-mode pass over the whole batch.
    """
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    value, cols = vmap(lambda v: jvp(F, (x,), (v.expand_as(x),)))(eye)
    return value[0], cols.permute(1, 2, 0)

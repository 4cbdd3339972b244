"""The top-k singular values of J = ∂G/∂z by a randomized SVD (Halko, Martinsson & Tropp 2011), for maps too large
for a full Jacobian (DESIGN.md §6): a JVP range finder, then VJPs.

    Y = J·Ωᵀ            l = k + p JVPs (Ω: l orthonormal rows from ``seed``, shared by every latent)
    Q = qr(Y)           an orthonormal basis (D × l) of J's dominant range
    (q power iterations: Q = qr(J·qr(Jᵀ·Q)), l VJPs and l JVPs each, for spectra that decay slowly)
    C = Qᵀ·J            l VJPs (the rows qᵢᵀ J)
    σ_i ≈ σ_i(C),  i ≤ k

σ_i(C) ≤ σ_i(J) for every i (C is a projection of J), with equality when J's range lies in span(Q), e.g.
l ≥ rank J. What this gives is an estimate of J's own top singular values, not the singular values of a sketch
J·Bᵀ (``jacobian_sketch``): the two are different descriptors, and a chart says which one it shows.

Memory: the VJPs keep G's reverse-mode graph for a chunk of latents (every unrolled step of a sampler), so chunks
are sized for l + 1 copies of each of G's steps.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import jvp, vjp, vmap

from explorer.descriptors.directions import check_latents, random_directions
from explorer.device import FORWARD_AD_LOCK
from explorer.models.base import module_device_dtype


def _orthonormal_columns(Y: torch.Tensor) -> torch.Tensor:
    """Q (b, D, l) with orthonormal columns spanning those of Y (b, D, l), computed in float64."""
    return torch.linalg.qr(Y.double(), mode="reduced")[0]


def randomized_singular_values(G, z, rank: int, oversample: int = 8, n_iter: int = 1, seed: int = 0,
                               chunk_size: int | None = None, progress=None) -> np.ndarray:
    """(N, rank) float64: estimates of the ``rank`` largest singular values of ∂G/∂z at each latent of z, by a
    randomized SVD with ``oversample`` extra directions and ``n_iter`` power iterations (see the module docstring).
    Runs where G's networks are, chunked by the memory budget."""
    z = check_latents(z)
    d = int(np.prod(z.shape[1:]))
    if not 1 <= rank <= d:
        raise ValueError(f"rank must be in [1, {d}] (the latent dimension), got {rank}")
    if oversample < 0 or n_iter < 0:
        raise ValueError(f"oversample and n_iter must be non-negative, got {oversample} and {n_iter}")
    n_cols = min(d, rank + oversample)
    device, dtype = module_device_dtype(G)
    shape = tuple(z.shape[1:])
    omega = random_directions(d, n_cols, seed).to(device=device, dtype=dtype).reshape(n_cols, *shape)
    if chunk_size is None:
        from explorer.device import progress_chunk, rows_per_chunk

        steps = max(1, int(getattr(G, "steps", 1)))
        chunk_size = rows_per_chunk(G, z[:1].to(device, dtype), (n_cols + 1) * steps) if len(z) else 1
        chunk_size = progress_chunk(chunk_size, len(z))
    out = []
    for start in range(0, len(z), chunk_size):
        zc = z[start:start + chunk_size].to(device=device, dtype=dtype)
        b = zc.shape[0]

        def jvps(V, zc=zc):  # V (l, b, *shape) → J·V (l, b, *out_shape), one tangent set per latent
            with FORWARD_AD_LOCK:
                return vmap(lambda v: jvp(G, (zc,), (v,))[1])(V)

        Y = jvps(omega[:, None].expand(n_cols, b, *shape))
        out_shape = tuple(Y.shape[2:])
        Q = _orthonormal_columns(Y.reshape(n_cols, b, -1).permute(1, 2, 0))  # (b, D, l)
        _, pullback = vjp(G, zc)

        def vjps(Q, b=b, out_shape=out_shape, pullback=pullback):  # Q (b, D, l) → rows qᵀJ as (b, l, d)
            U = Q.permute(2, 0, 1).reshape(n_cols, b, *out_shape).to(dtype)
            return vmap(lambda u: pullback(u)[0])(U).reshape(n_cols, b, d).permute(1, 0, 2)

        for _ in range(int(n_iter)):
            W = _orthonormal_columns(vjps(Q).transpose(1, 2))  # (b, d, l): an orthonormal basis of Jᵀ Q
            Y = jvps(W.permute(2, 0, 1).reshape(n_cols, b, *shape).to(dtype))
            Q = _orthonormal_columns(Y.reshape(n_cols, b, -1).permute(1, 2, 0))
        C = vjps(Q).double()  # (b, l, d)
        if not torch.isfinite(C).all():
            raise ValueError("the Jacobian of G holds non-finite values at some latents")
        out.append(torch.linalg.svdvals(C)[:, :rank].cpu().numpy())
        if progress is not None:
            progress(min(start + chunk_size, len(z)), len(z))
    return np.concatenate(out) if out else np.zeros((0, rank))

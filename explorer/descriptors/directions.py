"""Input checks and the orthonormal direction sets B (P, d) shared by every latent of one run."""

from __future__ import annotations

import math

import torch


def check_latents(z, latent_shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """A finite floating batch (B, *latent_shape); raises a one-sentence ValueError otherwise."""
    if not torch.is_tensor(z):
        z = torch.as_tensor(z)
    if not z.is_floating_point():
        z = z.to(torch.get_default_dtype())
    if z.ndim < 2:
        raise ValueError(f"z must be a batch (B, *latent_shape), got shape {tuple(z.shape)}; add a batch axis")
    if latent_shape is not None and tuple(z.shape[1:]) != tuple(latent_shape):
        raise ValueError(f"z must have shape (B, {', '.join(map(str, latent_shape))}), got {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError("z holds non-finite values (NaN or inf)")
    return z


def random_directions(d: int, n_directions: int, seed: int = 0) -> torch.Tensor:
    """P = ``n_directions`` orthonormal rows in R^d (QR of a Gaussian matrix from ``seed``), float64."""
    if not 1 <= n_directions <= d:
        raise ValueError(f"n_directions must be in [1, {d}] (the latent dimension), got {n_directions}")
    gen = torch.Generator().manual_seed(int(seed))
    q, r = torch.linalg.qr(torch.randn(d, n_directions, generator=gen, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).T.contiguous()


def resolve_directions(d: int, directions=None, n_directions: int | None = None, seed: int = 0,
                       default_full: bool = True) -> torch.Tensor:
    """B as a float64 (P, d) tensor: the given one (checked), a random one of P rows, or I_d."""
    if directions is not None:
        if n_directions is not None:
            raise ValueError("give either directions or n_directions, not both")
        B = torch.as_tensor(directions, dtype=torch.float64)
        if B.ndim != 2 or B.shape[1] != d:
            raise ValueError(f"directions must be a (P, {d}) matrix, got shape {tuple(B.shape)}")
        if B.shape[0] > d or not torch.isfinite(B).all():
            raise ValueError(f"directions must hold at most {d} finite rows, got {B.shape[0]}")
        err = (B @ B.T - torch.eye(B.shape[0], dtype=torch.float64)).abs().max().item()
        if err > 1e-5 * max(1.0, math.sqrt(d)):
            raise ValueError(f"directions must have orthonormal rows (max |B Bᵀ − I| = {err:.2e})")
        return B
    if n_directions is not None:
        return random_directions(d, int(n_directions), seed)
    if default_full:
        return torch.eye(d, dtype=torch.float64)
    return random_directions(d, d, seed)

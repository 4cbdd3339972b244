"""Local scaling ψ and local rank ν, ν_eff from the singular values of J = ∂G/∂z (Humayun et al. 2025)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.descriptors.directions import check_latents, resolve_directions
from explorer.descriptors.jacobian import iter_jacobian_sketches

#: What the singular values of a descriptor run are (``LocalDescriptors.svd``), as a chart labels them.
SVD_METHODS = {
    "sketch": "singular values of the P-direction sketch J·Bᵀ",
    "randomized": "top-k singular values of J (randomized SVD)",
}


@dataclass
class LocalDescriptors:
    """One row per latent. ``singular_values`` (N, min(D, P)) sorted σ_1 ≥ σ_2 ≥ …, float64. ``svd``: which
    singular values they are (a key of ``SVD_METHODS``; ``label`` says it in words)."""

    psi: np.ndarray
    n_psi: np.ndarray
    nu: np.ndarray
    nu_eff: np.ndarray
    singular_values: np.ndarray
    n_directions: int
    svd: str = "sketch"

    @property
    def label(self) -> str:
        return SVD_METHODS[self.svd]


def descriptors_from_singular_values(s: np.ndarray, rank_tol: float = 1e-3, psi_floor: float = 1e-8,
                                     n_directions: int | None = None) -> LocalDescriptors:
    """ψ = Σ log σ_i over σ_i > psi_floor·σ_1; ν = #{σ_i > rank_tol·σ_1}; ν_eff = exp(H(σ/Σσ))."""
    s = np.asarray(s, dtype=np.float64)
    top = s[:, :1]
    kept = s > psi_floor * top
    psi = np.where(kept, np.log(np.where(kept, s, 1.0)), 0.0).sum(1)
    psi = np.where(kept.any(1), psi, -np.inf)
    nu = (s > rank_tol * top).sum(1)
    total = s.sum(1, keepdims=True)
    p = np.divide(s, total, out=np.zeros_like(s), where=total > 0)
    entropy = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(1)
    nu_eff = np.where(total[:, 0] > 0, np.exp(entropy), 0.0)
    return LocalDescriptors(psi, kept.sum(1), nu, nu_eff, s, int(n_directions or s.shape[1]))


def local_descriptors(G, z, directions=None, n_directions: int | None = None, seed: int = 0,
                      rank_tol: float = 1e-3, psi_floor: float = 1e-8, chunk_size: int | None = None,
                      progress=None, svd: str = "sketch", oversample: int = 8, n_iter: int = 1) -> LocalDescriptors:
    """ψ, ν, ν_eff of G at each latent of the batch z (B, *latent_shape).

    ``svd="sketch"`` (default): from the singular values of J = ∂G/∂z (D × d), or of the sketch J·Bᵀ when
    ``directions`` B (P, d) with orthonormal rows is given (``n_directions=P`` draws one from ``seed``).
    ``svd="randomized"``: from estimates of the top k = ``n_directions`` singular values of J itself
    (``explorer.descriptors.randomized``, with ``oversample`` and ``n_iter``). Singular values in float64. Runs
    where G's networks are (a model view's device), chunked by the memory budget; results are CPU numpy.
    """
    z = check_latents(z)
    d = int(np.prod(z.shape[1:]))
    if svd not in SVD_METHODS:
        raise ValueError(f"unknown svd {svd!r}; valid: {', '.join(SVD_METHODS)}")
    if svd == "randomized":
        from explorer.descriptors.randomized import randomized_singular_values

        if directions is not None:
            raise ValueError("svd='randomized' draws its own range-finder directions: give n_directions only")
        k = d if n_directions is None else int(n_directions)
        s = randomized_singular_values(G, z, k, oversample, n_iter, seed, chunk_size, progress)
        out = descriptors_from_singular_values(s, rank_tol, psi_floor, k)
        out.svd = "randomized"
        return out
    B = resolve_directions(d, directions, n_directions, seed)
    parts = []
    with torch.no_grad():
        for _, J in iter_jacobian_sketches(G, z, B, chunk_size=chunk_size, progress=progress):
            parts.append(torch.linalg.svdvals(J.double()).cpu().numpy())
    s = np.concatenate(parts) if parts else np.zeros((0, B.shape[0]))
    return descriptors_from_singular_values(s, rank_tol, psi_floor, B.shape[0])

"""Latent planes and the ψ / ν / ν_eff / δ maps over them, ready for heatmaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from explorer.descriptors.complexity import local_complexity
from explorer.descriptors.local import local_descriptors
from explorer.errors import UserError, require_memory


@dataclass
class LatentPlane:
    """z(u, v) = origin + u·e_1 + v·e_2 on an n × n grid with u, v ∈ [−extent, extent].

    ``latents`` (n², *latent_shape) in row-major order: row i ↔ v[i], column j ↔ u[j], so a map of
    shape (n, n) is ``values.reshape(n, n)`` with rows along v (a heatmap's y axis).
    """

    origin: torch.Tensor
    basis: torch.Tensor
    u: np.ndarray
    v: np.ndarray
    latents: torch.Tensor
    anchor_coords: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def n(self) -> int:
        return len(self.u)

    def coords_of(self, z: torch.Tensor) -> np.ndarray:
        """Plane coordinates (u, v) of latents z projected onto the plane."""
        flat = (z.reshape(len(z), -1).double() - self.origin.reshape(1, -1).double())
        return (flat @ self.basis.double().T).numpy()


def gram_schmidt(vectors: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows spanning the rows of ``vectors`` (2, d), in order; error if they are dependent."""
    out = []
    for w in vectors.double():
        for e in out:
            w = w - (w @ e) * e
        norm = w.norm()
        if norm < 1e-9 * max(1.0, vectors.double().abs().max().item()):
            raise ValueError("the plane's directions are linearly dependent (anchors on one line?)")
        out.append(w / norm)
    return torch.stack(out)


def latent_plane(latent_shape, anchors=None, origin=None, directions=None, n: int = 64,
                 extent: float = 3.0, dtype: torch.dtype = torch.float32) -> LatentPlane:
    """The plane through three ``anchors`` (origin = the first, basis = Gram–Schmidt of the differences
    to the other two), or through ``origin`` along two ``directions``, or (d = 2, neither given) the
    latent plane itself with its standard axes."""
    latent_shape = tuple(latent_shape)
    d = int(np.prod(latent_shape))
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2 or not (np.isfinite(extent) and extent > 0):
        raise UserError(f"need an integer n ≥ 2 and a finite extent > 0, got n={n!r}, extent={extent!r}")
    n = int(n)
    itemsize = torch.empty(0, dtype=dtype).element_size()
    require_memory(float(n) * n * (4 * 8 + d * (8 + itemsize)), f"a {n} × {n} latent plane in {d} dimensions",
                   "lower the grid size (n, --grid)")
    for name, value in (("anchors", anchors), ("origin", origin), ("directions", directions)):
        if value is None:
            continue
        value = torch.as_tensor(value, dtype=torch.float64)
        if not torch.isfinite(value).all():
            raise UserError(f"{name} hold NaN or infinite values")
        if value.numel() and float(value.abs().max()) > 1e150:  # squares overflow float64
            raise UserError(f"{name} are too large (|z| up to {float(value.abs().max()):.3g}); use latents of "
                            "moderate size")
    if anchors is not None:
        A = torch.as_tensor(anchors, dtype=torch.float64).reshape(-1, d)
        if A.shape[0] != 3:
            raise ValueError(f"anchors must be three latents, got {A.shape[0]}")
        o, basis = A[0], gram_schmidt(A[1:] - A[0])
    elif directions is not None:
        if origin is None:
            raise ValueError("directions need an origin latent")
        o = torch.as_tensor(origin, dtype=torch.float64).reshape(d)
        basis = gram_schmidt(torch.as_tensor(directions, dtype=torch.float64).reshape(2, d))
        A = o[None]
    elif d == 2:
        o, basis, A = torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), torch.zeros(0, 2)
    else:
        raise ValueError(f"a plane in a {d}-dimensional latent space needs three anchors or an origin and "
                         "two directions")
    if not (torch.isfinite(basis).all() and torch.allclose(basis.norm(dim=1), torch.ones(2, dtype=basis.dtype))):
        raise UserError("the plane's directions cannot be normalised in float64 (anchors or directions too large); "
                        "use latents of moderate size")
    scale = float(o.abs().max())
    spacing = 2.0 * extent / (n - 1)
    if scale * torch.finfo(dtype).eps >= spacing:  # o + u·e rounds to about o: a "plane" of one point
        raise UserError(f"the plane's origin is too far from 0 (|z| up to {scale:.3g}) to resolve a grid spacing of "
                        f"{spacing:.3g} in {str(dtype).replace('torch.', '')}; use latents of moderate size")
    u = np.linspace(-extent, extent, n)
    V, U = np.meshgrid(u, u, indexing="ij")
    coeffs = torch.from_numpy(np.stack([U.ravel(), V.ravel()], 1))
    latents = (o[None] + coeffs @ basis).to(dtype).reshape(n * n, *latent_shape)
    plane = LatentPlane(o.to(dtype), basis.to(dtype), u, u.copy(), latents)
    plane.anchor_coords = plane.coords_of(A.reshape(-1, *latent_shape)) if len(A) else np.zeros((0, 2))
    return plane


@dataclass
class DescriptorMaps:
    """ψ, ν, ν_eff, δ, n_psi maps (n, n) over a plane, the singular values (n², k) and the settings."""

    plane: LatentPlane
    maps: dict[str, np.ndarray]
    singular_values: np.ndarray
    params: dict


def descriptor_maps(G, plane: LatentPlane, radius: float | None = None, directions=None,
                    n_directions: int | None = None, seed: int = 0, rank_tol: float = 1e-3,
                    psi_floor: float = 1e-8, progress=None, svd: str = "sketch") -> DescriptorMaps:
    """All descriptors over the plane's grid. δ uses a cross-polytope of ``radius`` (default:
    1/4 of the grid spacing) and the same directions as ψ/ν when they are sketched. ``svd``: ψ/ν from the sketch's
    singular values, or from J's top ``n_directions`` by a randomized SVD (``local_descriptors``; ``params["svd"]``
    records which)."""
    spacing = float(plane.u[1] - plane.u[0])
    radius = spacing / 4 if radius is None else float(radius)
    half = (lambda k: (lambda done, total: progress(done / total / 2 + k / 2))) if progress else (lambda k: None)
    desc = local_descriptors(G, plane.latents, directions, n_directions, seed, rank_tol, psi_floor,
                             progress=half(0), svd=svd)
    lc = local_complexity(G, plane.latents, radius, directions, n_directions, seed, progress=half(1))
    return assemble_maps(plane, desc, lc, radius, seed, rank_tol, psi_floor)


def assemble_maps(plane: LatentPlane, desc, lc, radius: float, seed: int, rank_tol: float,
                  psi_floor: float) -> DescriptorMaps:
    """The maps (n, n) and settings of ``descriptor_maps`` from the descriptors ``desc`` (LocalDescriptors) and δ
    ``lc`` (LocalComplexity) of the plane's latents, in row-major order."""
    n = plane.n
    maps = {"psi": desc.psi, "nu": desc.nu, "nu_eff": desc.nu_eff, "delta": lc.delta, "n_psi": desc.n_psi}
    maps = {k: np.asarray(v).reshape(n, n) for k, v in maps.items()}
    params = {"n": n, "extent": float(plane.u[-1]), "radius": radius, "n_directions": desc.n_directions,
              "seed": seed, "svd": desc.svd, "rank_tol": rank_tol, "psi_floor": psi_floor,
              "n_layer_calls": lc.n_layer_calls,
              "dtype": str(plane.latents.dtype).replace("torch.", "")}
    return DescriptorMaps(plane, maps, desc.singular_values, params)

"""Three ways from one sample to another (paper 2's interpolation figure): the refined generative geodesic,
the straight line in data (pixel) space, and the spherical interpolation (slerp) of the two latents.

The latents are z_a = G⁻¹(x_a), z_b = G⁻¹(x_b) (explorer.models.inversion: the DDIM sampler's exact Newton
inversion where it converges, the approximate DDIM inversion elsewhere, with G(z) ≈ x to a reported error), and
the slerp path is G(slerp(z_a, z_b; s)), s ∈ [0, 1]:

    slerp(z_a, z_b; s) = sin((1−s)Ω)/sin Ω · z_a + sin(sΩ)/sin Ω · z_b,   cos Ω = ⟨z_a, z_b⟩/(‖z_a‖‖z_b‖).

Each path is reported with log p at its points and its metric length L = ∫ c ds, c = (p0 + λ)/(p + λ).
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.geodesics.interpolation import profile_along, refine_path, resample_polyline, straight_line


def slerp(z_a, z_b, n: int) -> np.ndarray:
    """``n`` points of the great-circle interpolation from z_a to z_b (both included), (n, d); linear when
    the two are (anti)parallel to within 1e-7."""
    a, b = np.asarray(z_a, dtype=np.float64).reshape(-1), np.asarray(z_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"z_a and z_b must have the same shape; got {a.shape} and {b.shape}")
    if n < 2:
        raise ValueError(f"n must be at least 2; got {n}")
    s = np.linspace(0.0, 1.0, int(n))[:, None]
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-7:
        return (1 - s) * a + s * b
    return (np.sin((1 - s) * omega) * a + np.sin(s * omega) * b) / np.sin(omega)


def latent_slerp_path(model, x_a, x_b, n: int = 12, steps: int | None = None, return_info: bool = False):
    """G(slerp(G⁻¹(x_a), G⁻¹(x_b))) as (n, D) samples: the path a user of latent interpolation sees. With
    ``return_info``, also {"exact": [bool, bool], "reconstruction_error": [‖G(z_a) − x_a‖, ‖G(z_b) − x_b‖]}."""
    from explorer.models.inversion import invert

    z, exact, err = invert(model, np.stack([np.ravel(x_a), np.ravel(x_b)]), steps)
    path = slerp(z[0], z[1], n)
    G = model.generator("sampler", steps)
    den_dtype = next(model.denoiser.parameters()).dtype
    model.denoiser.to(torch.float64)
    try:
        with torch.no_grad():
            out = G(torch.from_numpy(path).reshape(n, *model.latent_shape)).reshape(n, -1).numpy()
    finally:
        model.denoiser.to(den_dtype)
    if return_info:
        return out, {"exact": exact.tolist(), "reconstruction_error": err.tolist()}
    return out


def compare_paths(model, graph_points, log_density, log_density_torch=None, lam: float = 1.0, p0: float = 1.0,
                  log_p_ref: float = 0.0, n_points: int = 12, n_quad: int = 3, steps: int | None = None,
                  max_iter: int = 30) -> dict:
    """The geodesic, straight and slerp paths between the ends of ``graph_points`` (the graph geodesic's
    nodes, (m, D)), each ``n_points`` long, as {name: profile_along(...) + ``points``}.

    ``geodesic``: the graph path resampled to ``n_points`` equally spaced in arc length and, given
    ``log_density_torch``, refined by L-BFGS (``max_iter``) on the discretised metric length, so the
    strip shows new images between training images, not only the chain of them. Its entry also holds
    ``graph_points`` and the length before refinement.
    """
    P = np.asarray(graph_points, dtype=np.float64)
    if P.ndim != 2 or len(P) < 2:
        raise ValueError(f"graph_points must be (m ≥ 2, D); got shape {P.shape}")
    kw = {"lam": lam, "p0": p0, "log_p_ref": log_p_ref}
    geo = resample_polyline(P, n_points)
    before = None
    if log_density_torch is not None and n_points > 2:
        r = refine_path(geo, log_density_torch, n_quad=n_quad, max_iter=max_iter, **kw)
        geo, before = r.points, r.length_before
    slerp_points, slerp_info = latent_slerp_path(model, P[0], P[-1], n_points, steps, return_info=True)
    paths = {"geodesic": geo, "straight": straight_line(P[0], P[-1], n_points), "slerp": slerp_points}
    out = {}
    for name, pts in paths.items():
        prof = profile_along(pts, log_density, **kw)
        out[name] = {**prof, "points": pts}
    out["geodesic"].update(graph_points=P, refined=log_density_torch is not None, length_unrefined=before)
    out["slerp"].update(slerp_info)
    return out

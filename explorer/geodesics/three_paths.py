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

from explorer.device import compute_device
from explorer.geodesics.interpolation import (
    discrete_length,
    profile_along,
    refine_path,
    resample_polyline,
    straight_line,
)


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


def latent_slerp_path(model, x_a, x_b, n: int = 12, steps: int | None = None, return_info: bool = False,
                      condition: dict | None = None):
    """G(slerp(G⁻¹(x_a), G⁻¹(x_b))) as (n, D) points: the path a user of latent interpolation sees, in the space the
    diffusion runs in (G up to x_0, ``model.x0_generator``: a latent model's points are VAE latents; ``condition``: a
    conditional model's). With ``return_info``, also {"exact": [bool, bool], "reconstruction_error":
    [‖G(z_a) − x_a‖, ‖G(z_b) − x_b‖]}."""
    from explorer.models.inversion import invert

    condition = dict(condition or {})
    z, exact, err = invert(model, np.stack([np.ravel(x_a), np.ravel(x_b)]), steps, condition)
    path = slerp(z[0], z[1], n)
    view = model.at(compute_device(), torch.float64)
    G = view.x0_generator(steps, **condition)
    with torch.no_grad():
        out = G(torch.from_numpy(path).reshape(n, *model.latent_shape).to(view.device)).reshape(n, -1).cpu().numpy()
    if return_info:
        return out, {"exact": exact.tolist(), "reconstruction_error": err.tolist()}
    return out


def compare_paths(model, graph_points, log_density, log_density_torch=None, lam: float = 1.0, p0: float = 1.0,
                  log_p_ref: float = 0.0, n_points: int = 12, n_quad: int = 3, steps: int | None = None,
                  max_iter: int = 30, condition: dict | None = None) -> dict:
    """The geodesic, straight and slerp paths between the ends of ``graph_points`` (the graph geodesic's
    nodes, (m, D)), as {name: profile_along(...) of ``n_points`` points shown + ``metric_length``}.

    ``geodesic``: the graph path itself, refined (given ``log_density_torch``) by L-BFGS (``max_iter``) on the
    discretised metric length over all its m points, so it never gets longer than the graph path; the strip
    shows it resampled to ``n_points`` equally spaced in arc length: new images between training images, not
    only the chain of them. ``metric_length`` of every path is the quadrature length (``n_quad`` Gauss–Legendre
    nodes per segment) of its polyline: the refined polyline, the n-point line, the n-point slerp. The geodesic
    entry also holds ``graph_points``, ``length_graph`` (before refinement) and ``refined_points``.
    """
    P = np.asarray(graph_points, dtype=np.float64)
    if P.ndim != 2 or len(P) < 2:
        raise ValueError(f"graph_points must be (m ≥ 2, D); got shape {P.shape}")
    kw = {"lam": lam, "p0": p0, "log_p_ref": log_p_ref}
    refined = P
    if log_density_torch is not None and len(P) > 2:
        refined = refine_path(P, log_density_torch, n_quad=n_quad, max_iter=max_iter, **kw).points
    slerp_points, slerp_info = latent_slerp_path(model, P[0], P[-1], n_points, steps, return_info=True,
                                                 condition=condition)
    shown = {"geodesic": resample_polyline(refined, n_points), "straight": straight_line(P[0], P[-1], n_points),
             "slerp": slerp_points}
    measured = {"geodesic": refined, "straight": shown["straight"], "slerp": slerp_points}
    out = {}
    for name, pts in shown.items():
        out[name] = {**profile_along(pts, log_density, **kw), "points": pts,
                     "metric_length": discrete_length(measured[name], log_density, n_quad=n_quad, **kw)}
    out["geodesic"].update(graph_points=P, refined_points=refined, refined=log_density_torch is not None,
                           length_graph=discrete_length(P, log_density, n_quad=n_quad, **kw))
    out["slerp"].update(slerp_info)
    return out

"""Three ways from one sample to another (paper 2's interpolation figure): the refined generative geodesic,
the straight line in data (pixel) space, and the spherical interpolation (slerp) of the two latents.

The latents are z_a = G⁻¹(x_a), z_b = G⁻¹(x_b) (explorer.models.inversion: the DDIM sampler's exact Newton
inversion where it converges, the approximate DDIM inversion elsewhere, with G(z) ≈ x to a reported error), and
the slerp path is G(slerp(z_a, z_b; s)), s ∈ [0, 1]:

    slerp(z_a, z_b; s) = sin((1−s)Ω)/sin Ω · z_a + sin(sΩ)/sin Ω · z_b,   cos Ω = ⟨z_a, z_b⟩/(‖z_a‖‖z_b‖).

Each path is reported with log p at its points and its metric length L = ∫ c ds, c = (p0 + λ)/(p + λ), all three
under one measure (``compare_paths``).
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.device import compute_device
from explorer.geodesics.interpolation import profile_along, refine_shortest, resample_polyline, straight_line


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


def _generate(model, z: np.ndarray, steps: int | None, condition: dict | None = None) -> np.ndarray:
    """G(z) up to x_0 (``model.x0_generator``: for a latent model, points of its VAE latent) for latents z (n, d),
    under ``condition``, in float64 on the compute device (``model.at``), as (n, D) rows."""
    view = model.at(compute_device(), torch.float64)
    G = view.x0_generator(steps, **dict(condition or {}))
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(z)).reshape(len(z), *model.latent_shape).to(view.device)
        return G(x).reshape(len(z), -1).cpu().numpy()


def _latents(model, x_a, x_b, steps: int | None, condition: dict | None = None):
    from explorer.models.inversion import invert

    z, exact, err = invert(model, np.stack([np.ravel(x_a), np.ravel(x_b)]), steps, dict(condition or {}))
    return z, {"exact": exact.tolist(), "reconstruction_error": err.tolist()}


def latent_slerp_path(model, x_a, x_b, n: int = 12, steps: int | None = None, return_info: bool = False,
                      condition: dict | None = None):
    """G(slerp(G⁻¹(x_a), G⁻¹(x_b))) as (n, D) points: the path a user of latent interpolation sees, in the space the
    diffusion runs in (G up to x_0: a latent model's points are VAE latents; ``condition``: a conditional model's).
    With ``return_info``, also {"exact": [bool, bool], "reconstruction_error": [‖G(z_a) − x_a‖, ‖G(z_b) − x_b‖]}.
    Its ends are G(z_a) and G(z_b), not x_a and x_b, where the inversion is approximate."""
    z, info = _latents(model, x_a, x_b, steps, condition)
    out = _generate(model, slerp(z[0], z[1], n), steps, condition)
    return (out, info) if return_info else out


#: Samples of G(slerp(s)) whose polyline stands for the slerp curve in the measure (the strip shows ``n_points``).
SLERP_SAMPLES = 32
#: Most vertices of the polyline that the refinement moves (each costs n_quad density evaluations per step).
MAX_REFINE_POINTS = 32


def compare_paths(model, graph_points, log_density, log_density_torch=None, lam: float = 1.0, p0: float = 1.0,
                  log_p_ref: float = 0.0, n_points: int = 12, n_quad: int = 3, steps: int | None = None,
                  max_iter: int = 30, max_step: float | None = None, n_slerp: int = SLERP_SAMPLES,
                  condition: dict | None = None) -> dict:
    """The geodesic, straight and slerp paths between the ends x_a, x_b of ``graph_points`` (the graph
    geodesic's nodes, (m, D)), as {name: profile_along(...) of ``n_points`` points shown + ``metric_length``}.

    One measure for all three (issue 11, item 18): ``discrete_length`` of each path's own polyline with every
    segment cut into pieces of at most ``max_step`` (default ‖x_b − x_a‖/32) and ``n_quad`` Gauss–Legendre nodes
    per piece, so that neither the number of vertices of a path nor the length of its segments favours it. Every
    path runs from x_a to x_b:

    - ``straight``: the segment [x_a, x_b];
    - ``slerp``: x_a, then G(slerp(z_a, z_b; s)) at ``n_slerp`` values of s, then x_b. Where the inversion is
      approximate G(z_a) ≠ x_a (on the digits ‖G(z_a) − x_a‖ ≈ 0.4), and without those two short bridges the
      slerp would be measured between other, denser endpoints;
    - ``geodesic``: ``refine_shortest`` over the candidates {graph path, straight segment, slerp}: the shortest
      under the measure, refined (``max_iter`` iterations, gradients from ``log_density_torch``, at most
      MAX_REFINE_POINTS vertices) and kept only when the refined polyline is shorter under the same measure. So
      the geodesic is never longer than the straight line or the slerp.

    Why (digits/full, default endpoints 0 → 6, λ = 1 relative; issue 11, item 18): the page showed 0.537 / 9.63 /
    0.0765 (geodesic / straight / slerp). The slerp was measured between G(z_a) and G(z_b), whose log p (68.8,
    88.9) is far above x_a's and x_b's (61.8, 80.8; p_ref: 64.4), so it skipped the costly neighbourhood of x_a
    (c = 1.87 at x_a, 0.025 at G(z_a)), and by the chords of 10 samples (0.0765; 40 samples: 0.0102): with
    the two bridges and 40 samples it is 0.24–0.28. The geodesic's 0.537 was its 37-point refined polyline under
    3 nodes per 2.8-long segment, which the refinement had learnt to exploit: with segments cut to 0.5 the same
    polyline measures 1.20 (the graph path 3.96 instead of 1.91). The straight line, 9.61 under every rule, was
    the only honest number. So both: the lengths were not measured the same way, and the refinement (started
    from the graph path) stopped far above a curve that the slerp shows to exist.

    The strips show ``n_points`` points of each path: the geodesic resampled equally in arc length, the straight
    line, and G(slerp) itself (model outputs, so its first and last images are G(z_a), G(z_b)); ``metric_length``
    is always that of the measured path above. The geodesic entry also holds ``graph_points``, ``length_graph``
    (the graph path under the same measure), ``refined_points`` (the measured polyline), ``candidates``
    ({name: length}), ``start`` (the candidate the refinement started from), ``length_refined`` (the refined
    polyline under the measure, kept or not) and ``max_step``; the slerp entry ``exact``,
    ``reconstruction_error`` and ``measured_points``.
    """
    P = np.asarray(graph_points, dtype=np.float64)
    if P.ndim != 2 or len(P) < 2:
        raise ValueError(f"graph_points must be (m ≥ 2, D); got shape {P.shape}")
    if int(n_slerp) < 2:
        raise ValueError(f"n_slerp must be at least 2; got {n_slerp!r}")
    a, b = P[0], P[-1]
    kw = {"lam": lam, "p0": p0, "log_p_ref": log_p_ref}
    z, slerp_info = _latents(model, a, b, steps, condition)
    slerp_curve = _generate(model, slerp(z[0], z[1], int(n_slerp)), steps, condition)
    candidates = {"graph": P, "straight": np.stack([a, b]), "slerp": np.concatenate([a[None], slerp_curve, b[None]])}
    best = refine_shortest(candidates, log_density, log_density_torch, n_quad=n_quad, max_step=max_step,
                           max_points=MAX_REFINE_POINTS, max_iter=max_iter, **kw)
    shown = {"geodesic": resample_polyline(best.points, n_points), "straight": straight_line(a, b, n_points),
             "slerp": _generate(model, slerp(z[0], z[1], n_points), steps, condition)}
    measured = {"geodesic": best.length, "straight": best.lengths["straight"], "slerp": best.lengths["slerp"]}
    out = {name: {**profile_along(pts, log_density, **kw), "points": pts, "metric_length": measured[name]}
           for name, pts in shown.items()}
    out["geodesic"].update(graph_points=P, refined_points=best.points, refined=best.refined,
                           length_graph=best.lengths["graph"], candidates=dict(best.lengths), start=best.start,
                           length_refined=best.length_refined, max_step=best.max_step)
    out["slerp"].update(slerp_info, measured_points=candidates["slerp"])
    return out

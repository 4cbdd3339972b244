"""Latents of given samples: z = G⁻¹(x) for the DDIM sampler, exactly where Newton's method converges and by
the usual approximate DDIM inversion elsewhere.

Exact: each step x_s = c1 x_t + c2 ε_θ(x_t, t) is inverted by Newton (explorer.density.ddim). On real images the
last step (t → 0) contracts strongly and Newton often does not converge, so for those points we run the
sampler's steps backwards with ε evaluated at the current point (Song et al.'s DDIM inversion):

    x̂_0 = (x_s − sqrt(1 − ᾱ_s) ε_θ(x_s, t)) / sqrt(ᾱ_s),   x_t = sqrt(ᾱ_t) x̂_0 + sqrt(1 − ᾱ_t) ε_θ(x_s, t),

which is approximate (G(z) ≈ x): ``invert`` reports the reconstruction error ‖G(z) − x‖ of every point.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from explorer.device import compute_device


def ddim_inversion(model, x, steps: int | None = None) -> np.ndarray:
    """Approximate latents by DDIM inversion (float64), (M, D)."""
    steps = model.default_steps if steps is None else int(steps)
    view = model.at(compute_device(), torch.float64)
    a = view.schedule.alphas_cumprod.double()
    net, shape = view.eps_model(), view.diffusion_shape
    X = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(len(x), -1).to(view.device)
    with torch.no_grad():
        for t, s in reversed(view.schedule.chain(steps)):
            a_t, a_s = float(a[t]), 1.0 if s < 0 else float(a[s])
            eps = net(X.reshape(len(X), *shape), t).reshape(len(X), -1)
            x0 = (X - math.sqrt(1 - a_s) * eps) / math.sqrt(a_s)
            X = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * eps
    return X.cpu().numpy()


def invert(model, x, steps: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, exact, error): latents (M, D), whether each came from the converged exact inversion, and the
    reconstruction error ‖G(z) − x‖ (Euclidean, float64)."""
    from explorer.density.ddim import discrete_log_prob

    X = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        logp, z, _, _ = discrete_log_prob(model, X, steps=steps, dtype=torch.float64, return_details=True)
    z = np.asarray(z, dtype=np.float64).reshape(len(X), -1)
    exact = np.isfinite(logp)
    if not exact.all():
        z[~exact] = ddim_inversion(model, X[~exact], steps)
    view = model.at(compute_device(), torch.float64)
    G = view.generator("sampler", steps)
    with torch.no_grad():
        zt = torch.from_numpy(z).reshape(len(z), *model.latent_shape).to(view.device)
        back = G(zt).reshape(len(z), -1).cpu().numpy()
    return z, exact, np.linalg.norm(back - X, axis=1)

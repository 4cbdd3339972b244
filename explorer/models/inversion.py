"""Latents of given samples: z = G⁻¹(x) for the DDIM sampler, exactly where Newton's method converges and by
the usual approximate DDIM inversion elsewhere.

Exact: each step x_s = c1 x_t + c2 ε_θ(x_t, t) is inverted by Newton (explorer.density.ddim). On real images the
last step (t → 0) contracts strongly and Newton often does not converge, so for those points we run the
sampler's steps backwards with ε evaluated at the current point (Song et al.'s DDIM inversion):

    x̂_0 = (x_s − sqrt(1 − ᾱ_s) ε_θ(x_s, t)) / sqrt(ᾱ_s),   x_t = sqrt(ᾱ_t) x̂_0 + sqrt(1 − ᾱ_t) ε_θ(x_s, t),

which is approximate (G(z) ≈ x): ``invert`` reports the reconstruction error ‖G(z) − x‖ of every point.

Everything here is in the space the diffusion runs in (x = x_0 of ``diffusion_shape``: pixels, or a latent model's
VAE latent, ``model.encode(images)``), with G the sampler up to x_0 (``model.x0_generator``, before any decoder), and
under a conditional model's ``condition`` (at its guidance scale). Newton needs the full D × D step Jacobians, so
points of more than ``exact_max_dim`` values (a real pipeline's latent) go straight to the approximate inversion.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from explorer.device import compute_device

#: Points with more values than this skip Newton's exact inversion (it builds D × D Jacobians).
EXACT_MAX_DIM = 1024


def ddim_inversion(model, x, steps: int | None = None, condition: dict | None = None) -> np.ndarray:
    """Approximate latents by DDIM inversion (float64), (M, D)."""
    steps = model.default_steps if steps is None else int(steps)
    view = model.at(compute_device(), torch.float64)
    a = view.schedule.alphas_cumprod.double()
    net, shape = view.eps_model(**(condition or {})), view.diffusion_shape
    X = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(len(x), -1).to(view.device)
    with torch.no_grad():
        for t, s in reversed(view.schedule.chain(steps)):
            a_t, a_s = float(a[t]), 1.0 if s < 0 else float(a[s])
            eps = net(X.reshape(len(X), *shape), t).reshape(len(X), -1)
            x0 = (X - math.sqrt(1 - a_s) * eps) / math.sqrt(a_s)
            X = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * eps
    return X.cpu().numpy()


def invert(model, x, steps: int | None = None, condition: dict | None = None,
           exact_max_dim: int = EXACT_MAX_DIM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, exact, error): latents (M, D), whether each came from the converged exact inversion, and the
    reconstruction error ‖G(z) − x‖ (Euclidean, float64), for points x of the diffusion's space."""
    from explorer.density.ddim import discrete_log_prob

    condition = dict(condition or {})
    X = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if X.shape[1] <= exact_max_dim:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            logp, z, _, _ = discrete_log_prob(model, X, steps=steps, dtype=torch.float64, return_details=True,
                                              condition=condition)
        z = np.asarray(z, dtype=np.float64).reshape(len(X), -1)
        exact = np.isfinite(logp)
    else:
        z, exact = np.zeros_like(X), np.zeros(len(X), dtype=bool)
    if not exact.all():
        z[~exact] = ddim_inversion(model, X[~exact], steps, condition)
    view = model.at(compute_device(), torch.float64)
    G = view.x0_generator(steps, **condition)
    with torch.no_grad():
        zt = torch.from_numpy(z).reshape(len(z), *model.latent_shape).to(view.device)
        back = G(zt).reshape(len(z), -1).cpu().numpy()
    return z, exact, np.linalg.norm(back - X, axis=1)

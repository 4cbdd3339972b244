"""A log density made torch-differentiable by the model's score, for refining paths where log p itself has no
cheap gradient (the ODE likelihood with Hutchinson probes on image models).

Values come from any log density (M, D) → (M,); gradients from the denoiser at a small noise level t_s:

    ∇_x log p(x) ≈ s_θ(x, t_s) = −sqrt(ᾱ_s) ε_θ(sqrt(ᾱ_s) x, t_s) / sqrt(1 − ᾱ_s),

the score of the data density smoothed by Gaussian noise of standard deviation σ_s = sqrt((1 − ᾱ_s)/ᾱ_s):
x_t/sqrt(ᾱ) = x_0 + σ ε has score −ε/σ, estimated by ε_θ (denoising score matching). t_s is the first
timestep with σ_s ≥ ``sigma`` (default 0.1: smooth enough to point along the data, small next to the 8×8
digits' pixel range of 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from explorer.device import compute_device


def score_timestep(model, sigma: float = 0.1) -> int:
    """The first timestep t with σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) ≥ ``sigma``."""
    a = model.schedule.alphas_cumprod.double()
    s = ((1 - a) / a).sqrt()
    idx = torch.nonzero(s >= sigma).flatten()
    if not len(idx):
        raise ValueError(f"sigma {sigma} is above the schedule's largest noise level {float(s[-1]):.3g}")
    return int(idx[0])


def model_score(model, x: torch.Tensor, t: int, condition: dict | None = None) -> torch.Tensor:
    """s_θ(x, t) = −sqrt(ᾱ_t) ε_θ(sqrt(ᾱ_t) x, t)/sqrt(1 − ᾱ_t) for flat x (M, D), in x's dtype (computed on the
    compute device, returned on x's device); ``condition``: the ``eps_model`` keywords of a conditional model."""
    a = float(model.schedule.alphas_cumprod.double()[t])
    view = model.at(compute_device(), x.dtype)
    with torch.no_grad():
        xin = math.sqrt(a) * x.reshape(len(x), *model.diffusion_shape).to(view.device)
        eps = view.eps_model(**(condition or {}))(xin, t).reshape(len(x), -1).to(x.device)
    return -eps * math.sqrt(a / (1 - a))


class _ScoreLogDensity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, log_density, model, t, condition):
        ctx.save_for_backward(x)
        ctx.model, ctx.t, ctx.condition = model, t, condition
        values = np.asarray(log_density(x.detach().cpu().numpy()), dtype=np.float64).reshape(-1)
        return torch.as_tensor(values, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return model_score(ctx.model, x.detach(), ctx.t, ctx.condition) * grad_out.unsqueeze(-1), None, None, None, None


def score_log_density_torch(model, log_density: Callable, sigma: float = 0.1,
                            condition: dict | None = None) -> Callable:
    """``log_density`` as a torch map (M, D) → (M,) whose gradient is the model's score at noise σ ≈ ``sigma``
    (see the module docstring; ``condition``: the conditional model's keywords, the density's own): what
    ``refine_path`` needs. NaN values become −inf (density 0)."""
    t = score_timestep(model, sigma)
    condition = dict(condition or {})

    def fn(x: torch.Tensor) -> torch.Tensor:
        out = _ScoreLogDensity.apply(x, log_density, model, t, condition)
        return torch.where(torch.isnan(out), torch.full_like(out, -math.inf), out)

    fn.score_timestep = t
    return fn

"""The latent a (guided) sample corresponds to under the *plain* sampler: z̃ with G(z̃) = x̃, and ψ(z̃) on the way.

Each plain DDIM step x_s = F(x_t) = c1 x_t + c2 ε_θ(x_t, t) is undone from the last step to the first:

- ``exact`` (diffusion spaces of at most ``exact_max_dim`` values): the chord method, x ← x − J_F(x⁰)⁻¹ (F(x) − x_s)
  from x⁰ = (x_s − c2 ε(x_s))/c1, with the step Jacobian factorised once at x⁰ (one Jacobian and a few forward passes
  per step instead of Newton's Jacobian per iteration), then the Jacobian at the solution, which gives
  log|det J_step| (their sum over the steps is ψ of the plain sampler at z̃ when d = D), and damped Newton for
  the points the chord left unconverged. A point counts as exact when every step's residual
  ‖F(x_t) − x_s‖_∞ is below ``tol``·(1 + ‖x_s‖_∞).
- ``approximate`` (larger spaces, and exact points that did not converge): Song et al.'s DDIM inversion, ε taken at
  the current point; its residual is the reconstruction error.

``skip_last`` = k starts from the input of the k-th last step instead of the sample: the digit models' last step
(t = 49 → 0) contracts by e^−50 or more, so no inversion of it converges, whereas the earlier steps invert to 1e−14
(measured). The latent found is then the one whose plain trajectory passes through that state exactly; the log-dets
of the k skipped steps are taken along the plain trajectory from it, so ``logdet`` is still ψ(z̃) of the whole
sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from explorer.density.ddim import step_coefficients
from explorer.descriptors.jacobian import value_and_jacobian
from explorer.device import compute_device

EXACT, APPROXIMATE, FAILED = 0, 1, 2
STATUS_NAMES = ("exact", "approximate", "failed")
#: An approximate inversion fails when its reconstruction error (RMS per coordinate) exceeds this.
APPROX_TOL = 1e-2


@dataclass
class Inversion:
    """``z`` (N, *latent_shape) float64, ``logdet`` (N,) ψ of the plain sampler at z̃ (NaN where not exact),
    ``status`` (N,) int8 (EXACT, APPROXIMATE, FAILED), ``residual`` (N,) the RMS reconstruction error of the inverted
    steps at their starting point, ``skip_last``, ``method`` ("exact" or "ddim")."""

    z: np.ndarray
    logdet: np.ndarray
    status: np.ndarray
    residual: np.ndarray
    skip_last: int
    method: str

    @property
    def failed_fraction(self) -> float:
        return float((self.status == FAILED).mean()) if len(self.status) else 0.0


class _Step:
    """One plain step F(x) = c1 x + c2 ε_θ(x, t) with its Jacobian (the ε-model's own when it has one)."""

    def __init__(self, view, net, t: int, s: int, fast: bool):
        self.net, self.t, self.fast = net, int(t), fast
        self.shape = tuple(view.diffusion_shape)
        self.c1, self.c2 = step_coefficients(view.schedule.alphas_cumprod, t, s)

    def eps(self, x):
        return self.net(x.reshape(len(x), *self.shape), self.t).reshape(len(x), -1)

    def F(self, x):
        return self.c1 * x + self.c2 * self.eps(x)

    def F_and_J(self, x):
        if self.fast:
            eps, Je = self.net.eps_and_jacobian(x, self.t)
            eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
            return self.c1 * x + self.c2 * eps, self.c1 * eye + self.c2 * Je
        return value_and_jacobian(self.F, x)


def _invert_step_exact(step: _Step, y: torch.Tensor, tol: float, max_iter: int, newton_iter: int = 20):
    """(x, log|det J(x)|, converged) with F(x) = y: the chord method (``max_iter`` iterations at most), then damped
    Newton (a step is halved until it lowers the residual, as in ``explorer.density.ddim.DDIMStepInverse``) for the
    points it left unconverged: few-step samplers take large steps that the chord alone does not always invert."""
    x = (y - step.c2 * step.eps(y)) / step.c1
    _, J0 = step.F_and_J(x)
    LU, piv = torch.linalg.lu_factor(J0)
    bound = tol * (1.0 + y.abs().amax(1))
    todo = torch.arange(len(y), device=y.device)
    for _ in range(max_iter):
        r = step.F(x[todo]) - y[todo]
        bad = r.abs().amax(1) > bound[todo]
        if not bad.any():
            break
        todo, r = todo[bad], r[bad]
        x[todo] = x[todo] - torch.linalg.lu_solve(LU[todo], piv[todo], r[..., None])[..., 0]
    Fx, J = step.F_and_J(x)
    res = (Fx - y).abs().amax(1)
    for _ in range(newton_iter):
        bad = torch.nonzero(~(res <= bound)).flatten()
        if len(bad) == 0:
            break
        delta = torch.linalg.solve(J[bad], (Fx - y)[bad][..., None])[..., 0]
        scale = torch.ones(len(bad), 1, dtype=x.dtype, device=x.device)
        pending = torch.arange(len(bad), device=x.device)
        for _ in range(6):  # accept a step once it lowers the residual, else halve it
            idx = bad[pending]
            cand = x[idx] - scale[pending] * delta[pending]
            Fc, Jc = step.F_and_J(cand)
            rc = (Fc - y[idx]).abs().amax(1)
            ok = rc < res[idx]
            x[idx[ok]], Fx[idx[ok]], J[idx[ok]], res[idx[ok]] = cand[ok], Fc[ok], Jc[ok], rc[ok]
            pending = pending[~ok]
            if len(pending) == 0:
                break
            scale[pending] *= 0.5
    logdet = torch.linalg.slogdet(J.double())[1]
    return x, logdet, res <= bound


def invert_plain(model, x, steps: int | None = None, skip_last: int = 0, exact_max_dim: int = 1024,
                 tol: float | None = None, max_iter: int = 30, dtype: torch.dtype | None = None,
                 batch_size: int = 256, **condition) -> Inversion:
    """z̃ of the plain S-step sampler for states ``x`` (N, *diffusion_shape): the samples (``skip_last`` = 0) or the
    inputs of the ``skip_last``-th last step. See the module docstring. ``dtype``: float64 for spaces of at most 16
    values, else float32 (the digits: 1.5× faster, still 1e−5 accurate); ``tol`` by dtype (1e−10, 1e−5)."""
    steps = model.default_steps if steps is None else int(steps)
    chain = model.schedule.chain(steps)
    skip_last = int(skip_last)
    if not 0 <= skip_last < len(chain):
        raise ValueError(f"skip_last must be in [0, {len(chain)}) for a {len(chain)}-step sampler, got {skip_last}")
    D = int(np.prod(model.diffusion_shape))
    dtype = dtype or (torch.float64 if D <= 16 else torch.float32)
    tol = tol if tol is not None else (1e-10 if dtype == torch.float64 else 1e-5)
    view = model.at(compute_device(), dtype)
    net = view.eps_model(**condition)
    fast = bool(view.capabilities.step_jacobian) and not condition
    inverted, skipped = chain[:len(chain) - skip_last], chain[len(chain) - skip_last:]
    X = torch.as_tensor(np.asarray(x), dtype=dtype).reshape(len(x), -1)
    exact = D <= int(exact_max_dim)
    zs, lds, sts, rss = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            y0 = X[start:start + batch_size].to(view.device)
            n = len(y0)
            logdet = torch.zeros(n, dtype=torch.float64, device=view.device)
            ok = torch.full((n,), exact, dtype=torch.bool, device=view.device)
            if skipped:  # log-dets of the skipped steps along the plain trajectory from the given states
                xs = y0
                for t, s in skipped:
                    step = _Step(view, net, t, s, fast)
                    if exact:
                        xs_next, J = step.F_and_J(xs)
                        logdet += torch.linalg.slogdet(J.double())[1]
                        xs = xs_next
            y = y0.clone()
            if exact:
                for t, s in reversed(inverted):
                    y, ld, conv = _invert_step_exact(_Step(view, net, t, s, fast), y, tol, max_iter)
                    logdet += ld
                    ok &= conv
            z = y
            if not bool(ok.all()):  # DDIM inversion for the rest
                a = view.schedule.alphas_cumprod.double()
                todo = torch.nonzero(~ok).flatten()
                w = y0[todo].clone()
                for t, s in reversed(inverted):
                    a_t, a_s = float(a[t]), 1.0 if s < 0 else float(a[s])
                    eps = _Step(view, net, t, s, fast).eps(w)
                    w = math.sqrt(a_t) * (w - math.sqrt(1 - a_s) * eps) / math.sqrt(a_s) + math.sqrt(1 - a_t) * eps
                z = z.clone()
                z[todo] = w
            back = z.clone()  # the plain steps forward again: the reconstruction error at the start
            for t, s in inverted:
                back = _Step(view, net, t, s, fast).F(back)
            res = (back - y0).double().pow(2).mean(1).sqrt()
            status = torch.where(ok, EXACT, torch.where(res <= APPROX_TOL, APPROXIMATE, FAILED)).to(torch.int8)
            logdet = torch.where(ok, logdet, torch.full_like(logdet, float("nan")))
            zs.append(z.double().cpu())
            lds.append(logdet.cpu())
            sts.append(status.cpu())
            rss.append(res.cpu())
    if not zs:
        return Inversion(np.zeros((0, *model.latent_shape)), np.zeros(0), np.zeros(0, np.int8), np.zeros(0),
                         skip_last, "exact" if exact else "ddim")
    z = torch.cat(zs).numpy().reshape(len(X), *model.latent_shape)
    return Inversion(z, torch.cat(lds).numpy(), torch.cat(sts).numpy(), torch.cat(rss).numpy(), skip_last,
                     "exact" if exact else "ddim")


__all__ = ["APPROXIMATE", "APPROX_TOL", "EXACT", "FAILED", "STATUS_NAMES", "Inversion", "invert_plain"]

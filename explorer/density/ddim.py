"""Likelihoods of a diffusion model in data space, two ways (DESIGN.md §3).

``discrete``: the exact density of the deterministic S-step DDIM sampler G. Each step
x_s = c1 x_t + c2 ε_θ(x_t, t) is inverted by Newton's method (residual checked), then

    log p(x) = log N(z; 0, I) − Σ_steps log|det J_step|,   J_step = c1 I + c2 ∂ε_θ/∂x_t,

so at x = G(z), Σ_steps log|det J_step| = ψ(z), paper 1's local scaling (d = D).

``ode``: the probability-flow ODE in DDIM's variables x̄ = x/sqrt(ᾱ), σ = sqrt((1 − ᾱ)/ᾱ):
dx̄/dσ = ε_θ(sqrt(ᾱ) x̄, t(σ)), with d log p/dσ = −tr ∂(dx̄/dσ)/∂x̄ (instantaneous change of
variables), integrated from the data (σ = 0) to σ_T by a fixed number of RK4 steps. The divergence is
exact for small D and Hutchinson's estimate otherwise, with probes fixed per point.
"""

from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import torch
from torch.func import jacfwd, jvp, vmap

from explorer.descriptors.jacobian import value_and_jacobian
from explorer.device import FORWARD_AD_LOCK, compute_device

LOG_2PI = math.log(2 * math.pi)


def _as_batch(model, x, dtype) -> torch.Tensor:
    """Points in the diffusion's space as a flat CPU batch (M, D) of ``dtype``, checked."""
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x.detach().cpu()).to(dtype)
    shape = model.diffusion_shape
    D = int(np.prod(shape))
    if x.ndim == 1 and x.shape[0] == D:
        x = x[None]
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != D:
        raise ValueError(f"x must be (M, {D}) or (M, {', '.join(map(str, shape))}), "
                         f"got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x holds non-finite values (NaN or inf)")
    return x.reshape(len(x), -1)


def step_coefficients(alphas_cumprod: torch.Tensor, t: int, s: int) -> tuple[float, float]:
    """(c1, c2) with x_s = c1 x_t + c2 ε: c1 = sqrt(ᾱ_s/ᾱ_t), c2 = sqrt(1−ᾱ_s) − sqrt(ᾱ_s(1−ᾱ_t)/ᾱ_t)."""
    a = alphas_cumprod.double()
    a_t, a_s = float(a[t]), 1.0 if s < 0 else float(a[s])
    return math.sqrt(a_s / a_t), math.sqrt(1 - a_s) - math.sqrt(a_s * (1 - a_t) / a_t)


def log_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per row of a (M, D) tensor."""
    return -0.5 * (z.double() ** 2).sum(1) - 0.5 * z.shape[1] * LOG_2PI


class DDIMStepInverse:
    """Inverts x_s = c1 x_t + c2 ε_θ(x_t, t) by Newton's method with backtracking; also log|det J_step|.

    ``model``: a diffusion model (or its view: the computation runs where the view's networks are).
    """

    def __init__(self, model, t: int, s: int, tol: float, max_iter: int = 20, condition: dict | None = None):
        self.model, self.t, self.tol, self.max_iter = model, int(t), tol, max_iter
        self.net = model.eps_model(**(condition or {}))
        self.shape = tuple(model.diffusion_shape)
        self.fast = bool(model.capabilities.step_jacobian)
        self.c1, self.c2 = step_coefficients(model.schedule.alphas_cumprod, t, s)

    def F_and_J(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(J_F(x), F(x)) with F(x) = c1 x + c2 ε_θ(x, t): by the ε-model's own ``eps_and_jacobian`` when the
        model has that capability (the built-in MLP), else by ``vmap`` over ``jvp``."""
        if self.fast:
            eps, Je = self.net.eps_and_jacobian(x, self.t)
            eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
            return self.c1 * eye + self.c2 * Je, self.c1 * x + self.c2 * eps
        F, J = value_and_jacobian(self.forward_step, x)
        return J, F

    def eps(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), *self.shape), self.t).reshape(len(x), -1)

    def forward_step(self, x: torch.Tensor) -> torch.Tensor:
        return self.c1 * x + self.c2 * self.eps(x)

    def __call__(self, x_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_t, log|det J_step(x_t)|, residual ‖F(x_t) − x_s‖_∞) for a batch (M, D).

        Newton x ← x − J_F(x)⁻¹ (F(x) − x_s) from x = (x_s − c2 ε(x_s))/c1, halving a step that does not
        lower the residual; only unconverged points are re-evaluated. For a CPWL ε_θ the iteration is
        exact once it lands in the pre-image's linear region.
        """
        x = (x_s - self.c2 * self.eps(x_s)) / self.c1  # ε varies little over one step: a close start
        J, Fx = self.F_and_J(x)
        res = (Fx - x_s).abs().amax(1)
        tol = self.tol * (1.0 + x_s.abs().amax(1))
        for _ in range(self.max_iter):
            todo = torch.nonzero(res > tol).flatten()
            if len(todo) == 0:
                break
            delta = torch.linalg.solve(J[todo], (Fx - x_s)[todo])
            step = torch.ones(len(todo), 1, dtype=x.dtype, device=x.device)
            pending = torch.arange(len(todo), device=x.device)
            for _ in range(5):  # accept a step once it lowers the residual, else halve it
                idx = todo[pending]
                cand = x[idx] - step[pending] * delta[pending]
                Jc, Fc = self.F_and_J(cand)
                rc = (Fc - x_s[idx]).abs().amax(1)
                ok = rc < res[idx]
                x[idx[ok]], J[idx[ok]], Fx[idx[ok]], res[idx[ok]] = cand[ok], Jc[ok], Fc[ok], rc[ok]
                pending = pending[~ok]
                if len(pending) == 0:
                    break
                step[pending] *= 0.5
        logdet = torch.linalg.slogdet(J.double())[1]
        return x, logdet, res


def discrete_log_prob(model, x, steps: int | None = None, dtype: torch.dtype = torch.float32,
                      batch_size: int = 4096, tol: float | None = None, return_details: bool = False,
                      condition: dict | None = None):
    """log p(x) of the S-step DDIM sampler's output distribution, exactly (float64 out), in the diffusion's space.

    Points whose inversion does not converge (residual above ``tol``) get NaN and a warning.
    With ``return_details``: (log p, z, Σ log|det J_step|, max residual per point). ``condition``: the
    ``eps_model`` keywords of a conditional model.
    """
    steps = model.default_steps if steps is None else int(steps)
    X = _as_batch(model, x, dtype)
    tol = tol if tol is not None else (1e-5 if dtype == torch.float32 else 1e-11)
    view = model.at(compute_device(), dtype)
    inverses = [DDIMStepInverse(view, t, s, tol, condition=condition) for t, s in view.schedule.chain(steps)]
    outs = []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            xs = X[start:start + batch_size].to(view.device)
            total = torch.zeros(len(xs), dtype=torch.float64, device=view.device)
            worst = torch.zeros(len(xs), dtype=torch.float64, device=view.device)
            for inv in reversed(inverses):  # x_0 → x_T, undoing the last step first
                xs, logdet, res = inv(xs)
                total += logdet
                worst = torch.maximum(worst, res.double() / (1 + xs.abs().amax(1).double()))
            outs.append(tuple(t.cpu() for t in (log_normal(xs) - total, xs, total, worst)))
    if not outs:
        empty = torch.zeros(0, dtype=torch.float64)
        outs = [(empty, torch.zeros(0, X.shape[1], dtype=dtype), empty, empty)]
    logp, z, psi, worst = (torch.cat(o) for o in zip(*outs, strict=True))
    failed = worst > 10 * tol
    if failed.any():
        warnings.warn(f"DDIM inversion did not converge for {int(failed.sum())} of {len(X)} points "
                      f"(residual above {10 * tol:g}); their log p is NaN", RuntimeWarning, stacklevel=2)
        logp = torch.where(failed, torch.full_like(logp, float("nan")), logp)
    logp = logp.numpy()
    if return_details:
        return logp, z.reshape(len(z), *model.diffusion_shape), psi.numpy(), worst.numpy()
    return logp


class SigmaSchedule:
    """σ = sqrt((1 − ᾱ)/ᾱ), i.e. ᾱ = 1/(1 + σ²), and the timestep t(σ): log ᾱ is interpolated
    linearly between integer timesteps, with ᾱ = 1 (σ = 0) at t = −1, where DDIM's last step ends."""

    def __init__(self, alphas_cumprod: torch.Tensor):
        self.log_a = np.concatenate([[0.0], alphas_cumprod.double().log().numpy()])
        self.t_grid = np.arange(-1, len(alphas_cumprod), dtype=np.float64)

    def sigma_at(self, t: np.ndarray) -> np.ndarray:
        return np.sqrt(np.expm1(-np.interp(t, self.t_grid, self.log_a)))

    def t_at(self, sigma: float) -> float:
        return float(np.interp(math.log1p(sigma * sigma), -self.log_a, self.t_grid))


def _point_probes(x: np.ndarray, n_probes: int, seed: int) -> torch.Tensor:
    """Rademacher probes (M, K, D) fixed per point: seeded by the point's own bytes, not its batch."""
    out = np.empty((len(x), n_probes, x.shape[1]))
    for i, row in enumerate(np.ascontiguousarray(x, dtype=np.float64)):
        rng = np.random.default_rng([seed, zlib.crc32(row.tobytes())])
        out[i] = rng.choice([-1.0, 1.0], size=(n_probes, x.shape[1]))
    return torch.from_numpy(out)


def ode_log_prob(model, x, n_steps: int = 100, dtype: torch.dtype = torch.float32, batch_size: int = 4096,
                 exact_max_dim: int = 8, n_probes: int = 4, seed: int = 0, return_std: bool = False,
                 shared_probes: bool = False, condition: dict | None = None):
    """log p(x) by the probability-flow ODE dx̄/dσ = ε_θ(x̄/sqrt(1+σ²), t(σ)), RK4 from σ = 0 (the
    data) to σ_T, over the σ values of ``n_steps + 1`` uniform timesteps in [−1, T−1]:

        log p(x) = log N(x_T; 0, I) + (D/2) log ᾱ_T + ∫ tr(∂v/∂x̄) dσ,   x_T = sqrt(ᾱ_T) x̄(σ_T).

    DDIM's step is this ODE's Euler step, so the ``discrete`` density tends to this one as S grows.
    Divergence exact (Jacobian trace) when D ≤ ``exact_max_dim``, else Hutchinson's estimate with
    ``n_probes`` Rademacher probes fixed per point (``shared_probes``: the same probes for every point, so the
    estimate is a smooth function of x, what a path optimiser needs); ``return_std`` also gives its standard
    deviation. ``condition``: the keywords of ``model.eps_model`` (a class, a prompt: log p(x | c) of the
    conditional model; the callers keep the guidance scale at 1).
    """
    X = _as_batch(model, x, dtype)
    D = X.shape[1]
    shape = model.diffusion_shape
    sched = SigmaSchedule(model.schedule.alphas_cumprod)
    sigmas = sched.sigma_at(np.linspace(-1.0, model.num_train_timesteps - 1, n_steps + 1))
    a_T = 1.0 / (1.0 + float(sigmas[-1]) ** 2)
    exact = D <= exact_max_dim
    view = model.at(compute_device(), dtype)
    net, device = view.eps_model(**(condition or {})), view.device

    def velocity(xbar, sigma):
        t = sched.t_at(sigma)
        x = xbar / math.sqrt(1.0 + sigma * sigma)
        tt = torch.full((len(xbar),), t, dtype=torch.float64)
        return net(x.reshape(len(xbar), *shape), tt).reshape(len(xbar), -1)

    def vel_and_div(xbar, sigma, probes):
        with FORWARD_AD_LOCK:
            return _vel_and_div(xbar, sigma, probes)

    def _vel_and_div(xbar, sigma, probes):
        if exact:
            J = vmap(jacfwd(lambda xi: velocity(xi[None], sigma)[0]))(xbar)
            return velocity(xbar, sigma), torch.diagonal(J, dim1=1, dim2=2).sum(1).double(), 0.0
        ests, v = [], None
        for k in range(probes.shape[1]):
            e = probes[:, k].to(xbar.dtype)
            v, jv = jvp(lambda xx: velocity(xx, sigma), (xbar,), (e,))
            ests.append((e * jv).sum(1).double())
        ests = torch.stack(ests, 1)
        return v, ests.mean(1), ests.var(1) / probes.shape[1]

    outs = []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            xb = X[start:start + batch_size].clone()
            if exact:
                probes = None
            elif shared_probes:
                rng = np.random.default_rng(seed)
                probes = torch.from_numpy(rng.choice([-1.0, 1.0], size=(1, n_probes, D))).expand(len(xb), -1, -1)
            else:
                probes = _point_probes(xb.double().numpy(), n_probes, seed)
            xb = xb.to(device)
            probes = None if probes is None else probes.to(device)
            div_int = torch.zeros(len(xb), dtype=torch.float64, device=device)
            var_int = torch.zeros(len(xb), dtype=torch.float64, device=device)
            for i in range(n_steps):
                s0, s1 = float(sigmas[i]), float(sigmas[i + 1])
                h, sm = s1 - s0, (s0 + s1) / 2
                k1, d1, v1 = vel_and_div(xb, s0, probes)
                k2, d2, v2 = vel_and_div(xb + h / 2 * k1, sm, probes)
                k3, d3, v3 = vel_and_div(xb + h / 2 * k2, sm, probes)
                k4, d4, v4 = vel_and_div(xb + h * k3, s1, probes)
                xb = xb + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
                div_int += h / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
                var_int += (h / 6) ** 2 * (v1 + 4 * v2 + 4 * v3 + v4)
            x_T = xb.double() * math.sqrt(a_T)
            outs.append(((log_normal(x_T) + 0.5 * D * math.log(a_T) + div_int).cpu(), var_int.sqrt().cpu()))
    empty = torch.zeros(0, dtype=torch.float64)
    logp = torch.cat([o[0] for o in outs] or [empty]).numpy()
    std = torch.cat([o[1] for o in outs] or [empty]).numpy()
    return (logp, std) if return_std else logp


def sampler_jacobian(model, z: torch.Tensor, steps: int | None = None) -> torch.Tensor:
    """J_G(z) = Π_steps J_step (M, D, D) of the S-step DDIM sampler at latents z (M, D), by the chain rule
    over the step Jacobians c1 I + c2 ∂ε_θ/∂x_t (the MLP's fast path, else forward-mode AD). Runs on the view of
    ``model`` in z's dtype on the compute device; returns a CPU tensor."""
    steps = model.default_steps if steps is None else int(steps)
    view = model.at(compute_device(), z.dtype)
    x = z.reshape(len(z), -1).to(view.device)
    J = torch.eye(x.shape[1], dtype=x.dtype, device=x.device).expand(len(x), -1, -1)
    with torch.no_grad():
        for t, s in view.schedule.chain(steps):
            Js, x = DDIMStepInverse(view, t, s, tol=0.0).F_and_J(x)
            J = Js @ J
    return J.cpu()


class _DiscreteLogProb(torch.autograd.Function):
    """log p(x) of the DDIM sampler with its gradient ∇_x log p = −J_G(z)^{-T} z, z = G^{-1}(x).

    With a ReLU ε_θ the sampler G is CPWL, so ψ(z) = log|det J_G(z)| is piecewise constant and, almost
    everywhere, ∇_x log p(x) = ∇_x log N(G^{-1}(x)) = J_G^{-T} ∇_z log N(z) = −J_G^{-T} z.
    """

    @staticmethod
    def forward(ctx, x, model, steps):
        logp, z, _, _ = discrete_log_prob(model, x.detach(), steps=steps, dtype=torch.float64, return_details=True)
        ctx.save_for_backward(torch.as_tensor(z).reshape(len(x), -1).to(torch.float64))
        ctx.model, ctx.steps = model, steps
        return torch.as_tensor(logp, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (z,) = ctx.saved_tensors
        J = sampler_jacobian(ctx.model, z, ctx.steps)
        grad = torch.linalg.solve(J.transpose(1, 2), -z.unsqueeze(-1)).squeeze(-1)
        grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        return grad * grad_out.unsqueeze(-1), None, None


def discrete_log_density_torch(model, steps: int | None = None):
    """The ``discrete`` log p as a torch-differentiable map (M, D) float64 → (M,), for ``refine_path``:
    values from the exact Newton inversion (float64), gradients −J_G^{-T} z (see ``_DiscreteLogProb``).
    Undefined points (inversion not converged) give −inf and a zero gradient."""
    steps = model.default_steps if steps is None else int(steps)

    def log_density(x: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = _DiscreteLogProb.apply(x, model, steps)
        return torch.where(torch.isnan(out), torch.full_like(out, -math.inf), out)

    return log_density

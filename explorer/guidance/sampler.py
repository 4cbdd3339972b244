"""Reward-guided deterministic DDIM, generic over the model protocol (``eps_model``, ``schedule``, ``decode_module``).

One step from timestep t to s (DESIGN.md §6; classifier guidance with a reward in place of log p(c | x)):

    ε̃ = ε_θ(x_t, t) − ρ · sqrt(1 − ᾱ_t) · ∇_{x_t} r_φ(x_t, t)
    x̂_0 = (x_t − sqrt(1 − ᾱ_t) ε̃) / sqrt(ᾱ_t),   x_s = sqrt(ᾱ_s) x̂_0 + sqrt(1 − ᾱ_s) ε̃

(ε_θ is the classifier-free-guided ε of a conditional model: the reward's term adds to it). Since
−ε/sqrt(1 − ᾱ_t) is the score, the guided ε is the ε of the tilted density p_t(x)·exp(ρ r_φ(x, t)): ρ > 0 seeks
larger r_φ ≈ ψ, ρ < 0 smaller. Everything else is the plain sampler's arithmetic (``explorer.models.ddim.DDIMChain``),
so ρ = 0 reproduces the plain sampler bit for bit. A latent model's samples are ``decode_module()(x_0)``.

The reward's gradient is the MLP reward's chain rule written out (``RewardMLP.input_gradient``: no autograd overhead
per step), else ``torch.func.grad``; both compose with the forward-mode JVPs of
``explorer.descriptors``: the guided sampler is an ordinary generator map (its own ψ can be measured too).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.func import grad

from explorer.models.base import module_device_dtype


def reward_gradient(reward: nn.Module, x: torch.Tensor, t: int) -> torch.Tensor:
    """∇_x r(x, t) for a batch x (B, *shape), row by row (r is summed over the batch: rows do not interact): the
    reward's own ``input_gradient`` when it has one (``Reward``), else ``torch.func.grad``."""
    if hasattr(reward, "input_gradient"):
        return reward.input_gradient(x, t)
    return grad(lambda xx: reward(xx, t).sum())(x)


def reward_on(reward: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """``reward`` where a model view's networks are: its own cached view (``Reward.at``) when it has one, itself when
    it is already there, else a converted copy (the caller's module is never converted in place)."""
    if hasattr(reward, "at"):
        return reward.at(device, dtype)
    if module_device_dtype(reward) == (torch.device(device), dtype) or not any(True for _ in reward.parameters()):
        return reward
    return copy.deepcopy(reward).to(device=device, dtype=dtype).eval().requires_grad_(False)


class GuidedDDIM(nn.Module):
    """z = x_{t_0} → sample: the DDIM steps of ``chain`` with the reward term above (``reward`` None or ρ = 0: the plain
    sampler), then ``decode`` (None: the diffusion runs in sample space). ``trajectory`` also returns the states."""

    def __init__(self, eps_model: nn.Module, alphas_cumprod: torch.Tensor, chain: list[tuple[int, int]],
                 reward: nn.Module | None = None, rho: float = 0.0, decode: nn.Module | None = None):
        super().__init__()
        self.eps_model = eps_model
        self.reward = reward
        self.decode = decode
        self.rho = float(rho)
        if not math.isfinite(self.rho):
            raise ValueError(f"rho must be a finite number, got {rho!r}")
        self.chain = list(chain)
        a = alphas_cumprod.double()
        self.coeffs = []
        for t, s in self.chain:  # exactly DDIMChain's coefficients
            a_t = float(a[t])
            a_s = 1.0 if s < 0 else float(a[s])
            self.coeffs.append((math.sqrt(1 - a_t), math.sqrt(a_t), math.sqrt(a_s), math.sqrt(1 - a_s)))

    @property
    def steps(self) -> int:
        return len(self.chain)

    @property
    def guided(self) -> bool:
        return self.reward is not None and self.rho != 0.0

    def probe(self, x: torch.Tensor) -> torch.Tensor:
        """One step's ε and the decoder (what ``explorer.device.activation_bytes`` measures instead of the whole
        chain)."""
        out = self.eps_model(x, self.chain[0][0]) if self.chain else x
        return out if self.decode is None else self.decode(x)

    def step(self, x: torch.Tensor, i: int) -> torch.Tensor:
        (t, _), (sq1m_t, sq_t, sq_s, sq1m_s) = self.chain[i], self.coeffs[i]
        eps = self.eps_model(x, t)
        if self.guided:
            eps = eps - (self.rho * sq1m_t) * reward_gradient(self.reward, x, t)
        x0 = (x - sq1m_t * eps) / sq_t
        return sq_s * x0 + sq1m_s * eps

    def trajectory(self, z: torch.Tensor, keep_states: bool = False) -> dict[str, torch.Tensor]:
        """``x0`` (the diffusion's last state), ``last_input`` (the last step's input x_{t_{S-1}}), and with
        ``keep_states`` ``states`` (B, S, *shape): the input of every step, x_{t_0} = z first."""
        x, states, last = z, [], z
        for i in range(len(self.chain)):
            last = x
            if keep_states:
                states.append(x)
            x = self.step(x, i)
        out = {"x0": x, "last_input": last}
        if keep_states:
            out["states"] = torch.stack(states, 1) if states else z[:, None]
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for i in range(len(self.chain)):
            x = self.step(x, i)
        return x if self.decode is None else self.decode(x)


def guided_generator(model, steps: int | None = None, reward: nn.Module | None = None, rho: float = 0.0,
                     **condition) -> GuidedDDIM:
    """The guided sampler of ``model`` (or of its view: the module runs where the view's networks are) with the reward
    moved there too: ``GuidedDDIM(model.eps_model(**condition), schedule ᾱ, schedule.chain(steps), reward, ρ,
    model.decode_module())``."""
    if not model.capabilities.diffusion:
        raise ValueError(f"model {model.name!r} is not a diffusion model: reward guidance needs its ε-model and "
                         "noise schedule")
    steps = model.default_steps if steps is None else int(steps)
    if reward is not None:
        reward = reward_on(reward, model.device, model.dtype)
    return GuidedDDIM(model.eps_model(**condition), model.schedule.alphas_cumprod, model.schedule.chain(steps),
                      reward, rho, model.decode_module())


def guided_sample(model, n: int, seed: int = 0, steps: int | None = None, reward: nn.Module | None = None,
                  rho: float = 0.0, batch_size: int | None = None, return_details: bool = False, **condition):
    """Guided samples of exactly the latents ``model.latents(n, seed)``, on the compute device, as float32 numpy
    (n, *sample_shape) (ρ = 0: ``model.sample(n, seed, steps)`` bit for bit).

    With ``return_details``: a dict with ``samples``, ``x0`` and ``last_input`` (diffusion space, float32), and
    ``predicted`` (n,) float64: the reward's r_φ(x_{t_{S-1}}, t_{S-1}) at the last step's input, where the
    trajectory ended (NaN without a reward).
    """
    from explorer.device import compute_view, rows_per_chunk

    view = compute_view(model)
    G = guided_generator(view, steps, reward, rho, **condition)
    n = int(n)
    z = model.latents(n, seed)
    if n == 0:
        empty = np.zeros((0, *model.sample_shape), dtype=np.float32)
        if not return_details:
            return empty
        d0 = np.zeros((0, *model.diffusion_shape), dtype=np.float32)
        return {"samples": empty, "x0": d0, "last_input": d0, "predicted": np.zeros(0)}
    # the plain sampler's batch rule (one copy per row), so that ρ = 0 runs the very same batches as ``sample``
    batch = batch_size or rows_per_chunk(G, z[:1].to(view.device, view.dtype), 3 if G.guided else 1)
    parts: dict[str, list] = {"samples": [], "x0": [], "last_input": [], "predicted": []}
    t_last = G.chain[-1][0] if G.chain else None
    with torch.no_grad():
        for s in range(0, n, batch):
            zb = z[s:s + batch].to(view.device, view.dtype)
            if not return_details:
                parts["samples"].append(G(zb).float().cpu())
                continue
            tr = G.trajectory(zb)
            parts["samples"].append((tr["x0"] if G.decode is None else G.decode(tr["x0"])).float().cpu())
            parts["x0"].append(tr["x0"].float().cpu())
            parts["last_input"].append(tr["last_input"].float().cpu())
            if G.reward is not None and t_last is not None:
                parts["predicted"].append(G.reward(tr["last_input"], t_last).double().cpu())
            else:
                parts["predicted"].append(torch.full((len(zb),), float("nan"), dtype=torch.float64))
    if not return_details:
        return torch.cat(parts["samples"]).numpy()
    return {k: torch.cat(v).numpy() for k, v in parts.items()}


__all__ = ["GuidedDDIM", "guided_generator", "guided_sample", "reward_gradient", "reward_on"]

"""Deterministic DDIM (eta = 0) unrolled into plain ``torch.nn.Module`` maps.

One step from timestep t to s (ε-prediction, diffusers' formula with ᾱ_{s<0} = 1):

    x̂_0 = (x_t − sqrt(1 − ᾱ_t) ε_θ(x_t, t)) / sqrt(ᾱ_t)
    x_s = sqrt(ᾱ_s) x̂_0 + sqrt(1 − ᾱ_s) ε_θ(x_t, t)

It is affine in (x_t, ε_θ), so with a ReLU ε_θ the unrolled sampler is CPWL (DESIGN.md §2).
Scheduler conventions are pinned (SCHEDULER_CONVENTIONS): no clipping of x̂_0, "trailing" spacing,
ᾱ = 1 after the last step.
"""

from __future__ import annotations

import math
import threading

import torch
from diffusers import DDIMScheduler
from torch import nn

SCHEDULER_CONVENTIONS = {
    "clip_sample": False,
    "timestep_spacing": "trailing",
    "set_alpha_to_one": True,
    "prediction_type": "epsilon",
}

MAPS = ("sampler", "from_t", "denoiser")


def make_scheduler(config: dict) -> DDIMScheduler:
    """A diffusers DDIMScheduler from a noise-schedule config, with our pinned conventions."""
    return DDIMScheduler(**{**config, **SCHEDULER_CONVENTIONS})


def schedule_timesteps(scheduler: DDIMScheduler, steps: int) -> list[int]:
    """The S-step trailing schedule, decreasing: e.g. T=1000, S=50 → 999, 979, …, 19."""
    T = scheduler.config.num_train_timesteps
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in [1, {T}], got {steps}")
    scheduler.set_timesteps(steps)
    return [int(t) for t in scheduler.timesteps]


class NoiseSchedule:
    """A DDPM noise schedule ᾱ_t (t = 0 … T−1) with the DDIM conventions pinned (SCHEDULER_CONVENTIONS).

    ``alphas_cumprod``: float64 CPU tensor; ``chain(steps, t)``: the (t, s) pairs of the S-step DDIM sampler
    (see ``step_chain``); ``scheduler``: the diffusers DDIMScheduler it is read from.
    """

    def __init__(self, config_or_scheduler):
        if isinstance(config_or_scheduler, DDIMScheduler):
            self.scheduler = config_or_scheduler
        else:
            self.scheduler = make_scheduler(dict(config_or_scheduler))
        self.alphas_cumprod = self.scheduler.alphas_cumprod.double().clone()
        self.num_train_timesteps = int(self.scheduler.config.num_train_timesteps)
        self._lock = threading.Lock()

    def chain(self, steps: int, t: int | None = None) -> list[tuple[int, int]]:
        with self._lock:  # set_timesteps mutates the scheduler
            return step_chain(self.scheduler, steps, t)

    def timesteps(self, steps: int) -> list[int]:
        with self._lock:
            return schedule_timesteps(self.scheduler, steps)

    def __repr__(self) -> str:
        return f"NoiseSchedule(T={self.num_train_timesteps})"


def step_chain(scheduler: DDIMScheduler, steps: int, t: int | None = None) -> list[tuple[int, int]]:
    """(t, s) pairs of the DDIM steps: the full S-step sampler, or its trailing part from ``t``.

    Each schedule timestep τ steps to τ − T//S (diffusers' rule; a negative target means ᾱ = 1).
    With ``t`` given (an integer in [0, T)), the chain starts at t: if t is not itself a schedule
    timestep, a first step goes from t to the largest schedule timestep below it.
    """
    T = scheduler.config.num_train_timesteps
    taus = schedule_timesteps(scheduler, steps)
    chain = [(tau, tau - T // steps) for tau in taus]
    if t is None:
        return chain
    if not (isinstance(t, int) or (hasattr(t, "__index__"))) or not 0 <= int(t) < T:
        raise ValueError(f"t must be an integer timestep in [0, {T}), got {t!r}")
    t = int(t)
    tail = [(a, b) for a, b in chain if a <= t]
    if not tail or tail[0][0] != t:
        tail = [(t, tail[0][0] if tail else -1)] + tail
    return tail


class DDIMChain(nn.Module):
    """x_{t_0} → x_0: the DDIM steps of ``chain`` applied in turn, for a batch (B, *sample_shape)."""

    def __init__(self, denoiser: nn.Module, alphas_cumprod: torch.Tensor, chain: list[tuple[int, int]]):
        super().__init__()
        self.denoiser = denoiser
        self.chain = list(chain)
        a = alphas_cumprod.double()
        coeffs = []
        for t, s in self.chain:
            a_t = float(a[t])
            a_s = 1.0 if s < 0 else float(a[s])
            coeffs.append((math.sqrt(1 - a_t), math.sqrt(a_t), math.sqrt(a_s), math.sqrt(1 - a_s)))
        self.coeffs = coeffs

    @property
    def steps(self) -> int:
        return len(self.chain)

    def probe(self, x: torch.Tensor) -> torch.Tensor:
        """One step's ε (what ``explorer.device.activation_bytes`` measures instead of the whole chain)."""
        return self.denoiser(x, self.chain[0][0]) if self.chain else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for (t, _), (sq1m_t, sq_t, sq_s, sq1m_s) in zip(self.chain, self.coeffs, strict=True):
            eps = self.denoiser(x, t)
            x0 = (x - sq1m_t * eps) / sq_t
            x = sq_s * x0 + sq1m_s * eps
        return x


class DenoiserMap(nn.Module):
    """x_t → x̂_0(x_t, t) = (x_t − sqrt(1 − ᾱ_t) ε_θ(x_t, t)) / sqrt(ᾱ_t), one step at fixed t."""

    def __init__(self, denoiser: nn.Module, alphas_cumprod: torch.Tensor, t: int):
        super().__init__()
        self.denoiser = denoiser
        self.t = int(t)
        a_t = float(alphas_cumprod.double()[self.t])
        self.sq1m_t, self.sq_t = math.sqrt(1 - a_t), math.sqrt(a_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.sq1m_t * self.denoiser(x, self.t)) / self.sq_t

"""The reward's training set: N seeded latents z, ψ(z) of a chosen map, and a state x_t for each latent at every step
of the DDIM schedule, i.e. the pairs ((x_t, t), ψ(z)) (DESIGN.md §6). The states are either each trajectory's own
(``trajectory``, issue 15's definition) or the forward diffusion of the trajectory's end point (``noised``, the
default: see DEFAULT_STATES for the measurements that chose it).

ψ = Σ log σ_i of the map's Jacobian (``explorer.descriptors``). Maps: ``sampler`` (the default: G: z → sample,
the plain S-step DDIM sampler) and, for latent models, ``decoder`` (the VAE decoder at the trajectory's x_0). For the
built-in MLPs (``capabilities.step_jacobian``) the full sampler Jacobian is the product of the step Jacobians
(``explorer.density.ddim.sampler_jacobian``: about twice as fast as D forward-mode tangents); otherwise a
P-direction sketch (``n_directions``; None: the full Jacobian) by ``local_descriptors``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.descriptors.local import descriptors_from_singular_values, local_descriptors
from explorer.device import compute_view
from explorer.guidance.sampler import guided_generator

TARGET_MAPS = ("sampler", "decoder")


def check_target_map(model, map: str) -> str:
    if map not in TARGET_MAPS:
        raise ValueError(f"the reward predicts ψ of the sampler or the decoder; got map {map!r}")
    if map == "decoder" and "decoder" not in model.capabilities.maps:
        raise ValueError(f"model {model.name!r} has no decoder map (only latent diffusion models have one); "
                         "use map='sampler'")
    return map


def resolved_directions(model, map: str, n_directions: int | None) -> int:
    """P as the number of directions actually used (None → the full Jacobian: the map's input dimension)."""
    shape = model.diffusion_shape if map == "decoder" else model.latent_shape
    d = int(np.prod(shape))
    if n_directions is None:
        return d
    if not 1 <= int(n_directions) <= d:
        raise ValueError(f"n_directions must be in [1, {d}], got {n_directions}")
    return int(n_directions)


def psi_of_latents(model, z: torch.Tensor, map: str = "sampler", steps: int | None = None,
                   n_directions: int | None = None, x0: torch.Tensor | None = None, chunk: int = 256,
                   progress=None, **condition) -> np.ndarray:
    """ψ (float64, (N,)) of ``map`` at latents z (N, *latent_shape): the plain sampler at z, or the decoder at the
    trajectory's x_0 (``x0``, computed from z when not given). Full Jacobian unless ``n_directions`` < d (then the
    sketch of ``local_descriptors`` with direction seed 0)."""
    check_target_map(model, map)
    steps = model.default_steps if steps is None else int(steps)
    P = resolved_directions(model, map, n_directions)
    view = compute_view(model)
    n = len(z)
    out = []
    fast = (map == "sampler" and model.capabilities.step_jacobian and not condition
            and P == int(np.prod(model.latent_shape)))
    if map == "decoder" and x0 is None:
        plain = guided_generator(view, steps, None, 0.0, **condition)
        with torch.no_grad():
            x0 = torch.cat([plain.trajectory(z[s:s + chunk].to(view.device, view.dtype))["x0"].cpu()
                            for s in range(0, n, chunk)]) if n else z
    G = None if fast else (view.generator("sampler", steps, **condition) if map == "sampler"
                           else view.generator("decoder"))
    for s in range(0, n, chunk):
        if fast:
            from explorer.density.ddim import sampler_jacobian

            J = sampler_jacobian(model, z[s:s + chunk].to(view.dtype), steps)
            sv = torch.linalg.svdvals(J.double()).numpy()
            out.append(descriptors_from_singular_values(sv).psi)
        else:
            inp = (z if map == "sampler" else x0)[s:s + chunk]
            out.append(local_descriptors(G, inp, n_directions=None if P == int(np.prod(inp.shape[1:])) else P).psi)
        if progress is not None:
            progress(min(s + chunk, n), n)
    return np.concatenate(out) if out else np.zeros(0)


@dataclass
class RewardData:
    """Pairs ((x_t, t), ψ(z)): ``states`` (N, S, *diffusion_shape) float32 (the input of every DDIM step, z first),
    ``timesteps`` (S,) int, ``psi`` (N,) float64, ``latents`` (N, *latent_shape), ``params`` (what made them)."""

    latents: torch.Tensor
    psi: np.ndarray
    states: torch.Tensor
    timesteps: np.ndarray
    params: dict

    @property
    def n(self) -> int:
        return len(self.psi)

    @property
    def steps(self) -> int:
        return len(self.timesteps)


def trajectory_states(model, z: torch.Tensor, steps: int | None = None, chunk: int = 1024,
                      **condition) -> tuple[torch.Tensor, torch.Tensor]:
    """(states (N, S, *diffusion_shape), x_0 (N, *diffusion_shape)) of the plain DDIM trajectories from z (CPU,
    the compute dtype)."""
    view = compute_view(model)
    G = guided_generator(view, steps, None, 0.0, **condition)
    states, x0 = [], []
    with torch.no_grad():
        for s in range(0, len(z), chunk):
            tr = G.trajectory(z[s:s + chunk].to(view.device, view.dtype), keep_states=True)
            states.append(tr["states"].cpu())
            x0.append(tr["x0"].cpu())
    if not states:
        shape = tuple(model.diffusion_shape)
        return torch.zeros((0, G.steps, *shape)), torch.zeros((0, *shape))
    return torch.cat(states), torch.cat(x0)


STATE_KINDS = ("trajectory", "noised")
#: The default inputs of the reward. Measured on toy2d/ring (N = 2,048, 512 samples per ρ): a reward on the DDIM
#: trajectories' own states fits ψ well (held-out R² 0.86) but is as rough as ψ(z) itself at x_T = z, and guidance by
#: it overshoots already at ρ = 0.05 (mean ψ −1.90 → +0.71 at ρ = 0.05, then *down* to −1.59 at ρ = 0.2, samples
#: thrown between the modes); a reward on forward-noised states learns E[ψ | x_t], the target classifier guidance
#: assumes (R² against ψ(z) only 0.02: ψ is not predictable from a noisy state until the last steps), and guidance by
#: it is monotone over ρ ∈ [−1, 2] (mean ψ −2.50, −1.90, −0.66, +1.53 at ρ = −1, 0, 1, 2).
DEFAULT_STATES = "noised"


def noised_states(model, x0: torch.Tensor, timesteps, seed: int) -> torch.Tensor:
    """x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε for every x_0 (N, *shape) and timestep (S,), one fresh seeded ε per pair:
    (N, S, *shape), the forward diffusion's states of the trajectories' end points."""
    a = model.schedule.alphas_cumprod.double()
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    out = torch.empty((len(x0), len(timesteps), *x0.shape[1:]), dtype=x0.dtype)
    for k, t in enumerate(timesteps):
        eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64).to(x0.dtype)
        out[:, k] = float(a[int(t)]) ** 0.5 * x0 + float(1 - a[int(t)]) ** 0.5 * eps
    return out


def reward_training_set(model, n: int, seed: int = 1, steps: int | None = None, map: str = "sampler",
                        n_directions: int | None = None, psi: np.ndarray | None = None, progress=None,
                        states: str = DEFAULT_STATES, **condition) -> RewardData:
    """The reward's training set from the latents ``model.latents(n, seed)`` (``seed`` 1 by default, so that the
    evaluation latents of seed 0 are never trained on). ``psi``: ψ already computed for these latents (a cache).

    ``states``: ``trajectory`` (the input of every DDIM step of each latent's own trajectory: the x_T state is z, so
    the reward learns ψ(z) exactly there) or ``noised`` (the forward diffusion of the trajectory's end point,
    x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε: the reward then learns E[ψ | x_t], the smoothed target of classifier
    guidance)."""
    check_target_map(model, map)
    if states not in STATE_KINDS:
        raise ValueError(f"states must be one of {', '.join(STATE_KINDS)}; got {states!r}")
    model.check_condition(condition)
    if int(n) < 4:
        raise ValueError(f"the reward needs at least 4 latents, got n = {n}")
    steps = model.default_steps if steps is None else int(steps)
    z = model.latents(int(n), seed)
    states_traj, x0 = trajectory_states(model, z, steps, **condition)
    if psi is None:
        psi = psi_of_latents(model, z, map, steps, n_directions, x0=x0, progress=progress, **condition)
    psi = np.asarray(psi, dtype=np.float64)
    if psi.shape != (int(n),):
        raise ValueError(f"psi must hold one value per latent, shape ({n},); got {psi.shape}")
    timesteps = np.array([t for t, _ in model.schedule.chain(steps)], dtype=np.int64)
    if states == "noised":
        states_ = noised_states(model, x0, timesteps, seed)
    else:
        states_ = states_traj
    params = {"model": model.name, "map": map, "steps": steps, "states": states,
              "n_directions": resolved_directions(model, map, n_directions), "n": int(n), "seed": int(seed),
              "condition": dict(condition)}
    return RewardData(z, psi, states_, timesteps, params)


__all__ = ["DEFAULT_STATES", "STATE_KINDS", "TARGET_MAPS", "RewardData", "noised_states", "psi_of_latents",
           "reward_training_set", "trajectory_states"]

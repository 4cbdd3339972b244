"""The built-in models' adapter of the model protocol: a DDPM (an ε-prediction MLP + a noise schedule) sampled
by deterministic DDIM, in the space of its samples (d = D: latent_shape = sample_shape = diffusion_shape).

Everything that knows the MLP (``denoiser``, its fast ``eps_and_jacobian``) stays in this adapter; the library
reaches the diffusion only through ``schedule``, ``eps_model()`` and ``capabilities``.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from explorer.models.base import Capabilities, GenerativeModel, TrainingSet
from explorer.models.ddim import DDIMChain, DenoiserMap, NoiseSchedule

MAPS = ("sampler", "from_t", "denoiser")


class DiffusionModel(GenerativeModel):
    """A diffusion model with a deterministic DDIM sampler.

    Parameters: ``denoiser`` ε_θ(x, t) (an nn.Module), ``schedule`` (diffusers scheduler kwargs,
    e.g. num_train_timesteps and betas), ``sample_shape`` (shape of one sample; the latent x_T has
    the same shape), ``data`` and ``labels`` (the training set), ``meta`` (the JSON record).
    """

    def __init__(self, name: str, denoiser: nn.Module, schedule: dict, sample_shape: tuple[int, ...],
                 data: np.ndarray, labels: np.ndarray | None = None, meta: dict | None = None,
                 default_steps: int = 50):
        self.name = name
        self.denoiser = denoiser.eval().requires_grad_(False)
        self.schedule_config = dict(schedule)
        self.schedule = NoiseSchedule(self.schedule_config)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_shape = self.diffusion_shape = self.sample_shape
        self.training_set = TrainingSet(np.asarray(data, dtype=np.float32), labels)
        self.meta = dict(meta or {})
        self.default_steps = int(default_steps)
        self.weights_hash = self.meta.get("weights_hash", "")
        self.log_p_ref = self.meta.get("log_p_ref")
        shape = self.meta.get("image_shape")
        self.image_shape = None if shape is None else (int(shape[0]), int(shape[1]))
        self.channels = 1
        flat = len(self.sample_shape) == 1
        # The exact inversion of the sampler is this adapter's default likelihood; a record that names the ODE (the
        # digit models: their last DDIM step contracts by e^−50 and Newton does not converge, even on their own
        # samples) offers the ODE only (``log_prob(x, "discrete")`` still runs, and says where it fails).
        ode_only = (self.meta.get("likelihood") or {}).get("method") == "ode"
        self.capabilities = Capabilities(
            maps=MAPS, likelihoods=("ode",) if ode_only else ("discrete", "ode"), piecewise_linear=_is_relu(denoiser),
            training_set=True,
            conditioning=(), step_jacobian=flat and hasattr(denoiser, "eps_and_jacobian"), diffusion=True)

    # ------------------------------------------------------------------ protocol
    def eps_model(self, **condition) -> nn.Module:
        self.check_condition(condition)
        return self.denoiser

    def generator(self, map: str = "sampler", steps: int | None = None, t: int | None = None,
                  reward: nn.Module | None = None, rho: float = 0.0, **condition) -> nn.Module:
        """``sampler``: x_T → x_0 through the S-step DDIM schedule (with a ``reward``: the guided sampler of strength
        ``rho``, explorer.guidance); ``from_t``: x_t → x_0 through the trailing part of that schedule starting at t;
        ``denoiser``: x_t → x̂_0(x_t, t)."""
        self.check_condition(condition)
        self.check_map(map)
        if reward is not None:
            if map != "sampler":
                raise ValueError(f"reward guidance applies to the sampler map, not {map!r}")
            return self.guided_sampler(steps, reward, rho, **condition)
        steps = self.default_steps if steps is None else int(steps)
        a = self.schedule.alphas_cumprod
        if map == "sampler":
            return DDIMChain(self.denoiser, a, self.schedule.chain(steps))
        if t is None:
            raise ValueError(f"map {map!r} needs a timestep t in [0, {self.num_train_timesteps})")
        chain = self.schedule.chain(steps, t)  # validates t
        if map == "from_t":
            return DDIMChain(self.denoiser, a, chain)
        return DenoiserMap(self.denoiser, a, t)

    def log_prob(self, x, method: str | None = "discrete", steps: int | None = None, **kwargs) -> np.ndarray:
        """log p(x) (float64, (M,)) for points x, (M, *sample_shape) or flat (M, D), numpy or torch.

        ``discrete`` (default): the exact density of the S-step DDIM sampler (``steps``, default the
        model's); ``ode``: the probability-flow ODE. See explorer.density.ddim.
        """
        from explorer.density.ddim import discrete_log_prob, ode_log_prob

        method = method or "discrete"
        if method == "discrete":
            return discrete_log_prob(self, x, steps=steps, **kwargs)
        if method == "ode":
            return ode_log_prob(self, x, **kwargs)
        raise ValueError(f"unknown likelihood method {method!r}; valid: discrete, ode")

    @property
    def default_likelihood(self) -> dict:
        """The likelihood the pages and CLI use: the record's ``likelihood`` entry, ``{"method": "discrete"}``
        when it has none (the 2-D models). Image models use the ODE with Hutchinson probes: their sampler's exact
        inversion does not converge on real images (the last DDIM step contracts by e^−50 or more)."""
        return dict(self.meta.get("likelihood") or {"method": "discrete"})

    def _convert_networks(self, device, dtype) -> None:
        self.denoiser = self.converted(self.denoiser, device, dtype)


def _is_relu(module: nn.Module) -> bool:
    """Whether every activation module of ``module`` is piecewise linear (ReLU-like)."""
    from explorer.descriptors.complexity import activation_modules

    acts = activation_modules(module)
    return bool(acts) and all(isinstance(m, nn.ReLU | nn.LeakyReLU | nn.PReLU | nn.ReLU6 | nn.Hardtanh)
                              for m in acts)


__all__ = ["MAPS", "DiffusionModel"]

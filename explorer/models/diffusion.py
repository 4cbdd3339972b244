"""The model object: a DDPM (ε-prediction denoiser + noise schedule) with the verbs every page uses.

Adapters for other generator types implement the same few members (``latent_shape``, ``latents``,
``sample``, ``generator``, ``training_data``), and descriptors, geodesics and pages work unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from explorer.models.ddim import MAPS, DDIMChain, DenoiserMap, make_scheduler, step_chain


class DiffusionModel:
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
        self.schedule = dict(schedule)
        self.scheduler = make_scheduler(self.schedule)
        self.alphas_cumprod = self.scheduler.alphas_cumprod.clone()
        self.sample_shape = tuple(sample_shape)
        self._data = np.asarray(data, dtype=np.float32)
        self._labels = None if labels is None else np.asarray(labels)
        self.meta = dict(meta or {})
        self.default_steps = int(default_steps)
        self.weights_hash = self.meta.get("weights_hash", "")
        self.log_p_ref = self.meta.get("log_p_ref")

    def __repr__(self) -> str:
        return f"DiffusionModel({self.name!r}, sample_shape={self.sample_shape})"

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self.sample_shape

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(height, width) when a sample is a flattened grey-scale image (pages then draw images), else None."""
        shape = self.meta.get("image_shape")
        return None if shape is None else (int(shape[0]), int(shape[1]))

    @property
    def num_train_timesteps(self) -> int:
        return int(self.schedule["num_train_timesteps"])

    def latents(self, n: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``n`` standard-normal latents x_T (n, *latent_shape), the same for the same seed."""
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        gen = torch.Generator().manual_seed(int(seed))
        return torch.randn((n, *self.latent_shape), generator=gen, dtype=torch.float64).to(dtype)

    def latent_of_seed(self, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The first latent of ``latents(1, seed)``, shape latent_shape (the CLI's ``--anchors``)."""
        return self.latents(1, seed, dtype)[0]

    def generator(self, map: str = "sampler", steps: int | None = None, t: int | None = None) -> nn.Module:
        """G as an nn.Module from (B, *latent_shape) to (B, *sample_shape).

        ``sampler``: x_T → x_0 through the S-step DDIM schedule; ``from_t``: x_t → x_0 through the
        trailing part of that schedule starting at t; ``denoiser``: x_t → x̂_0(x_t, t).
        """
        steps = self.default_steps if steps is None else int(steps)
        if map == "sampler":
            return DDIMChain(self.denoiser, self.alphas_cumprod, step_chain(self.scheduler, steps))
        if map in ("from_t", "denoiser"):
            if t is None:
                raise ValueError(f"map {map!r} needs a timestep t in [0, {self.num_train_timesteps})")
            if map == "from_t":
                return DDIMChain(self.denoiser, self.alphas_cumprod, step_chain(self.scheduler, steps, t))
            step_chain(self.scheduler, steps, t)  # validates t
            return DenoiserMap(self.denoiser, self.alphas_cumprod, t)
        raise ValueError(f"unknown map {map!r}; valid: {', '.join(MAPS)}")

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, steps: int | None = None, batch_size: int = 8192) -> np.ndarray:
        """Samples G(z) of exactly the latents ``latents(n, seed)``, as float32 numpy (n, *sample_shape)."""
        G = self.generator("sampler", steps)
        z = self.latents(n, seed)
        out = [G(z[i:i + batch_size]) for i in range(0, n, batch_size)]
        return (torch.cat(out) if out else z).numpy()

    def log_prob(self, x, method: str = "discrete", steps: int | None = None, **kwargs) -> np.ndarray:
        """log p(x) (float64, (M,)) for points x, (M, *sample_shape) or flat (M, D), numpy or torch.

        ``discrete`` (default): the exact density of the S-step DDIM sampler (``steps``, default the
        model's); ``ode``: the probability-flow ODE. See explorer.density.ddim.
        """
        from explorer.density.ddim import discrete_log_prob, ode_log_prob

        if method == "discrete":
            return discrete_log_prob(self, x, steps=steps, **kwargs)
        if method == "ode":
            return ode_log_prob(self, x, **kwargs)
        raise ValueError(f"unknown likelihood method {method!r}; valid: discrete, ode")

    @property
    def default_likelihood(self) -> dict:
        """The likelihood the pages and CLI use for this model: ``log_prob`` keyword arguments from the
        record's ``likelihood`` entry; ``{"method": "discrete"}`` when it has none (the 2-D models). Image
        models use the ODE with Hutchinson probes: their sampler's exact inversion does not converge on
        real images (the last DDIM step contracts by e^−50 or more; see explorer.density.ddim)."""
        return dict(self.meta.get("likelihood") or {"method": "discrete"})

    def log_density(self, method: str | None = None, **kwargs):
        """log p as a plain callable from an (M, D) array to (M,) float64, for explorer.geodesics
        (``method`` None: ``default_likelihood``).

        Points where ``log_prob`` is undefined (a DDIM inversion that did not converge: NaN, with a
        warning) count as density 0 (log p = −inf), the most expensive the metric allows.
        """
        if method is None:
            kwargs = {**self.default_likelihood, **kwargs}
            method = kwargs.pop("method")

        def log_density(x):
            logp = self.log_prob(x, method=method, **kwargs)
            return np.where(np.isnan(logp), -np.inf, logp)

        return log_density

    def training_data(self) -> np.ndarray:
        """The training set (N, *sample_shape), float32."""
        return self._data.copy()

    def training_labels(self) -> np.ndarray | None:
        """Class / mode labels of the training set, when the data set has them."""
        return None if self._labels is None else self._labels.copy()

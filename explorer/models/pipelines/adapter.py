"""``PipelineModel``: the part every diffusers adapter shares, the DDIM maps over its ε-model (DESIGN.md §6).

Maps (``generator(map, steps, t, **condition)``), all from z of shape ``latent_shape`` (= ``diffusion_shape``):

- ``sampler``: deterministic DDIM (eta = 0) over the pipeline's own noise schedule with the pinned conventions
  (``clip_sample=False``, ``timestep_spacing="trailing"``, ``set_alpha_to_one=True``), x_T = z → x_0, then for
  latent models the VAE decoder, image = decode(x_0 / scaling_factor), never clamped;
- ``from_t``: the same sampler's trailing part from timestep t (then the decoder);
- ``denoiser``: the one-step prediction x̂_0(x_t, t) (then the decoder);
- ``decoder`` (latent models only): the VAE decoder alone, x_0 → image.

Likelihood (``log_prob(x, "ode", **condition)``): the probability-flow ODE (``explorer.density.ddim.ode_log_prob``)
in the space the diffusion runs in (pixels; the VAE latent of latent models: points from ``encode(images)`` or
``sample_x0``), with ``LIKELIHOOD``'s RK4 steps and Rademacher probes shared by every point. Conditional models are
measured at guidance scale 1 (the conditional ε itself): a classifier-free-guided flow is not the density of any
model, so ``guidance_scale`` above 1 is refused. p_ref: ``log_p_ref`` from ``explorer_record.json`` when stored, else
``explorer.density.cached`` takes the median over ``ref_points`` training points (or samples).

A subclass sets the protocol attributes and implements ``eps_model(**condition)``, ``decode_module()`` and
``_convert_networks``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from explorer.models.base import GenerativeModel
from explorer.models.ddim import DDIMChain, DenoiserMap
from explorer.models.pipelines.networks import Decoded

#: The pages' likelihood (``log_prob`` keywords): the ODE with 20 RK4 steps and 2 Rademacher probes shared by every
#: point (a smooth log p for geodesics, as for the built-in digit models).
LIKELIHOOD = {"method": "ode", "n_steps": 20, "n_probes": 2, "shared_probes": True}
#: Points p_ref's median is taken over when the record stores none (the ODE costs about a second a point on a CPU).
REF_POINTS = 32


class PipelineModel(GenerativeModel):
    """A diffusers pipeline as a model of the library (subclasses: one per pipeline family)."""

    #: the pipeline folder (``explorer.models.pipelines.folder.PipelineFolder``) it was opened from
    folder = None
    ref_points = REF_POINTS

    def _init_likelihood(self, record: dict) -> None:
        """``meta["likelihood"]`` and ``log_p_ref`` (a number stored in ``explorer_record.json``, else None)."""
        self.meta["likelihood"] = dict(LIKELIHOOD)
        ref = record.get("log_p_ref")
        self.log_p_ref = float(ref) if isinstance(ref, int | float) and np.isfinite(ref) else None

    @property
    def latent_space(self) -> bool:
        """Whether the diffusion runs in a VAE's latent space (then samples are decoded images)."""
        return self.decode_module() is not None

    @staticmethod
    def converted(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
        """A deep copy on ``device`` in ``dtype`` by ``nn.Module.to`` itself: diffusers' override of ``to`` warns on
        every dtype change (its list of float32-only modules is empty for these models). In float64 the attention
        modules' "upcast" of scores and softmax to float32 would be a downcast: it is turned off there."""
        out = copy.deepcopy(module)
        nn.Module.to(out, device=device, dtype=dtype)
        if dtype == torch.float64:
            from diffusers.models.attention_processor import Attention

            for m in out.modules():
                if isinstance(m, Attention):
                    m.upcast_attention = m.upcast_softmax = False
        return out.eval().requires_grad_(False)

    def check_map(self, map: str) -> str:
        if map == "decoder" and "decoder" not in self.capabilities.maps:
            raise ValueError(f"map 'decoder' is the VAE decoder of a latent diffusion model, but {self.name!r} runs "
                             f"in pixel space and has none; valid maps: {', '.join(self.capabilities.maps)}")
        return super().check_map(map)

    def generator(self, map: str = "sampler", steps: int | None = None, t: int | None = None,
                  reward: nn.Module | None = None, rho: float = 0.0, **condition) -> nn.Module:
        """G for ``map`` (see the module docstring), owning the networks of this object's device and dtype; with a
        ``reward`` on the ``sampler`` map, the reward-guided sampler of strength ``rho`` (explorer.guidance)."""
        self.check_condition(condition)
        self.check_map(map)
        if reward is not None:
            if map != "sampler":
                raise ValueError(f"reward guidance applies to the sampler map, not {map!r}")
            return self.guided_sampler(steps, reward, rho, **condition)
        decoder = self.decode_module()
        if map == "decoder":
            return decoder
        steps = self.default_steps if steps is None else int(steps)
        a = self.schedule.alphas_cumprod
        if map == "sampler":
            inner = DDIMChain(self.eps_model(**condition), a, self.schedule.chain(steps))
        else:
            if t is None:
                raise ValueError(f"map {map!r} needs a timestep t in [0, {self.num_train_timesteps})")
            chain = self.schedule.chain(steps, t)  # validates t
            eps = self.eps_model(**condition)
            inner = DDIMChain(eps, a, chain) if map == "from_t" else DenoiserMap(eps, a, t)
        return inner if decoder is None else Decoded(inner, decoder)

    def x0_generator(self, steps: int | None = None, **condition) -> nn.Module:
        """The DDIM sampler z → x_0 in the diffusion's space (no decoder): the ``sampler`` map's inner chain."""
        self.check_condition(condition)
        steps = self.default_steps if steps is None else int(steps)
        return DDIMChain(self.eps_model(**condition), self.schedule.alphas_cumprod, self.schedule.chain(steps))

    def log_prob(self, x, method: str | None = "ode", **kwargs) -> np.ndarray:
        """log p(x | condition) (float64, (M,)) by the probability-flow ODE at points x of the diffusion's space
        ((M, *diffusion_shape) or flat; latent models: ``encode(images)``); conditioning keywords (``class_label``,
        ``prompt``) select the conditional ε at guidance scale 1, the rest are ``ode_log_prob``'s."""
        from explorer.density.ddim import ode_log_prob

        if (method or "ode") != "ode":
            raise ValueError(f"unknown likelihood method {method!r} for {self.name!r}; valid: ode")
        condition = {k: kwargs.pop(k) for k in list(kwargs) if k in self.capabilities.conditioning}
        if "guidance_scale" in condition and guidance_scale(condition.pop("guidance_scale")) != 1:
            raise ValueError("log p is measured at guidance_scale 1 (the conditional model itself): a classifier-free-"
                             "guided flow is not the density of any model; drop guidance_scale")
        condition.pop("negative_prompt", None)  # only guidance uses it
        size = int(np.prod(self.diffusion_shape))
        n_values = int(np.prod(np.shape(x)[1:])) if np.ndim(x) >= 2 else int(np.size(x))
        if self.latent_space and n_values != size:
            raise ValueError(f"log p of {self.name!r} is over the VAE latent, points of {size} values "
                             f"({'×'.join(map(str, self.diffusion_shape))}); got {n_values} values a point: encode "
                             "images with model.encode(images)")
        return ode_log_prob(self, x, condition=condition, **kwargs)


class LatentPipelineModel(PipelineModel):
    """A latent diffusion pipeline: the diffusion runs on the VAE latent (``diffusion_shape`` = ``latent_shape``),
    samples are decoded images (``sample_shape`` = (channels, H, W), H = latent height · 2^(VAE blocks − 1))."""

    vae = None

    def _init_vae(self, vae, latent_shape: tuple[int, ...]) -> None:
        from explorer.models.pipelines.networks import prepare_for_forward_ad

        prepare_for_forward_ad(vae)
        self.vae = vae
        self.scaling_factor = float(vae.config.scaling_factor)
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        c, h, w = latent_shape
        if c != vae.config.latent_channels:
            raise ValueError(f"the denoiser works on {c} latent channels but the VAE decodes "
                             f"{vae.config.latent_channels}; the pipeline's components do not fit together")
        self.diffusion_shape = self.latent_shape = (int(c), int(h), int(w))
        self.channels = int(vae.config.out_channels)
        self.image_shape = (int(h * factor), int(w * factor))
        self.sample_shape = (self.channels, *self.image_shape)

    def decode_module(self) -> nn.Module:
        from explorer.models.pipelines.networks import VAEDecode

        return VAEDecode(self.vae, self.scaling_factor)

    def encode(self, images) -> np.ndarray:
        """VAE latents (N, *diffusion_shape), float32, of images (N, *sample_shape) in [−1, 1]: the encoder's
        posterior mean × scaling_factor (the x_0 the diffusion was trained on), on the compute device."""
        from explorer.device import compute_view
        from explorer.models.pipelines.networks import VAEEncode

        x = np.asarray(images.detach().cpu() if torch.is_tensor(images) else images, dtype=np.float32)
        size = int(np.prod(self.sample_shape))
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != size:
            raise ValueError(f"images must be (N, {', '.join(map(str, self.sample_shape))}) in [-1, 1] or flat "
                             f"(N, {size}); got shape {x.shape}")
        view = compute_view(self)
        return view.run_batched(VAEEncode(view.vae, self.scaling_factor), x, self.sample_shape)

    def to_display(self, x) -> np.ndarray | None:
        """Images (N, H, W, C) uint8 of samples (N, *sample_shape), or of points of the diffusion's space (VAE
        latents, recognised by their size), which are decoded first."""
        arr = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x)
        per = int(np.prod(arr.shape[1:])) if arr.ndim >= 2 else arr.size
        if per == int(np.prod(self.diffusion_shape)) != int(np.prod(self.sample_shape)):
            arr = self.decode(arr)
        return super().to_display(arr)

    def _convert_networks(self, device, dtype) -> None:
        self.vae = self.converted(self.vae, device, dtype)


def guidance_scale(value) -> float:
    """A classifier-free guidance scale s ≥ 1 (1: the conditional model itself, no guidance), checked."""
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"guidance_scale must be a number ≥ 1, got {value!r}") from None
    if not s >= 1 or s == float("inf"):
        raise ValueError(f"guidance_scale must be a finite number ≥ 1 (1: no guidance), got {value!r}")
    return s

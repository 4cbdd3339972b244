"""``PipelineModel``: the part every diffusers adapter shares, the DDIM maps over its ε-model (DESIGN.md §6).

Maps (``generator(map, steps, t, **condition)``), all from z of shape ``latent_shape`` (= ``diffusion_shape``):

- ``sampler``: deterministic DDIM (eta = 0) over the pipeline's own noise schedule with the pinned conventions
  (``clip_sample=False``, ``timestep_spacing="trailing"``, ``set_alpha_to_one=True``), x_T = z → x_0, then for
  latent models the VAE decoder, image = decode(x_0 / scaling_factor), never clamped;
- ``from_t``: the same sampler's trailing part from timestep t (then the decoder);
- ``denoiser``: the one-step prediction x̂_0(x_t, t) (then the decoder);
- ``decoder`` (latent models only): the VAE decoder alone, x_0 → image.

A subclass sets the protocol attributes and implements ``eps_model(**condition)``, ``decode_module()`` and
``_convert_networks``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from explorer.models.base import GenerativeModel
from explorer.models.ddim import DDIMChain, DenoiserMap
from explorer.models.pipelines.networks import Decoded


class PipelineModel(GenerativeModel):
    """A diffusers pipeline as a model of the library (subclasses: one per pipeline family)."""

    #: the pipeline folder (``explorer.models.pipelines.folder.PipelineFolder``) it was opened from
    folder = None

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
                  **condition) -> nn.Module:
        """G for ``map`` (see the module docstring), owning the networks of this object's device and dtype."""
        self.check_condition(condition)
        self.check_map(map)
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

"""The networks of a pipeline as the project's maps need them: ε-models ε_θ(x_t, t), the VAE decoder, and the fixes
that let forward-mode AD (``torch.func.jvp``) through diffusers' modules.

Every ε-model here is an ``nn.Module`` ``forward(x, t) → ε`` on (B, *diffusion_shape), with ``t`` an integer
timestep (the DDIM maps) or a (B,) tensor of possibly fractional timesteps (the probability-flow ODE). The
network's raw output is turned into ε by ``Prediction``:

    epsilon:       ε = output
    v_prediction:  ε = sqrt(ᾱ_t) · v + sqrt(1 − ᾱ_t) · x_t       (v = sqrt(ᾱ_t) ε − sqrt(1 − ᾱ_t) x_0)

after dropping learned-variance channels (``out_channels == 2 · in_channels``: the first half is the prediction).
Classifier-free guidance, when the scale s is above 1, is ε̃ = ε(x, ∅) + s · (ε(x, c) − ε(x, ∅)), computed as the
pipelines do it: one network pass over the batch doubled along dim 0 (the two halves are whole copies of the
batch, which ``explorer.descriptors.complexity`` relies on).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

PREDICTION_TYPES = ("epsilon", "v_prediction")


# ---------------------------------------------------------------------------- forward-mode AD
def _contiguous_input(_module, args):
    return (args[0].contiguous(), *args[1:])


def prepare_for_forward_ad(*networks: nn.Module) -> None:
    """Make ``networks`` (the adapter's own, never a caller's) differentiable by ``torch.func.jvp``:

    - every diffusers ``Attention`` gets the classic ``AttnProcessor`` (explicit softmax(QKᵀ)V): the CPU flash
      kernel behind ``F.scaled_dot_product_attention`` has no forward AD, and ``sdpa_kernel(MATH)`` would change
      the whole process; ``UNet2DModel`` has no ``set_attn_processor``, so each module is set by itself;
    - every ``nn.GroupNorm`` gets its input made contiguous by a forward pre-hook (its forward-AD formula views a
      tangent that ``vmap`` over diffusers' reshapes leaves non-contiguous).

    Both survive ``copy.deepcopy`` (the converted views). The results equal the default processors' to rounding.
    """
    from diffusers.models.attention_processor import Attention, AttnProcessor

    for net in networks:
        for m in net.modules():
            if isinstance(m, Attention):
                m.set_processor(AttnProcessor())
            elif isinstance(m, nn.GroupNorm) and not getattr(m, "_explorer_contiguous", False):
                m.register_forward_pre_hook(_contiguous_input)
                m._explorer_contiguous = True


# ---------------------------------------------------------------------------- output → ε
class Prediction(nn.Module):
    """The network output → ε, for ``prediction_type`` epsilon or v_prediction; ``channels`` keeps the first C
    output channels (the learned variance dropped)."""

    def __init__(self, prediction_type: str, alphas_cumprod: torch.Tensor, channels: int, out_channels: int):
        super().__init__()
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type {prediction_type!r} is not supported; supported: "
                             f"{', '.join(PREDICTION_TYPES)}")
        if out_channels not in (channels, 2 * channels):
            raise ValueError(f"the network predicts {out_channels} channels for {channels} input channels; expected "
                             f"{channels}, or {2 * channels} with a learned variance")
        self.prediction_type, self.channels, self.out_channels = prediction_type, int(channels), int(out_channels)
        # log ᾱ on the grid t = −1, 0, …, T−1 (ᾱ_{−1} = 1), interpolated for fractional t (the ODE); float64, kept
        # out of the module's buffers so that a view's dtype never rounds it
        self._log_a = torch.cat([torch.zeros(1, dtype=torch.float64), alphas_cumprod.double().log()])

    def alpha(self, t) -> torch.Tensor | float:
        """ᾱ_t as a float (integer t) or a (B,) float64 tensor (tensor t, interpolated in log ᾱ)."""
        if not torch.is_tensor(t):
            grid = np.arange(-1, len(self._log_a) - 1)
            return math.exp(float(np.interp(float(t), grid, self._log_a.numpy())))
        log_a = self._log_a.to(t.device)
        pos = (t.detach().double().reshape(-1) + 1).clamp(0, len(log_a) - 1)
        i0 = pos.floor().clamp(max=len(log_a) - 2).long()
        w = pos - i0
        return (log_a[i0] * (1 - w) + log_a[i0 + 1] * w).exp()

    def forward(self, out: torch.Tensor, x: torch.Tensor, t) -> torch.Tensor:
        if self.out_channels != self.channels:
            out = out[:, :self.channels]
        if self.prediction_type == "epsilon":
            return out
        a = self.alpha(t)
        if torch.is_tensor(a):
            shape = (-1,) + (1,) * (x.ndim - 1)
            a = a.to(device=x.device, dtype=x.dtype).reshape(shape)
            return a.sqrt() * out + (1 - a).sqrt() * x
        return math.sqrt(a) * out + math.sqrt(1 - a) * x


def timestep_batch(t, x: torch.Tensor) -> torch.Tensor:
    """``t`` as a (B,) tensor on x's device (an integer stays an integer)."""
    tt = torch.as_tensor(t, device=x.device)
    if not tt.is_floating_point():
        tt = tt.long()
    return tt.reshape(-1).expand(x.shape[0]) if tt.numel() == 1 else tt.reshape(-1)


def guided(out: torch.Tensor, scale: float) -> torch.Tensor:
    """ε(∅) + s · (ε(c) − ε(∅)) from a doubled batch whose first half is conditional, second unconditional."""
    cond, uncond = out.chunk(2, dim=0)
    return uncond + scale * (cond - uncond)


# ---------------------------------------------------------------------------- ε-models
class UNetEps(nn.Module):
    """ε of an unconditional ``UNet2DModel`` (DDPMPipeline, DDIMPipeline)."""

    def __init__(self, unet: nn.Module, prediction: Prediction):
        super().__init__()
        self.unet, self.prediction = unet, prediction

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        tt = t if not torch.is_tensor(t) else timestep_batch(t, x)
        return self.prediction(self.unet(x, tt).sample, x, t)


class DiTEps(nn.Module):
    """ε of a class-conditional ``DiTTransformer2DModel`` for one class (``null_class``: unconditional), with
    classifier-free guidance against ``null_class`` when ``scale`` > 1."""

    def __init__(self, transformer: nn.Module, prediction: Prediction, class_label: int, null_class: int,
                 scale: float = 1.0):
        super().__init__()
        self.transformer, self.prediction = transformer, prediction
        self.class_label, self.null_class, self.scale = int(class_label), int(null_class), float(scale)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        n, tt = x.shape[0], timestep_batch(t, x)
        labels = torch.full((n,), self.class_label, dtype=torch.long, device=x.device)
        xin = x
        if self.scale > 1:
            xin, tt = torch.cat([x, x]), torch.cat([tt, tt])
            labels = torch.cat([labels, torch.full((n,), self.null_class, dtype=torch.long, device=x.device)])
        out = self.transformer(xin, timestep=tt, class_labels=labels).sample
        out = out[:, :self.prediction.channels]
        if self.scale > 1:
            out = guided(out, self.scale)
        return self.prediction(out, x, t)


class TextUNetEps(nn.Module):
    """ε of a ``UNet2DConditionModel`` for fixed prompt embeddings (buffers, computed once), with
    classifier-free guidance against the negative prompt's embeddings when ``scale`` > 1."""

    def __init__(self, unet: nn.Module, prediction: Prediction, cond: torch.Tensor, uncond: torch.Tensor,
                 scale: float = 1.0):
        super().__init__()
        self.unet, self.prediction, self.scale = unet, prediction, float(scale)
        self.register_buffer("cond", cond.detach(), persistent=False)
        self.register_buffer("uncond", uncond.detach(), persistent=False)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        n = x.shape[0]
        xin, emb, tt = x, self.cond.expand(n, -1, -1), t
        if self.scale > 1:
            xin = torch.cat([x, x])
            emb = torch.cat([emb, self.uncond.expand(n, -1, -1)])
            tt = t if not torch.is_tensor(t) else torch.cat([timestep_batch(t, x)] * 2)
        out = self.unet(xin, tt, encoder_hidden_states=emb).sample
        out = out[:, :self.prediction.channels]
        if self.scale > 1:
            out = guided(out, self.scale)
        return self.prediction(out, x, t)


# ---------------------------------------------------------------------------- the decoder and latent maps
class VAEDecode(nn.Module):
    """The VAE decoder as a map from the diffusion's latent x_0 to the image: decode(x_0 / scaling_factor), in the
    decoder's own range (about [−1, 1]), never clamped (a clamp zeroes Jacobian columns)."""

    def __init__(self, vae: nn.Module, scaling_factor: float):
        super().__init__()
        self.vae, self.scaling_factor = vae, float(scaling_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(x / self.scaling_factor).sample


class VAEEncode(nn.Module):
    """Images in [−1, 1] → the diffusion's latent x_0: the VAE encoder's posterior mean × scaling_factor (the
    deterministic part of what the pipelines' training encodes; no sampling)."""

    def __init__(self, vae: nn.Module, scaling_factor: float):
        super().__init__()
        self.vae, self.scaling_factor = vae, float(scaling_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(x).latent_dist.mean * self.scaling_factor


class Decoded(nn.Module):
    """``decoder(inner(x))``: a DDIM map in latent space followed by the VAE decoder. ``probe`` runs what the
    memory budget measures: one step of the inner map (its own probe) and the decoder."""

    def __init__(self, inner: nn.Module, decoder: VAEDecode):
        super().__init__()
        self.inner, self.decoder = inner, decoder

    @property
    def steps(self) -> int:
        return getattr(self.inner, "steps", 1)

    def probe(self, x: torch.Tensor) -> torch.Tensor:
        getattr(self.inner, "probe", self.inner)(x)
        return self.decoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.inner(x))

"""``StableDiffusionPipeline`` (1.x and compatible): a text-conditional ``UNet2DConditionModel`` on the latent of an
``AutoencoderKL``, prompts embedded by ``CLIPTextModel`` and its tokenizer.

Conditioning: ``prompt`` (default "", the unconditional model), ``negative_prompt`` (default "", the unconditional
embedding of classifier-free guidance) and ``guidance_scale`` (default 1: ε(x, c) itself; above 1,
ε̃ = ε(x, ∅) + s · (ε(x, c) − ε(x, ∅)) as the pipeline computes it; the pipeline's own default is 7.5). Prompts are
embedded as ``StableDiffusionPipeline.encode_prompt`` does (padded to the tokenizer's ``model_max_length``,
truncated, the text encoder's last hidden state; no clip skip) once per generator, and cached per view and prompt.
The safety checker and feature extractor of a saved pipeline are not loaded (they filter images, not the maps).
"""

from __future__ import annotations

import threading

import torch

from explorer.models.base import Capabilities
from explorer.models.pipelines.adapter import LatentPipelineModel
from explorer.models.pipelines.adapter import guidance_scale as check_scale
from explorer.models.pipelines.folder import PipelineError
from explorer.models.pipelines.load import DEFAULT_STEPS, load_component
from explorer.models.pipelines.networks import Prediction, TextUNetEps, prepare_for_forward_ad

MAPS = ("sampler", "from_t", "denoiser", "decoder")
CONDITIONING = ("prompt", "negative_prompt", "guidance_scale")
#: Prompt embeddings kept per view (prompt, negative prompt) pairs; the oldest goes first.
MAX_CACHED_PROMPTS = 32


class StableDiffusionModel(LatentPipelineModel):
    def __init__(self, folder, schedule, prediction: str, meta: dict):
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        self.unet = load_component(folder, "unet", UNet2DConditionModel)
        cfg = self.unet.config
        for key, why in (("time_cond_proj_dim", "a distilled (LCM) UNet"), ("class_embed_type", "class embeddings"),
                         ("addition_embed_type", "added text/time embeddings (SDXL-style)"),
                         ("encoder_hid_dim_type", "a projected text encoder")):
            if cfg.get(key) is not None:
                raise PipelineError(f"the UNet of {folder.path} has {key}={cfg.get(key)!r} ({why}), which "
                                    "StableDiffusionPipeline 1.x does not use; only plain text-conditional UNets are "
                                    "supported")
        vae = load_component(folder, "vae", AutoencoderKL)
        self.text_encoder = load_component(folder, "text_encoder", CLIPTextModel)
        self.tokenizer = load_component(folder, "tokenizer", CLIPTokenizer)
        if self.text_encoder.config.hidden_size != cfg.cross_attention_dim:
            raise PipelineError(f"the text encoder of {folder.path} embeds to {self.text_encoder.config.hidden_size} "
                                f"values but the UNet attends to {cfg.cross_attention_dim}; the components do not fit")
        size = cfg.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        prepare_for_forward_ad(self.unet)
        self._init_vae(vae, (cfg.in_channels, h, w))
        self.schedule, self.prediction_type = schedule, prediction
        self._prediction = Prediction(prediction, schedule.alphas_cumprod, cfg.in_channels, cfg.out_channels)
        record = meta.get("record") or {}
        self.default_steps = int(record.get("default_steps", DEFAULT_STEPS))
        self.training_set = None
        self.meta = {**meta, "default_steps": self.default_steps,
                     "max_prompt_tokens": int(self.tokenizer.model_max_length)}
        self._init_likelihood(record)
        self.capabilities = Capabilities(maps=MAPS, likelihoods=("ode",), piecewise_linear=False, training_set=False,
                                         conditioning=CONDITIONING, step_jacobian=False, diffusion=True)
        self._embeddings: dict = {}
        self._embeddings_lock = threading.Lock()

    @torch.no_grad()
    def _embed(self, text: str, length: int | None = None) -> torch.Tensor:
        max_length = length or self.tokenizer.model_max_length
        tokens = self.tokenizer([text], padding="max_length", max_length=max_length, truncation=True,
                                return_tensors="pt")
        mask = None
        if getattr(self.text_encoder.config, "use_attention_mask", False):
            mask = tokens.attention_mask.to(self.device)
        out = self.text_encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0]
        return out.to(dtype=self.dtype).detach()

    def prompt_embeddings(self, prompt: str = "", negative_prompt: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt, negative prompt) embeddings (1, L, C) on this view's device and dtype, computed once each."""
        for name, value in (("prompt", prompt), ("negative_prompt", negative_prompt)):
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {type(value).__name__}")
        key = (prompt, negative_prompt)
        with self._embeddings_lock:
            if key not in self._embeddings:
                cond = self._embed(prompt)
                uncond = self._embed(negative_prompt, cond.shape[1])
                if len(self._embeddings) >= MAX_CACHED_PROMPTS:
                    self._embeddings.pop(next(iter(self._embeddings)))
                self._embeddings[key] = (cond, uncond)
            return self._embeddings[key]

    def eps_model(self, prompt: str = "", negative_prompt: str = "", guidance_scale: float = 1.0, **condition):
        """ε for ``prompt``, guided against ``negative_prompt``'s embedding when guidance_scale > 1."""
        self.check_condition(condition)
        scale = check_scale(guidance_scale)
        cond, uncond = self.prompt_embeddings(prompt, negative_prompt)
        return TextUNetEps(self.unet, self._prediction, cond, uncond, scale)

    def _convert_networks(self, device, dtype) -> None:
        super()._convert_networks(device, dtype)
        self.unet = self.converted(self.unet, device, dtype)
        self.text_encoder = self.converted(self.text_encoder, device, dtype)
        self._embeddings, self._embeddings_lock = {}, threading.Lock()

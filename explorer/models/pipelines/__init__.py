"""Diffusers pipelines as models of the library: ``load_model(FOLDER)`` and ``load_model("org/name")``.

- ``folder``: where a pipeline is (a folder, the local Hugging Face cache) and every refusal, from files alone;
- ``load``: the noise schedule with the pinned DDIM conventions, components from safetensors, the adapter;
- ``networks``: ε-models (ε / v-prediction, learned variance, guidance), the VAE decoder, forward-AD fixes;
- ``adapter``: the DDIM maps every pipeline shares; ``ddpm``, ``dit``, ``sd``: one adapter per pipeline family.

Supported: DDPMPipeline and DDIMPipeline (UNet2DModel, pixel space), DiTPipeline (class-conditional, latent),
StableDiffusionPipeline 1.x (text-conditional, latent). ``register()`` adds the two model kinds to the registry.
"""

from __future__ import annotations

from explorer.models.pipelines.folder import (
    SUPPORTED_PIPELINES,
    PipelineError,
    cache_snapshot,
    cached_pipelines,
    claims_cache_id,
    claims_folder,
    hf_cache_dir,
    inspect_folder,
)


def _load_folder(spec: str):
    from explorer.models.pipelines.load import load_folder

    return load_folder(spec)


def _load_cache_id(spec: str):
    from explorer.models.pipelines.load import load_cache_id

    return load_cache_id(spec)


def register() -> None:
    """Register the pipeline kinds: folders before ``module`` specs, cache ids last."""
    from explorer.models.registry import ModelKind, register_kind

    register_kind(ModelKind("diffusers-folder", claims_folder, _load_folder,
                            "a diffusers pipeline folder (with model_index.json)"), before="module")
    register_kind(ModelKind("diffusers-cache", claims_cache_id, _load_cache_id,
                            "org/name of a pipeline in the local Hugging Face cache"))


__all__ = ["SUPPORTED_PIPELINES", "PipelineError", "cache_snapshot", "cached_pipelines", "claims_cache_id",
           "claims_folder", "hf_cache_dir", "inspect_folder", "register"]

"""Opening a checked pipeline folder: its noise schedule, its components (safetensors only, never the network), and
the adapter for its class."""

from __future__ import annotations

import json

import torch

from explorer.models.pipelines.folder import PipelineError, PipelineFolder, cache_snapshot, folder_hash, inspect_folder
from explorer.models.pipelines.networks import PREDICTION_TYPES

#: The DDIM conventions of DESIGN.md §6, plus no thresholding (a clip by another name); prediction_type is the
#: ε-model's, since adapters convert v-predictions to ε themselves.
PINNED = {"clip_sample": False, "timestep_spacing": "trailing", "set_alpha_to_one": True, "thresholding": False,
          "prediction_type": "epsilon"}
DEFAULT_STEPS = 50


def noise_schedule(folder: PipelineFolder):
    """(NoiseSchedule, prediction_type, record) from ``scheduler/scheduler_config.json``: the pipeline's own
    β schedule in a DDIMScheduler with the pinned conventions, whatever scheduler class the pipeline ships."""
    from diffusers import DDIMScheduler

    from explorer.models.ddim import NoiseSchedule

    config = folder.config("scheduler", "scheduler_config.json")
    prediction = config.get("prediction_type", "epsilon")
    if prediction not in PREDICTION_TYPES:
        raise PipelineError(f"the scheduler of {folder.path} has prediction_type {prediction!r}; supported: "
                            f"{', '.join(PREDICTION_TYPES)}")
    if config.get("rescale_betas_zero_snr"):
        raise PipelineError(f"the scheduler of {folder.path} rescales betas to zero terminal SNR (ᾱ_T = 0), where "
                            "DDIM's step in ε-form is undefined; use a pipeline trained without it")
    try:
        scheduler = DDIMScheduler.from_config({k: v for k, v in config.items() if not k.startswith("_")}, **PINNED)
    except (ValueError, TypeError, NotImplementedError) as err:
        raise PipelineError(f"the noise schedule of {folder.path} cannot be read ({err}); its scheduler_config.json "
                            "needs num_train_timesteps and a beta schedule DDIMScheduler knows") from None
    record = {"source_class": config.get("_class_name"), "prediction_type": prediction, "sampler": "ddim",
              "eta": 0.0, **{k: v for k, v in PINNED.items() if k != "prediction_type"},
              **{k: config.get(k) for k in ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end")
                 if k in config}}
    return NoiseSchedule(scheduler), prediction, record


def load_component(folder: PipelineFolder, name: str, cls):
    """``cls.from_pretrained(folder, subfolder=name)`` from local safetensors only, in float32, eval mode and no
    gradients; a failure (a truncated or corrupt file, a config that does not fit the weights) is one sentence."""
    variant, _ = folder.weights.get(name, ("", []))
    kwargs = {"use_safetensors": True, "local_files_only": True}
    if name != "tokenizer":
        kwargs.update(torch_dtype=torch.float32, low_cpu_mem_usage=False)
    if variant:
        kwargs["variant"] = variant
    try:
        module = cls.from_pretrained(str(folder.path), subfolder=name, **kwargs)
    except Exception as err:  # safetensors, diffusers and transformers raise many types for a damaged folder
        message = " ".join(str(err).split())[:300]
        raise PipelineError(f"could not load component {name!r} of {folder.path} ({type(err).__name__}: {message}); "
                            "its files may be truncated or corrupt: download or save the pipeline again") from None
    if isinstance(module, torch.nn.Module):
        module = module.eval().requires_grad_(False)
    return module


def explorer_record(folder: PipelineFolder) -> dict:
    """``explorer_record.json`` beside the components (written by the project's own training), or {}."""
    path = folder.path / "explorer_record.json"
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PipelineError(f"{path} is not readable JSON ({err}); remove it or write it again") from None
    return record if isinstance(record, dict) else {}


def open_folder(folder: PipelineFolder):
    """The adapter for a checked folder's class."""
    from explorer.models.pipelines import ddpm, dit, sd

    builders = {"DDPMPipeline": ddpm.PixelDDPM, "DDIMPipeline": ddpm.PixelDDPM, "DiTPipeline": dit.DiTModel,
                "StableDiffusionPipeline": sd.StableDiffusionModel}
    schedule, prediction, scheduler_record = noise_schedule(folder)
    record = explorer_record(folder)
    meta = {"kind": "diffusers", "pipeline": folder.class_name, "spec": folder.spec, "folder": str(folder.path),
            "components": {k: v for k, v in folder.index.items() if not k.startswith("_")},
            "diffusers_version": folder.index.get("_diffusers_version"), "scheduler": scheduler_record,
            "record": record}
    model = builders[folder.class_name](folder, schedule, prediction, meta)
    model.folder = folder
    model.name = folder.spec
    model.weights_hash = folder_hash(folder)
    return model


def load_folder(spec: str):
    """``load_model`` for a pipeline folder."""
    return open_folder(inspect_folder(spec, spec))


def load_cache_id(spec: str):
    """``load_model`` for ``org/name`` in the local Hugging Face cache (read from the environment now)."""
    return open_folder(inspect_folder(cache_snapshot(spec), spec))

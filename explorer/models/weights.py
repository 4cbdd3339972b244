"""Model files: ``NAME.safetensors`` (tensors only, never pickles) beside ``NAME.json`` (the record)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from explorer.models.denoisers import MLPDenoiser
from explorer.models.diffusion import DiffusionModel
from explorer.provenance import stamped


def file_hash(path: Path) -> str:
    """First 16 hex digits of the SHA-256 of a file: the cache key of a model's weights."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def save_model_files(stem: Path, tensors: dict[str, torch.Tensor], record: dict) -> dict:
    """Write ``stem.safetensors`` and ``stem.json``; the record gains ``weights_hash``."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(stem.with_suffix(".safetensors")))
    record = {**stamped(record), "weights_hash": file_hash(stem.with_suffix(".safetensors"))}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def load_model_files(stem: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read the tensors and the JSON record of a model saved by ``save_model_files``."""
    stem = Path(stem)
    st, js = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for f in (st, js):
        if not f.exists():
            raise FileNotFoundError(f"model file {f} is missing; train it with `python -m explorer train`")
    record = json.loads(js.read_text())
    record["weights_hash"] = file_hash(st)
    return load_file(str(st)), record


def load_ddpm(stem: Path, name: str) -> DiffusionModel:
    """A DDPM written by a family's ``train_builtin`` (or ``train toy2d --csv``) from ``stem``.{safetensors,json}.

    The record names the denoiser (``net``), the schedule, the sample shape (``sample_shape``, default
    (net.dim,)) and the sampler's default steps; tensors ``denoiser.*``, ``data`` and optional ``labels``.
    """
    tensors, record = load_model_files(stem)
    denoiser = MLPDenoiser(**record["net"])
    denoiser.load_state_dict({k[len("denoiser."):]: v for k, v in tensors.items() if k.startswith("denoiser.")})
    labels = tensors.get("labels")
    shape = tuple(record.get("sample_shape", [record["net"]["dim"]]))
    return DiffusionModel(name, denoiser, record["schedule"], shape, tensors["data"].numpy(),
                          None if labels is None else labels.numpy(), record, record.get("default_steps", 50))

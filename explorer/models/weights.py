"""Model files: ``NAME.safetensors`` (tensors only, never pickles) beside ``NAME.json`` (the record).

Loading checks everything before a model is built (``check_ddpm``): both files are regular files (a FIFO
would block a read), the record is a JSON object, the tensors parse, and the record and tensors agree (net
config, tensor shapes, data of the sample dimension, finite data and weights, schedule, sample shape,
default steps). A bad file raises one ``UserError`` sentence that names the file and what is wrong.

The model's hash (``model_hash``, kept as ``weights_hash`` in the record and on the model, and part of every
cache key) covers the tensors and the record, every field except ``weights_hash`` itself: editing the record
(``schedule.beta_end``, ``log_p_ref``, ...) makes a new model whose cached results are never reused.

Writing (``save_model_files``) is atomic per file (temporary file + ``os.replace``, the record last), never
overwrites a file under the shipped ``assets/`` unless ``replace_builtin`` (maintainers retraining a built-in
model) and never overwrites an existing model unless ``overwrite``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from explorer import files
from explorer.errors import UserError
from explorer.models.denoisers import MLPDenoiser
from explorer.models.diffusion import DiffusionModel
from explorer.provenance import stamped

#: Record fields that do not define the model (left out of its hash).
VOLATILE_FIELDS = ("weights_hash",)
MAX_RECORD_BYTES = 16 * 2**20
#: Upper bounds on a net config, checked before anything is allocated.
NET_LIMITS = {"dim": 10**6, "hidden": 2**16, "depth": 256, "time_dim": 2**14, "skip_timesteps": 10**5}


def model_hash(weights: bytes, record: dict) -> str:
    """First 16 hex digits of the SHA-256 of the safetensors bytes and the record (less ``VOLATILE_FIELDS``),
    the model's part of every cache key."""
    defining = {k: v for k, v in record.items() if k not in VOLATILE_FIELDS}
    h = hashlib.sha256(weights)
    h.update(b"\0record\0")
    h.update(json.dumps(defining, sort_keys=True, separators=(",", ":"), default=str).encode())
    return h.hexdigest()[:16]


def model_paths(stem: Path) -> tuple[Path, Path]:
    stem = Path(stem)
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def check_target(stem: Path, overwrite: bool = False, replace_builtin: bool = False) -> None:
    """Refuse (UserError) to write the model ``stem`` over a shipped file, without ``overwrite`` over an existing
    one, or into a folder that cannot be made or written. Call it before training, so that no work is thrown
    away; ``save_model_files`` calls it too."""
    st, js = model_paths(stem)
    if files.is_within(Path(stem).parent, files.ASSETS):
        if not replace_builtin:
            raise UserError(f"{st} would be written under the shipped assets/ folder, which training never "
                            f"overwrites; write to your own folder (the default, {files.user_models_dir()}) or, "
                            "as a maintainer retraining a built-in model, pass --replace-builtin")
        return
    existing = [p for p in (st, js) if os.path.lexists(p)]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists; pass --overwrite to replace it, or choose another --out")
    folder = Path(stem).parent.absolute()
    while not os.path.lexists(folder) and folder != folder.parent:  # the nearest part that exists
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write the model to {Path(stem).parent}: {folder} is "
                        f"{'not a folder' if not folder.is_dir() else 'not writable'}; choose another --out")


def save_model_files(stem: Path, tensors: dict[str, torch.Tensor], record: dict, *, overwrite: bool = False,
                     replace_builtin: bool = False) -> dict:
    """Write ``stem.safetensors`` and ``stem.json`` atomically (see ``check_target`` for what is refused);
    the record gains ``weights_hash`` (``model_hash``). Returns the record."""
    check_target(stem, overwrite, replace_builtin)
    st, js = model_paths(stem)
    weights = save_safetensors({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    record = files.jsonable(stamped(record))  # hashed as it will be read back
    record["weights_hash"] = model_hash(weights, record)
    text = files.dumps(record, indent=2, sort_keys=True) + "\n"
    files.atomic_write(st, weights)
    files.atomic_write(js, text.encode())
    return record


def _read_regular(path: Path, max_bytes: int | None = None) -> bytes:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"model file {path} is missing; train it with `python -m explorer train`") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"model file {path} is not a regular file (a folder, FIFO or device)")
    if max_bytes is not None and info.st_size > max_bytes:
        raise UserError(f"model record {path} is {info.st_size} bytes; a record is at most {max_bytes}")
    return Path(path).read_bytes()


def load_model_files(stem: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read the tensors and the JSON record of a model saved by ``save_model_files``; the record's
    ``weights_hash`` is recomputed from the files (``model_hash``)."""
    st, js = model_paths(stem)
    raw_record = _read_regular(js, MAX_RECORD_BYTES)
    weights = _read_regular(st)
    try:
        record = json.loads(raw_record.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"model record {js} is not valid JSON ({err})") from None
    if not isinstance(record, dict):
        found = {list: "an array", type(None): "null", str: "a string", bool: "a boolean"}.get(type(record), "a number")
        raise UserError(f"model record {js} must be a JSON object; found {found}")
    try:
        tensors = load_safetensors(weights)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise UserError(f"model file {st} is not a readable safetensors file ({err})") from None
    record["weights_hash"] = model_hash(weights, record)
    return tensors, record


def _int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UserError(f"{name} must be an integer in [{lo}, {hi}]; found {value!r}")
    return value


def _finite_tensor(t: torch.Tensor, name: str) -> None:
    if not t.is_floating_point():
        raise UserError(f"tensor {name} must be floating point; found {t.dtype}")
    if not bool(torch.isfinite(t).all()):
        raise UserError(f"tensor {name} holds NaN or infinite values")


def check_ddpm(record: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Raise a one-sentence UserError unless ``record`` and ``tensors`` make a consistent DDPM (see module doc)."""
    net = record.get("net")
    if not isinstance(net, dict):
        raise UserError("the record has no 'net' object (the denoiser's config: dim, hidden, depth, time_dim)")
    allowed = set(inspect.signature(MLPDenoiser.__init__).parameters) - {"self"}
    unknown = sorted(set(net) - allowed)
    if unknown:
        raise UserError(f"net has unknown keys {unknown}; valid: {sorted(allowed)}")
    for key in ("dim", "hidden", "depth", "time_dim"):
        if key not in net:
            raise UserError(f"net needs {key!r}")
        _int(net[key], f"net.{key}", 1, NET_LIMITS[key])
    if net["time_dim"] % 2:
        raise UserError(f"net.time_dim must be even; found {net['time_dim']}")
    _int(net.get("skip_timesteps", 0), "net.skip_timesteps", 0, NET_LIMITS["skip_timesteps"])
    if not isinstance(net.get("time_every_layer", False), bool):
        raise UserError(f"net.time_every_layer must be true or false; found {net['time_every_layer']!r}")

    schedule = record.get("schedule")
    if not isinstance(schedule, dict):
        raise UserError("the record has no 'schedule' object (the noise schedule)")
    T = _int(schedule.get("num_train_timesteps"), "schedule.num_train_timesteps", 1, 100_000)
    for key in ("beta_start", "beta_end"):
        if key in schedule:
            b = schedule[key]
            if isinstance(b, bool) or not isinstance(b, int | float) or not (math.isfinite(b) and 0 < b < 1):
                raise UserError(f"schedule.{key} must be a number in (0, 1); found {b!r}")
    shape = record.get("sample_shape", [net["dim"]])
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise UserError(f"sample_shape must be a list of positive integers; found {shape!r}")
    if math.prod(shape) != net["dim"]:
        raise UserError(f"sample_shape {shape} holds {math.prod(shape)} values but net.dim is {net['dim']}")
    image = record.get("image_shape")
    if image is not None and (not isinstance(image, list) or len(image) != 2
                              or not all(isinstance(s, int) and s > 0 for s in image)
                              or math.prod(image) != net["dim"]):
        raise UserError(f"image_shape must be [height, width] with height·width = {net['dim']}; found {image!r}")
    _int(record.get("default_steps", 50), "default_steps", 1, T)
    likelihood = record.get("likelihood")
    if likelihood is not None and (not isinstance(likelihood, dict)
                                   or likelihood.get("method") not in ("discrete", "ode")):
        raise UserError(f"likelihood must be an object with method 'discrete' or 'ode'; found {likelihood!r}")
    ref = record.get("log_p_ref")
    if ref is not None and (isinstance(ref, bool) or not isinstance(ref, int | float) or not math.isfinite(ref)):
        raise UserError(f"log_p_ref must be a finite number or absent; found {ref!r}")

    data = tensors.get("data")
    if data is None:
        raise UserError("the tensors have no 'data' (the training set)")
    if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] != net["dim"]:
        raise UserError(f"tensor data must be (N, {net['dim']}) for this {net['dim']}-D model; found "
                        f"{tuple(data.shape)}")
    _finite_tensor(data, "data")
    labels = tensors.get("labels")
    if labels is not None and (labels.ndim != 1 or len(labels) != len(data) or labels.is_floating_point()):
        raise UserError(f"tensor labels must be {len(data)} integers (one per data row); found {labels.dtype} "
                        f"{tuple(labels.shape)}")

    with torch.device("meta"):  # the expected shapes, without allocating anything
        expected = {k: tuple(v.shape) for k, v in MLPDenoiser(**net).state_dict().items()}
    found = {k[len("denoiser."):]: v for k, v in tensors.items() if k.startswith("denoiser.")}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        raise UserError(f"the denoiser tensors do not match net {net}: "
                        + "; ".join(s for s in (f"missing {missing[:3]}" if missing else "",
                                                f"unexpected {extra[:3]}" if extra else "") if s))
    for k, shape_k in expected.items():
        if tuple(found[k].shape) != shape_k:
            raise UserError(f"tensor denoiser.{k} has shape {tuple(found[k].shape)}; net {net} needs {shape_k}")
        _finite_tensor(found[k], f"denoiser.{k}")


def load_ddpm(stem: Path, name: str) -> DiffusionModel:
    """A DDPM written by a family's ``train_builtin`` (or ``train toy2d --csv``) from ``stem``.{safetensors,json}.

    The record names the denoiser (``net``), the schedule, the sample shape (``sample_shape``, default
    (net.dim,)) and the sampler's default steps; tensors ``denoiser.*``, ``data`` and optional ``labels``.
    Everything is checked (``check_ddpm``) before the model is built.
    """
    tensors, record = load_model_files(stem)
    where = model_paths(stem)[0]
    try:
        check_ddpm(record, tensors)
    except UserError as err:
        raise UserError(f"model {where}: {err}") from None
    try:
        denoiser = MLPDenoiser(**record["net"])
        denoiser.load_state_dict({k[len("denoiser."):]: v for k, v in tensors.items() if k.startswith("denoiser.")})
        labels = tensors.get("labels")
        shape = tuple(record.get("sample_shape", [record["net"]["dim"]]))
        model = DiffusionModel(name, denoiser, record["schedule"], shape, tensors["data"].numpy(),
                               None if labels is None else labels.numpy(), record, record.get("default_steps", 50))
    except (RuntimeError, ValueError, TypeError, KeyError) as err:  # e.g. a schedule diffusers refuses
        raise UserError(f"model {where}: cannot build it from its record ({' '.join(str(err).split())})") from None
    if not np.isfinite(model.schedule.alphas_cumprod.numpy()).all():
        raise UserError(f"model {where}: its schedule gives non-finite ᾱ_t")
    return model

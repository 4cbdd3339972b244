"""The one place that decides where heavy work runs (CUDA when present, else CPU, with the reason), in which dtype,
and how many latents go through a network at once (a memory budget, not a fixed count).

Every computation of the library (sampling, descriptors, likelihoods, density evaluations of the geodesics)
runs on ``compute_view(model)`` = ``model.at(compute_device(), dtype)`` and returns CPU numpy. Cache keys hold
the dtype, never the device, so a CPU result serves a GPU session and back.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass

import torch
from torch import nn

#: Forward-mode AD levels in torch are process-wide: two threads inside ``torch.func.jvp`` at once corrupt each
#: other ("Trying to access a forward AD level with an invalid index"). Every forward-mode call of the library holds
#: this lock (per chunk, so a short call from another thread waits at most one chunk); the app's heavy work also
#: goes through its one compute worker (explorer.jobs).
FORWARD_AD_LOCK = threading.RLock()


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    reason: str

    def __str__(self) -> str:
        return f"{self.device} ({self.reason})"


def choose_device(prefer: str | None = None) -> DeviceChoice:
    """CUDA if available (or ``prefer``/``EXPLORER_DEVICE`` says so), else CPU; says why."""
    prefer = prefer or os.environ.get("EXPLORER_DEVICE")
    if prefer:
        if prefer.startswith("cuda") and not torch.cuda.is_available():
            return DeviceChoice(torch.device("cpu"), f"{prefer} requested but CUDA is not available")
        try:
            return DeviceChoice(torch.device(prefer), "requested (EXPLORER_DEVICE)")
        except RuntimeError:
            return DeviceChoice(torch.device("cpu"), f"EXPLORER_DEVICE={prefer!r} is not a device; using the CPU")
    if torch.cuda.is_available():
        return DeviceChoice(torch.device("cuda", 0), f"CUDA: {torch.cuda.get_device_name(0)}")
    return DeviceChoice(torch.device("cpu"), "no CUDA device found")


@functools.lru_cache(maxsize=1)
def _cached_choice(env: str | None) -> DeviceChoice:
    return choose_device(env)


def compute_device() -> torch.device:
    """The device heavy work runs on (``choose_device``, decided once per value of ``EXPLORER_DEVICE``)."""
    return _cached_choice(os.environ.get("EXPLORER_DEVICE")).device


def device_report() -> DeviceChoice:
    """What ``compute_device`` uses and why (for the sidebar and the CLI records)."""
    return _cached_choice(os.environ.get("EXPLORER_DEVICE"))


def default_dtype(model) -> torch.dtype:
    """float32, unless the model asks for another (``model.preferred_dtype``: bf16/fp16 for a large pipeline)."""
    return getattr(model, "preferred_dtype", None) or torch.float32


def compute_view(model, dtype: torch.dtype | None = None):
    """``model`` on the compute device in ``dtype`` (default ``default_dtype(model)``): a cached view."""
    return model.at(compute_device(), dtype or default_dtype(model))


#: Default sketch sizes P for latents too large for a full Jacobian: each direction costs about one to two sampling
#: passes (bench/RESULTS.md), so the CPU gets fewer.
SKETCH_DIRECTIONS = {"cuda": 16, "cpu": 8}


def default_sketch_size(device: torch.device | None = None) -> int:
    """P for a sketched Jacobian on ``device`` (default: the compute device): 16 on CUDA, 8 on the CPU."""
    device = compute_device() if device is None else torch.device(device)
    return SKETCH_DIRECTIONS.get(device.type, SKETCH_DIRECTIONS["cpu"])


# ---------------------------------------------------------------------------- memory budget
def memory_budget(device: torch.device) -> int:
    """Bytes one chunk of work may use: ``EXPLORER_MEMORY_BUDGET`` (bytes; suffixes K, M, G) when set, else a
    quarter of the free GPU memory on CUDA and 1 GiB on the CPU."""
    env = os.environ.get("EXPLORER_MEMORY_BUDGET")
    if env:
        units = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30}
        env = env.strip().upper().rstrip("B")
        factor = units.get(env[-1:], 1)
        return int(float(env[:-1] if env[-1:] in units else env) * factor)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 4)
    return 2 ** 30


_ACTIVATION_BYTES: dict[tuple, int] = {}


def activation_bytes(module: nn.Module, example: torch.Tensor) -> int:
    """Bytes of the largest tensor any submodule of ``module`` produces on one input ``example`` (1, …): the scale
    of what a batch row keeps alive at a time. Measured once per network, input shape and dtype by forward hooks
    (no gradients) on ``module.probe`` when the module has one (an unrolled sampler probes one step), else on
    ``module`` itself."""
    params = [p for p in module.parameters()][:1]
    key = (type(module).__name__, id(params[0]) if params else id(module), tuple(example.shape), example.dtype)
    if key in _ACTIVATION_BYTES:
        return _ACTIVATION_BYTES[key]
    run = getattr(module, "probe", module)
    largest = [example[0].numel() * example.element_size()]

    def hook(_m, _inp, out):
        if torch.is_tensor(out):
            largest[0] = max(largest[0], out[0].numel() * out.element_size() if out.ndim else 0)

    handles = [m.register_forward_hook(hook) for m in module.modules() if m is not module]
    try:
        with torch.no_grad():
            run(example)
    finally:
        for h in handles:
            h.remove()
    _ACTIVATION_BYTES[key] = int(largest[0])
    return int(largest[0])


#: Live tensors per row relative to the largest activation (residual, normalisation, the op's own output).
_LIVE_FACTOR = 6
#: Rows per chunk at most, so that progress keeps ticking on fast models.
MAX_ROWS = 65536


#: A job over many latents reports progress (and can be stopped) at least this many times, in chunks of at least
#: ``MIN_PROGRESS_ROWS`` latents (smaller ones would cost more in per-chunk overhead than they give in feedback).
PROGRESS_PARTS, MIN_PROGRESS_ROWS = 8, 1024


def progress_chunk(chunk_size: int, n: int) -> int:
    """``chunk_size`` capped so that n rows take about ``PROGRESS_PARTS`` chunks (never fewer than
    ``MIN_PROGRESS_ROWS`` rows each): a 90 × 90 plane of a 2-D toy fits the memory budget in one chunk, and its
    progress would jump from 0 to 100 % with no Stop in between."""
    return int(max(1, min(int(chunk_size), max(MIN_PROGRESS_ROWS, -(-int(n) // PROGRESS_PARTS)))))


def rows_per_chunk(module: nn.Module, example: torch.Tensor, copies: int, budget: int | None = None) -> int:
    """Latents per chunk so that ``copies`` copies of each (1 + P tangents for a JVP sketch, 2P + 1 vertices for δ)
    fit in the memory budget: budget / (copies · live factor · largest activation), at least 1, and at most
    ``MAX_ROWS // copies``."""
    budget = memory_budget(example.device) if budget is None else int(budget)
    per_row = max(1, copies) * _LIVE_FACTOR * activation_bytes(module, example)
    return int(max(1, min(budget // per_row, MAX_ROWS // max(1, copies))))

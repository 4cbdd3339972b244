"""DDPM training shared by the model families: the ε-prediction loss on flat data, Adam, EMA weights, and the
quality gate every family applies before a model is written (``apply_gate``)."""

from __future__ import annotations

import math

import numpy as np
import torch

from explorer.errors import UserError
from explorer.models.ddim import SCHEDULER_CONVENTIONS, make_scheduler
from explorer.models.denoisers import MLPDenoiser
from explorer.models.diffusion import DiffusionModel

DEFAULT_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_schedule": "linear",
    "beta_start": 1e-4,
    "beta_end": 0.02,
}
#: Fewer distinct training points than this are refused before training (a DDPM needs a distribution).
MIN_DISTINCT_POINTS = 10


def check_training_setup(data: np.ndarray, dim: int, iterations, batch_size, lr, ema) -> np.ndarray:
    """``data`` as float32 (N, dim) after checking it and the optimiser settings; one UserError otherwise."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != dim or not np.isfinite(data).all():
        raise UserError(f"data must be a finite (N, {dim}) array, got shape {data.shape}")
    n_distinct = len(np.unique(data, axis=0))
    if n_distinct < MIN_DISTINCT_POINTS:
        raise UserError(f"the training data hold {n_distinct} distinct point(s) (of {len(data)}); a DDPM needs at "
                        f"least {MIN_DISTINCT_POINTS} distinct points to learn a distribution from")
    for name, value, lo in (("iterations", iterations, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
            raise UserError(f"{name} must be a positive integer; got {value!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise UserError(f"lr must be a positive finite number; got {lr!r}")
    if not (math.isfinite(ema) and 0 <= ema < 1):
        raise UserError(f"ema must be in [0, 1); got {ema!r}")
    return data


def train_ddpm(data: np.ndarray, labels: np.ndarray | None = None, *, name: str, net: dict, iterations: int,
               batch_size: int, lr: float, seed: int = 0, ema: float = 0.999, schedule: dict | None = None,
               default_steps: int = 50, progress=None) -> DiffusionModel:
    """Train ε_θ by the DDPM loss E‖ε − ε_θ(sqrt(ᾱ_t) x_0 + sqrt(1−ᾱ_t) ε, t)‖², reproducibly from ``seed``.

    Adam with a cosine learning-rate decay; t uniform in [0, T); the returned weights are an
    exponential moving average (decay ``ema``; 0 turns it off). ``progress(i, total, loss)`` is called
    every 500 iterations. The data (at least MIN_DISTINCT_POINTS distinct finite points) and the settings are
    checked before anything is trained.
    """
    schedule = {**DEFAULT_SCHEDULE, **(schedule or {})}
    data = check_training_setup(data, net["dim"], iterations, batch_size, lr, ema)
    iterations, batch_size = int(iterations), int(batch_size)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MLPDenoiser(**net)
    if net.get("skip_timesteps"):
        model.set_skip(make_scheduler(schedule).alphas_cumprod, float(data.std()))
    averaged = {k: v.detach().clone() for k, v in model.state_dict().items()}
    alphas = make_scheduler(schedule).alphas_cumprod.float()
    x_all = torch.from_numpy(data)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / iterations)))
    T = schedule["num_train_timesteps"]
    model.train()
    for i in range(iterations):
        idx = torch.randint(0, len(x_all), (batch_size,), generator=gen)
        t = torch.randint(0, T, (batch_size,), generator=gen)
        eps = torch.randn((batch_size, net["dim"]), generator=gen)
        a = alphas[t][:, None]
        xt = a.sqrt() * x_all[idx] + (1 - a).sqrt() * eps
        loss = ((model(xt, t) - eps) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            decay = min(ema, (1 + i) / (10 + i))
            for k, v in model.state_dict().items():
                averaged[k].mul_(decay).add_(v, alpha=1 - decay)
        if progress and (i % 500 == 0 or i == iterations - 1):
            progress(i + 1, iterations, float(loss.detach()))
    if ema:
        model.load_state_dict(averaged)
    meta = {"net": net, "schedule": schedule, "scheduler_conventions": SCHEDULER_CONVENTIONS,
            "train": {"iterations": iterations, "batch_size": batch_size, "lr": lr, "seed": seed, "ema": ema}}
    return DiffusionModel(name, model, schedule, (net["dim"],), data, labels, meta, default_steps)


def apply_gate(record: dict, passed: bool, verdict: str, allow_failed_gate: bool = False) -> dict:
    """``record`` with ``gate`` (``verdict``: the figures against their bars) and ``gate_passed``; raises a
    UserError when the model failed and ``allow_failed_gate`` is off, so that nothing is written."""
    record = {**record, "gate": verdict, "gate_passed": bool(passed)}
    if not passed and not allow_failed_gate:
        raise UserError(f"{record.get('name', 'the model')} failed its quality gate ({verdict}), so nothing was "
                        "written; train longer (--iterations) or on more data, or pass --allow-failed-gate to write "
                        "it anyway (its record then says gate_passed: false)")
    return record

"""Built-in 2-D DDPMs (``toy2d/moons``, ``toy2d/circles``, ``toy2d/ring``, ``toy2d/spiral``): training and loading."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from explorer.models.datasets import sample_toy2d
from explorer.models.ddim import SCHEDULER_CONVENTIONS, make_scheduler
from explorer.models.denoisers import MLPDenoiser
from explorer.models.diffusion import DiffusionModel
from explorer.models.quality import sliced_wasserstein
from explorer.models.weights import load_model_files, save_model_files

DEFAULT_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_schedule": "linear",
    "beta_start": 1e-4,
    "beta_end": 0.02,
}
DEFAULT_TRAIN = {"n_data": 8000, "iterations": 15000, "batch_size": 1024, "lr": 2e-3, "seed": 0, "ema": 0.999}
DEFAULT_NET = {"dim": 2, "hidden": 128, "depth": 3, "time_dim": 32}
DEFAULT_STEPS = 50


def train_toy2d(data: np.ndarray, labels: np.ndarray | None = None, *, name: str = "toy2d/custom",
                iterations: int = DEFAULT_TRAIN["iterations"], batch_size: int = DEFAULT_TRAIN["batch_size"],
                lr: float = DEFAULT_TRAIN["lr"], seed: int = 0, ema: float = DEFAULT_TRAIN["ema"],
                net: dict | None = None, schedule: dict | None = None, progress=None) -> DiffusionModel:
    """Train ε_θ by the DDPM loss E‖ε − ε_θ(sqrt(ᾱ_t) x_0 + sqrt(1−ᾱ_t) ε, t)‖², reproducibly from ``seed``.

    Adam with a cosine learning-rate decay; t uniform in [0, T); the returned weights are an
    exponential moving average (decay ``ema``; 0 turns it off). ``progress(i, total, loss)`` is called
    every 500 iterations.
    """
    net, schedule = {**DEFAULT_NET, **(net or {})}, {**DEFAULT_SCHEDULE, **(schedule or {})}
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != net["dim"] or not np.isfinite(data).all():
        raise ValueError(f"data must be a finite (N, {net['dim']}) array, got shape {data.shape}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MLPDenoiser(**net)
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
    return DiffusionModel(name, model, schedule, (net["dim"],), data, labels, meta, DEFAULT_STEPS)


def quality_report(model: DiffusionModel, reference: np.ndarray, draw_fresh, n: int = 2000, repeats: int = 20,
                   seed: int = 12345) -> dict:
    """How far n samples are from the data, in units of how far n fresh data points are from it.

    swd_model = mean over ``repeats`` of SWD(n samples, ``reference``); swd_data_vs_data = mean of
    SWD(``draw_fresh(n, seed)``, ``reference``): the reference (the training set) and each fresh draw
    are two independent draws of the data. The tests gate the ratio at 1.5.
    """
    swd_model, swd_floor = [], []
    for r in range(repeats):
        swd_model.append(sliced_wasserstein(model.sample(n, seed=seed + r), reference))
        swd_floor.append(sliced_wasserstein(draw_fresh(n, seed + 1000 + r), reference))
    m, f = float(np.mean(swd_model)), float(np.mean(swd_floor))
    return {"n": n, "repeats": repeats, "steps": model.default_steps, "swd_model": m, "swd_data_vs_data": f,
            "swd_ratio": m / f}


def builtin_quality(model: DiffusionModel, dataset: str, seed: int = 12345) -> dict:
    """``quality_report`` of a built-in model against its training set, fresh draws from ``sample_toy2d``."""
    return quality_report(model, model.training_data(), lambda n, s: sample_toy2d(dataset, n, seed=s)[0],
                          seed=seed)


def reference_log_density(model: DiffusionModel, n: int = 1000) -> float:
    """log p_ref: the median ``discrete`` log density of (up to ``n`` evenly spaced) training points,
    the fixed unit of ``relative`` λ and p0 in the geodesics (DESIGN.md §3)."""
    data = model.training_data()
    logp = model.log_prob(data[:: max(1, len(data) // n)][:n])
    return float(np.nanmedian(logp))


def train_builtin(dataset: str, out_dir: Path, seed: int = 0, iterations: int | None = None,
                  progress=None) -> dict:
    """Train ``toy2d/<dataset>`` on its built-in data and write it to ``out_dir``; returns the JSON record."""
    cfg = {**DEFAULT_TRAIN, "seed": seed}
    if iterations is not None:
        cfg["iterations"] = iterations
    data, labels = sample_toy2d(dataset, cfg["n_data"], seed=seed)
    start = time.perf_counter()
    model = train_toy2d(data, labels, name=f"toy2d/{dataset}", iterations=cfg["iterations"],
                        batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    record = {**model.meta, "name": model.name, "dataset": dataset, "n_data": cfg["n_data"],
              "data_seed": seed, "default_steps": DEFAULT_STEPS, "train_seconds": round(seconds, 1),
              "quality": builtin_quality(model, dataset), "log_p_ref": reference_log_density(model)}
    tensors = {f"denoiser.{k}": v for k, v in model.denoiser.state_dict().items()}
    tensors["data"] = torch.from_numpy(data)
    tensors["labels"] = torch.from_numpy(labels)
    return save_model_files(Path(out_dir) / "toy2d" / dataset, tensors, record)


def load_toy2d(stem: Path, name: str) -> DiffusionModel:
    """Load a model written by ``train_builtin`` (or ``train --csv``) from ``stem``.{safetensors,json}."""
    tensors, record = load_model_files(stem)
    denoiser = MLPDenoiser(**record["net"])
    denoiser.load_state_dict({k[len("denoiser."):]: v for k, v in tensors.items() if k.startswith("denoiser.")})
    labels = tensors.get("labels")
    return DiffusionModel(name, denoiser, record["schedule"], (record["net"]["dim"],), tensors["data"].numpy(),
                          None if labels is None else labels.numpy(), record,
                          record.get("default_steps", DEFAULT_STEPS))


def read_points_csv(path: Path, max_points: int = 100_000) -> np.ndarray:
    """Read a CSV of 2-D points: two numeric columns, an optional header row; finite values only."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"CSV file {path} does not exist")
    rows = path.read_text().strip().splitlines()
    if rows and any(c.isalpha() for c in rows[0].replace("e", "").replace("E", "")):
        rows = rows[1:]
    try:
        x = np.array([[float(v) for v in r.split(",")] for r in rows if r.strip()], dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}: every row must hold two numbers separated by a comma ({err})") from None
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{path}: expected 2 columns of numbers, found rows of {x.shape[1:] or 'varying'} values")
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: values must be finite (found NaN or inf)")
    if not 10 <= len(x) <= max_points:
        raise ValueError(f"{path}: need between 10 and {max_points} points, found {len(x)}")
    return x.astype(np.float32)


def train_csv(csv: Path, out_dir: Path, seed: int = 0, iterations: int | None = None, progress=None):
    """Train a 2-D DDPM on the points of a CSV file; written to ``out_dir/toy2d/<csv stem>``."""
    data = read_points_csv(csv)
    name = f"toy2d/{Path(csv).stem}"
    start = time.perf_counter()
    model = train_toy2d(data, None, name=name, iterations=iterations or DEFAULT_TRAIN["iterations"],
                        seed=seed, progress=progress)
    half = np.random.default_rng(seed).permutation(len(data))
    reference, rest = data[half[: len(data) // 2]], data[half[len(data) // 2:]]
    n = min(len(rest), 2000)

    def draw(n, s):  # the other half of a random split stands in for a fresh draw
        return rest[np.random.default_rng(s).permutation(len(rest))[:n]]

    record = {**model.meta, "name": name, "dataset": f"csv:{Path(csv).name}", "n_data": len(data),
              "data_seed": seed, "default_steps": DEFAULT_STEPS,
              "train_seconds": round(time.perf_counter() - start, 1),
              "quality": quality_report(model, reference, draw, n=n), "log_p_ref": reference_log_density(model)}
    tensors = {f"denoiser.{k}": v for k, v in model.denoiser.state_dict().items()}
    tensors["data"] = torch.from_numpy(data)
    stem = Path(out_dir) / "toy2d" / Path(csv).stem
    return save_model_files(stem, tensors, record), stem

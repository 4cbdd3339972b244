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
DEFAULT_TRAIN = {"n_data": 8000, "iterations": 15000, "batch_size": 1024, "lr": 2e-3, "seed": 0}
DEFAULT_NET = {"dim": 2, "hidden": 128, "depth": 3, "time_dim": 32}
DEFAULT_STEPS = 50


def train_toy2d(data: np.ndarray, labels: np.ndarray | None = None, *, name: str = "toy2d/custom",
                iterations: int = DEFAULT_TRAIN["iterations"], batch_size: int = DEFAULT_TRAIN["batch_size"],
                lr: float = DEFAULT_TRAIN["lr"], seed: int = 0, net: dict | None = None,
                schedule: dict | None = None, progress=None) -> DiffusionModel:
    """Train ε_θ by the DDPM loss E‖ε − ε_θ(sqrt(ᾱ_t) x_0 + sqrt(1−ᾱ_t) ε, t)‖², reproducibly from ``seed``.

    Adam with a cosine learning-rate decay; t uniform in [0, T). ``progress(i, total, loss)`` is
    called every 500 iterations.
    """
    net, schedule = {**DEFAULT_NET, **(net or {})}, {**DEFAULT_SCHEDULE, **(schedule or {})}
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != net["dim"] or not np.isfinite(data).all():
        raise ValueError(f"data must be a finite (N, {net['dim']}) array, got shape {data.shape}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MLPDenoiser(**net)
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
        if progress and (i % 500 == 0 or i == iterations - 1):
            progress(i + 1, iterations, float(loss.detach()))
    meta = {"net": net, "schedule": schedule, "scheduler_conventions": SCHEDULER_CONVENTIONS,
            "train": {"iterations": iterations, "batch_size": batch_size, "lr": lr, "seed": seed}}
    return DiffusionModel(name, model, schedule, (net["dim"],), data, labels, meta, DEFAULT_STEPS)


def quality_report(model: DiffusionModel, reference: np.ndarray, reference2: np.ndarray,
                   n: int = 2000, seed: int = 12345) -> dict:
    """SWD(samples, data) and the data's own noise floor SWD(data draw 1, data draw 2), and their ratio."""
    samples = model.sample(n, seed=seed)
    swd_model = sliced_wasserstein(samples, reference[:n])
    swd_floor = sliced_wasserstein(reference2[:n], reference[:n])
    return {"n": n, "steps": model.default_steps, "swd_model": swd_model, "swd_data_vs_data": swd_floor,
            "swd_ratio": swd_model / swd_floor}


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
    ref, _ = sample_toy2d(dataset, 2000, seed=seed + 1001)
    ref2, _ = sample_toy2d(dataset, 2000, seed=seed + 2002)
    record = {**model.meta, "name": model.name, "dataset": dataset, "n_data": cfg["n_data"],
              "data_seed": seed, "default_steps": DEFAULT_STEPS, "train_seconds": round(seconds, 1),
              "quality": quality_report(model, ref, ref2)}
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
    rng = np.random.default_rng(seed)
    half = rng.permutation(len(data))
    a, b = data[half[: len(data) // 2]], data[half[len(data) // 2:]]
    n = min(len(a), len(b), 2000)
    record = {**model.meta, "name": name, "dataset": f"csv:{Path(csv).name}", "n_data": len(data),
              "data_seed": seed, "default_steps": DEFAULT_STEPS,
              "train_seconds": round(time.perf_counter() - start, 1),
              "quality": quality_report(model, a[:n], b[:n], n=n)}
    tensors = {f"denoiser.{k}": v for k, v in model.denoiser.state_dict().items()}
    tensors["data"] = torch.from_numpy(data)
    stem = Path(out_dir) / "toy2d" / Path(csv).stem
    return save_model_files(stem, tensors, record), stem

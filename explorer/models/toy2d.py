"""Built-in 2-D DDPMs (``toy2d/moons``, ``toy2d/circles``, ``toy2d/ring``, ``toy2d/spiral``): training and loading."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from explorer import files
from explorer.errors import UserError
from explorer.models.datasets import sample_toy2d
from explorer.models.diffusion import DiffusionModel
from explorer.models.quality import sliced_wasserstein
from explorer.models.training import MIN_DISTINCT_POINTS, apply_gate, train_ddpm
from explorer.models.weights import check_target, save_model_files

DEFAULT_TRAIN = {"n_data": 8000, "iterations": 15000, "batch_size": 1024, "lr": 2e-3, "seed": 0, "ema": 0.999}
DEFAULT_NET = {"dim": 2, "hidden": 128, "depth": 3, "time_dim": 32}
DEFAULT_STEPS = 50
#: The quality gate: a model is written only when its SWD ratio (``quality_report``) is at most this.
SWD_RATIO_GATE = 1.5


def train_toy2d(data: np.ndarray, labels: np.ndarray | None = None, *, name: str = "toy2d/custom",
                net: dict | None = None, **kwargs) -> DiffusionModel:
    """``train_ddpm`` with the 2-D defaults (DEFAULT_NET, DEFAULT_TRAIN, DEFAULT_STEPS sampler steps)."""
    kwargs = {k: DEFAULT_TRAIN[k] for k in ("iterations", "batch_size", "lr", "ema")} | kwargs
    return train_ddpm(data, labels, name=name, net={**DEFAULT_NET, **(net or {})}, default_steps=DEFAULT_STEPS,
                      **kwargs)


def quality_report(model: DiffusionModel, reference: np.ndarray, draw_fresh, n: int = 2000, repeats: int = 20,
                   seed: int = 12345) -> dict:
    """How far n samples are from the data, in units of how far n fresh data points are from it.

    swd_model = mean over ``repeats`` of SWD(n samples, ``reference``); swd_data_vs_data = mean of
    SWD(``draw_fresh(n, seed)``, ``reference``): the reference (the training set) and each fresh draw
    are two independent draws of the data. Training gates the ratio at SWD_RATIO_GATE (``swd_gate``); it is
    inf when the fresh draws equal the reference exactly (swd_data_vs_data = 0).
    """
    swd_model, swd_floor = [], []
    for r in range(repeats):
        swd_model.append(sliced_wasserstein(model.sample(n, seed=seed + r), reference))
        swd_floor.append(sliced_wasserstein(draw_fresh(n, seed + 1000 + r), reference))
    m, f = float(np.mean(swd_model)), float(np.mean(swd_floor))
    return {"n": n, "repeats": repeats, "steps": model.default_steps, "swd_model": m, "swd_data_vs_data": f,
            "swd_ratio": m / f if f > 0 else float("inf")}


def swd_gate(quality: dict) -> tuple[bool, str]:
    """(passed, verdict) of a ``quality_report``: the SWD ratio against SWD_RATIO_GATE."""
    ratio = quality["swd_ratio"]
    passed = bool(np.isfinite(ratio) and ratio <= SWD_RATIO_GATE)
    return passed, f"sliced Wasserstein ratio {ratio:.3g} {'<=' if passed else '>'} {SWD_RATIO_GATE}"


def builtin_quality(model: DiffusionModel, dataset: str, seed: int = 12345) -> dict:
    """``quality_report`` of a built-in model against its training set, fresh draws from ``sample_toy2d``."""
    return quality_report(model, model.training_data(), lambda n, s: sample_toy2d(dataset, n, seed=s)[0],
                          seed=seed)


def reference_log_density(model: DiffusionModel, n: int = 1000) -> float:
    """log p_ref of the model's own ``default_likelihood``, stored in its record at training time: the one rule of
    ``explorer.density.cached.reference_log_density`` (the median over up to ``n`` evenly spaced training points)."""
    from explorer.density.cached import reference_log_density as rule

    return rule(lambda x: model.log_prob(x, **model.default_likelihood), model.training_data(), n)


def train_builtin(dataset: str, out_dir: Path | None = None, seed: int = 0, iterations: int | None = None,
                  progress=None, *, overwrite: bool = False, replace_builtin: bool = False,
                  allow_failed_gate: bool = False) -> dict:
    """Train ``toy2d/<dataset>`` on its built-in data and write it to ``out_dir/toy2d/<dataset>`` (default
    ``out_dir``: ``explorer.files.user_models_dir()``); returns the JSON record.

    What ``weights.check_target`` refuses (a shipped file without ``replace_builtin``, an existing file without
    ``overwrite``) is refused before training; a model that fails the gate (``swd_gate``) is not written unless
    ``allow_failed_gate`` (the record then says ``"gate_passed": false``).
    """
    cfg = {**DEFAULT_TRAIN, "seed": seed}
    if iterations is not None:
        cfg["iterations"] = iterations
    stem = Path(files.user_models_dir() if out_dir is None else out_dir) / "toy2d" / dataset
    data, labels = sample_toy2d(dataset, cfg["n_data"], seed=seed)
    check_target(stem, overwrite, replace_builtin)
    start = time.perf_counter()
    model = train_toy2d(data, labels, name=f"toy2d/{dataset}", iterations=cfg["iterations"],
                        batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    quality = builtin_quality(model, dataset)
    record = {**model.meta, "name": model.name, "dataset": dataset, "n_data": cfg["n_data"],
              "data_seed": seed, "default_steps": DEFAULT_STEPS, "train_seconds": round(seconds, 1),
              "quality": quality}
    record = apply_gate(record, *swd_gate(quality), allow_failed_gate)
    record["log_p_ref"] = reference_log_density(model)
    tensors = {f"denoiser.{k}": v for k, v in model.denoiser.state_dict().items()}
    tensors["data"] = torch.from_numpy(data)
    tensors["labels"] = torch.from_numpy(labels)
    return save_model_files(stem, tensors, record, overwrite=overwrite, replace_builtin=replace_builtin)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_points_csv(path: Path, max_points: int = 100_000) -> np.ndarray:
    """Read a CSV of 2-D points: two numeric columns, an optional header row; finite values only, and at least
    MIN_DISTINCT_POINTS distinct points.

    The first row is a header when one of its cells is not a number (``nan`` and ``inf`` are numbers, so a
    first data row holding them is refused as non-finite, not dropped as a header)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"CSV file {path} does not exist")
    rows = path.read_text().strip().splitlines()
    if rows and not all(_is_number(c) for c in rows[0].split(",")):
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
    n_distinct = len(np.unique(x.astype(np.float32), axis=0))
    if n_distinct < MIN_DISTINCT_POINTS:
        raise UserError(f"{path}: found {n_distinct} distinct point(s) in {len(x)} rows; training needs at least "
                        f"{MIN_DISTINCT_POINTS} distinct points")
    return x.astype(np.float32)


def train_csv(csv: Path, out_dir: Path | None = None, seed: int = 0, iterations: int | None = None, progress=None,
              *, overwrite: bool = False, allow_failed_gate: bool = False):
    """Train a 2-D DDPM on the points of a CSV file; written to ``out_dir/toy2d/<csv stem>`` (default
    ``out_dir``: the user's models folder), with the checks and gate of ``train_builtin`` (never into the
    shipped assets/). Returns ``(record, stem)``."""
    data = read_points_csv(csv)
    name = f"toy2d/{Path(csv).stem}"
    stem = Path(files.user_models_dir() if out_dir is None else out_dir) / "toy2d" / Path(csv).stem
    check_target(stem, overwrite)
    start = time.perf_counter()
    model = train_toy2d(data, None, name=name,
                        iterations=DEFAULT_TRAIN["iterations"] if iterations is None else iterations,
                        seed=seed, progress=progress)
    half = np.random.default_rng(seed).permutation(len(data))
    reference, rest = data[half[: len(data) // 2]], data[half[len(data) // 2:]]
    n = min(len(rest), 2000)

    def draw(n, s):  # the other half of a random split stands in for a fresh draw
        return rest[np.random.default_rng(s).permutation(len(rest))[:n]]

    quality = quality_report(model, reference, draw, n=n)
    record = {**model.meta, "name": name, "dataset": f"csv:{Path(csv).name}", "n_data": len(data),
              "data_seed": seed, "default_steps": DEFAULT_STEPS,
              "train_seconds": round(time.perf_counter() - start, 1), "quality": quality}
    record = apply_gate(record, *swd_gate(quality), allow_failed_gate)
    record["log_p_ref"] = reference_log_density(model)
    tensors = {f"denoiser.{k}": v for k, v in model.denoiser.state_dict().items()}
    tensors["data"] = torch.from_numpy(data)
    return save_model_files(stem, tensors, record, overwrite=overwrite), stem

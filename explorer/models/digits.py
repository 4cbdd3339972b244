"""Built-in image DDPMs on scikit-learn's 8×8 digits (``digits/full``, ``digits/memorized``).

The images (1,797, pixel values 0–16) ship inside scikit-learn; pixels are scaled to [−1, 1] by
x = v/8 − 1 and flattened, so d = D = 64 and a full Jacobian is 64 directions. A fixed permutation
(seed 0) splits them into ``N_TRAIN`` training and the rest held-out images:

- ``digits/full`` trains on all ``N_TRAIN`` training images;
- ``digits/memorized`` trains on the first ``N_MEMORIZED`` of them, long enough that most of its
  samples copy a training image.

Quality is gated by a digit classifier fitted on the training images (``digit_classifier``): the
fraction of samples it names with probability ≥ ``CONFIDENT`` (the held-out real digits reach about
98% at the same bar), and by the memorized fraction (``GATES``; ``gate``): training writes a model only
when it passes, unless asked to write a failed one (its record then says ``"gate_passed": false``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from explorer import files
from explorer.images import to_grey
from explorer.models.diffusion import DiffusionModel
from explorer.models.training import apply_gate, train_ddpm
from explorer.models.weights import check_target, save_model_files

VARIANTS = ("full", "memorized")
IMAGE_SHAPE = (8, 8)
N_TRAIN = 1500
N_MEMORIZED = 48
SPLIT_SEED = 0
DEFAULT_STEPS = 20
CONFIDENT = 0.8
#: Each variant's gate on ``n_check`` samples (README): (figure, "min" or "max", bar).
GATES = {
    "full": (("confident_fraction", "min", 0.8), ("memorized_fraction", "max", 0.2)),
    "memorized": (("memorized_fraction", "min", 0.8),),
}
#: The pages' and CLI's likelihood for digit models (``log_prob`` keywords): the probability-flow ODE, 20 RK4
#: steps, 2 Rademacher probes for the divergence, the same probes for every point, so that log p is a smooth
#: function of x (per-point probes make it jump by about a nat between neighbouring points, and the geodesic
#: metric, exponential in log p, then follows the noise: a path refined on it is not shorter on a re-draw).
LIKELIHOOD = {"method": "ode", "n_steps": 20, "n_probes": 2, "shared_probes": True}
DEFAULT_NET = {"dim": 64, "hidden": 512, "depth": 4, "time_dim": 64, "time_every_layer": True,
               "skip_timesteps": 1000}
DEFAULT_TRAIN = {
    "full": {"iterations": 30000, "batch_size": 256, "lr": 1e-3, "ema": 0.999},
    "memorized": {"iterations": 60000, "batch_size": 256, "lr": 1e-3, "ema": 0.999},
}


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as (N, 64) float32 in [−1, 1] (x = v/8 − 1, row-major 8×8) and their labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 8.0 - 1.0).astype(np.float32), y.astype(np.int64)


def to_pixels(x: np.ndarray) -> np.ndarray:
    """Model space [−1, 1] → display grey levels in [0, 1], as (…, 8, 8), clipped."""
    return to_grey(x, IMAGE_SHAPE)


def split_indices() -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) indices into ``digit_images()``: a fixed permutation, the first N_TRAIN train."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(1797)
    return perm[:N_TRAIN], perm[N_TRAIN:]


def training_indices(variant: str) -> np.ndarray:
    """Indices of ``digits/<variant>``'s training images into ``digit_images()``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown digits variant {variant!r}; valid: {', '.join(VARIANTS)}")
    train, _ = split_indices()
    return train if variant == "full" else train[:N_MEMORIZED]


def digit_classifier(seed: int = 0):
    """A scikit-learn MLP classifier fitted on the ``full`` training images; ``.heldout_accuracy_`` and
    ``.heldout_confident_`` (fraction of held-out digits named with probability ≥ CONFIDENT) attached."""
    from sklearn.neural_network import MLPClassifier

    X, y = digit_images()
    train, held = split_indices()
    clf = MLPClassifier((256,), alpha=1e-3, max_iter=500, random_state=seed).fit(X[train], y[train])
    proba = clf.predict_proba(X[held])
    clf.heldout_accuracy_ = float((proba.argmax(1) == y[held]).mean())
    clf.heldout_confident_ = float((proba.max(1) >= CONFIDENT).mean())
    return clf


def classifier_report(samples: np.ndarray, classifier=None) -> dict:
    """How recognisable samples are: the fraction named with probability ≥ CONFIDENT, and the class counts."""
    clf = classifier or digit_classifier()
    proba = clf.predict_proba(np.asarray(samples, dtype=np.float32).reshape(len(samples), -1))
    confident = proba.max(1) >= CONFIDENT
    return {"n": len(samples), "confident_fraction": float(confident.mean()), "threshold": CONFIDENT,
            "class_counts": np.bincount(proba.argmax(1)[confident], minlength=10).tolist(),
            "classifier_heldout_accuracy": clf.heldout_accuracy_,
            "classifier_heldout_confident": clf.heldout_confident_}


def memorized_fraction(model: DiffusionModel, samples: np.ndarray) -> float:
    """The fraction of samples that ``explorer.memorization.MemorizationScore`` calls memorized."""
    from explorer.memorization import MemorizationScore

    return float(MemorizationScore().fit(model.training_data()).score(samples)["memorized"].mean())


def train_digits(variant: str, seed: int = 0, iterations: int | None = None, progress=None) -> DiffusionModel:
    """Train ``digits/<variant>`` (DEFAULT_NET, DEFAULT_TRAIN) reproducibly from ``seed``."""
    X, y = digit_images()
    idx = training_indices(variant)
    cfg = {**DEFAULT_TRAIN[variant]}
    if iterations is not None:
        cfg["iterations"] = int(iterations)
    model = train_ddpm(X[idx], y[idx], name=f"digits/{variant}", net=DEFAULT_NET, seed=seed,
                       default_steps=DEFAULT_STEPS, progress=progress, **cfg)
    model.meta.update({"sample_shape": [64], "image_shape": list(IMAGE_SHAPE), "likelihood": LIKELIHOOD})
    return model


def gate(variant: str, quality: dict) -> tuple[bool, str]:
    """(passed, verdict) of a digit model's ``quality`` record against ``GATES[variant]``."""
    passed, parts = True, []
    for figure, kind, bar in GATES[variant]:
        value = quality[figure]
        ok = value >= bar if kind == "min" else value <= bar
        passed &= bool(ok)
        parts.append(f"{figure} {value:.3g} {('>=' if ok else '<') if kind == 'min' else ('<=' if ok else '>')} {bar}")
    return passed, ", ".join(parts)


def _stem(variant: str, out_dir: Path | None) -> Path:
    return Path(files.user_models_dir() if out_dir is None else out_dir) / "digits" / variant


def train_builtin(variant: str, out_dir: Path | None = None, seed: int = 0, iterations: int | None = None,
                  progress=None, n_check: int = 512, *, overwrite: bool = False, replace_builtin: bool = False,
                  allow_failed_gate: bool = False) -> dict:
    """Train ``digits/<variant>`` and write it with ``write_builtin`` (default ``out_dir``: the user's models
    folder); a target ``write_builtin`` would refuse is refused before training. Returns the JSON record."""
    training_indices(variant)  # validates the variant
    check_target(_stem(variant, out_dir), overwrite, replace_builtin)
    start = time.perf_counter()
    model = train_digits(variant, seed=seed, iterations=iterations, progress=progress)
    return write_builtin(model, variant, out_dir, time.perf_counter() - start, n_check, overwrite=overwrite,
                         replace_builtin=replace_builtin, allow_failed_gate=allow_failed_gate)


def write_builtin(model: DiffusionModel, variant: str, out_dir: Path | None, seconds: float, n_check: int = 512, *,
                  overwrite: bool = False, replace_builtin: bool = False, allow_failed_gate: bool = False) -> dict:
    """Check a trained digit model (classifier and memorization on ``n_check`` samples of seed 12345, against
    ``GATES``; log p_ref) and write it to ``out_dir/digits/<variant>``; returns the JSON record. A model that
    fails the gate is written only with ``allow_failed_gate``; see ``weights.check_target`` for the targets
    refused."""
    from explorer.models.toy2d import reference_log_density

    samples = model.sample(n_check, seed=12345)
    idx = training_indices(variant)
    quality = {**classifier_report(samples), "memorized_fraction": memorized_fraction(model, samples),
               "samples_seed": 12345}
    record = {**model.meta, "name": model.name, "dataset": "sklearn.load_digits", "variant": variant,
              "n_data": len(idx), "train_indices_split_seed": SPLIT_SEED, "default_steps": DEFAULT_STEPS,
              "pixel_scaling": "x = v/8 - 1", "train_seconds": round(seconds, 1), "quality": quality}
    record = apply_gate(record, *gate(variant, quality), allow_failed_gate)
    record["log_p_ref"] = reference_log_density(model)
    tensors = {f"denoiser.{k}": v for k, v in model.denoiser.state_dict().items()}
    tensors["data"] = torch.from_numpy(model.training_data())
    tensors["labels"] = torch.from_numpy(model.training_labels())
    tensors["train_indices"] = torch.from_numpy(idx.astype(np.int64))
    return save_model_files(_stem(variant, out_dir), tensors, record, overwrite=overwrite,
                            replace_builtin=replace_builtin)

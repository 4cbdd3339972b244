"""A small diffusers ``UNet2DModel`` DDPM on scikit-learn's 8×8 digits, shipped as a diffusers pipeline folder.

The app's "real diffusers pipeline" path needs one pipeline that runs offline: this module trains it and
writes ``assets/pipelines/digits-unet`` with ``DDPMPipeline.save_pretrained`` (weights as ``.safetensors``
only), plus ``explorer_record.json`` in the folder (the training config, seed, seconds and load, quality
figures and versions).

Data: the ``digits/full`` training images (``training_indices("full")``, 1,500 of 1,797), pixels
x = v/8 − 1 in [−1, 1], one channel at the native 8×8 resolution (no resampling, so the digit classifier
reads samples as they are). Model: ε-prediction, the DDPM linear β schedule of the other built-in models
(T = 1000, β from 1e-4 to 0.02), an attention-free UNet of ResNet blocks with SiLU (``UNET_CONFIG``).
Training: the DDPM loss E‖ε − ε_θ(sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε, t)‖², t uniform in [0, T), Adam with a
cosine learning-rate decay, an exponential moving average of the weights (what ships), reproducible from a
seed.

Quality gate (as for the digit models): the deterministic DDIM sampler (``ddim_sample``: eta = 0,
``DEFAULT_STEPS`` = 20, the project's scheduler conventions) draws ``N_CHECK`` = 512 samples from the latents
of seed ``CHECK_SEED``; ``digit_classifier`` must name at least ``GATE_CONFIDENT`` of them with probability
≥ ``CONFIDENT``, and every class must get at least ``GATE_CLASS_SHARE`` of the confident ones.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from explorer.models.ddim import SCHEDULER_CONVENTIONS
from explorer.models.digits import (
    CONFIDENT,
    IMAGE_SHAPE,
    SPLIT_SEED,
    classifier_report,
    digit_images,
    training_indices,
)
from explorer.models.training import DEFAULT_SCHEDULE

NAME = "digits-unet"
PIPELINE_SUBDIR = Path("pipelines") / NAME  # under the assets folder
RECORD_FILE = "explorer_record.json"
SAMPLE_SHAPE = (1, *IMAGE_SHAPE)  # (channels, height, width) of one sample and of its latent x_T
DEFAULT_STEPS = 20
N_CHECK = 512
CHECK_SEED = 12345
GATE_CONFIDENT = 0.8
GATE_CLASS_SHARE = 0.02
PROGRESS_EVERY = 100
UNET_CONFIG = {
    "sample_size": IMAGE_SHAPE[0],
    "in_channels": 1,
    "out_channels": 1,
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "UpBlock2D"),
    "add_attention": False,
    "norm_num_groups": 8,
    "act_fn": "silu",
}
DEFAULT_TRAIN = {"iterations": 2500, "batch_size": 128, "lr": 2e-3, "ema": 0.995}


def make_unet(config: dict | None = None, seed: int = 0):
    """A freshly initialised ``UNet2DModel`` (``UNET_CONFIG`` updated by ``config``), the same for the same seed;
    torch's global random state is left as it was."""
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DModel(**{**UNET_CONFIG, **(config or {})})


def ddpm_scheduler():
    """The training noise schedule as a ``DDPMScheduler`` (ε-prediction, no clipping): what the folder ships."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**DEFAULT_SCHEDULE, prediction_type="epsilon", clip_sample=False)


def ddim_scheduler(scheduler):
    """The project's deterministic DDIM scheduler for a pipeline's scheduler: its noise schedule with
    ``clip_sample=False``, ``timestep_spacing="trailing"``, ``set_alpha_to_one=True`` (DESIGN.md §6)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_config(scheduler.config, clip_sample=False, timestep_spacing="trailing",
                                     set_alpha_to_one=True)


def latents(n: int, seed: int, shape: tuple[int, ...] = SAMPLE_SHAPE) -> torch.Tensor:
    """``n`` standard-normal latents x_T (n, *shape), float32, drawn in float64 from a seeded generator (as
    ``DiffusionModel.latents`` draws them)."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn((n, *shape), generator=gen, dtype=torch.float64).to(torch.float32)


@torch.no_grad()
def ddim_sample(unet, scheduler, n: int = N_CHECK, seed: int = CHECK_SEED, steps: int = DEFAULT_STEPS,
                batch_size: int = 512) -> np.ndarray:
    """Deterministic DDIM (eta = 0) samples from ``latents(n, seed)``, float32 numpy (n, 1, 8, 8) in model space.

    The timesteps τ_1 > … > τ_S are those of ``ddim_scheduler(scheduler)`` for S = ``steps`` ("trailing":
    999, 949, …, 49 for S = 20); each steps to s = τ − T/S, with ᾱ_s = 1 for s < 0. One step, ε = ε_θ(x_τ, τ):

        x̂_0 = (x_τ − sqrt(1 − ᾱ_τ) ε) / sqrt(ᾱ_τ),      x_s = sqrt(ᾱ_s) x̂_0 + sqrt(1 − ᾱ_s) ε

    (diffusers' ``DDIMScheduler.step`` with eta = 0 and no clipping; the coefficients here are float64 scalars).
    """
    ddim = ddim_scheduler(scheduler)
    T = ddim.config.num_train_timesteps
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in [1, {T}], got {steps}")
    ddim.set_timesteps(steps)
    a = ddim.alphas_cumprod.double()
    shape = (unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    z = latents(n, seed, shape)
    out = []
    for i in range(0, n, batch_size):
        x = z[i:i + batch_size]
        for tau in (int(t) for t in ddim.timesteps):
            s = tau - T // steps
            a_t, a_s = float(a[tau]), (1.0 if s < 0 else float(a[s]))
            eps = unet(x, tau).sample
            x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
            x = math.sqrt(a_s) * x0 + math.sqrt(1 - a_s) * eps
        out.append(x)
    return (torch.cat(out) if out else z).numpy()


def gate(samples: np.ndarray, classifier=None) -> dict:
    """The quality gate on samples (n, 1, 8, 8) or (n, 64): ``classifier_report`` plus ``gate_passed`` (at least
    GATE_CONFIDENT named with probability ≥ CONFIDENT, every class ≥ GATE_CLASS_SHARE of the confident ones)."""
    report = classifier_report(np.asarray(samples).reshape(len(samples), -1), classifier)
    n_confident = sum(report["class_counts"])
    report["min_class_share"] = min(report["class_counts"]) / n_confident if n_confident else 0.0
    report["gate"] = {"confident_fraction": GATE_CONFIDENT, "min_class_share": GATE_CLASS_SHARE}
    report["gate_passed"] = bool(report["confident_fraction"] >= GATE_CONFIDENT
                                 and report["min_class_share"] >= GATE_CLASS_SHARE)
    return report


def train_unet(seed: int = 0, iterations: int | None = None, batch_size: int | None = None, lr: float | None = None,
               ema: float | None = None, unet_config: dict | None = None, progress=None):
    """Train ε_θ on the ``digits/full`` training images; returns (the EMA UNet, the training record).

    Adam with a cosine learning-rate decay from ``lr``; t uniform in [0, T); batches, timesteps and noise from
    one generator of ``seed`` and the initialisation from ``seed``, so a run is reproducible on one machine.
    The returned weights are the exponential moving average with decay min(ema, (1 + i)/(10 + i)) at
    iteration i. ``progress(i, total, loss)`` is called every PROGRESS_EVERY iterations and at the end.
    """
    cfg = {**DEFAULT_TRAIN}
    for key, value in (("iterations", iterations), ("batch_size", batch_size), ("lr", lr), ("ema", ema)):
        if value is not None:
            cfg[key] = type(DEFAULT_TRAIN[key])(value)
    if cfg["iterations"] < 1 or cfg["batch_size"] < 1:
        raise ValueError(f"iterations and batch_size must be positive, got {cfg['iterations']} and "
                         f"{cfg['batch_size']}")
    X, _ = digit_images()
    x_all = torch.from_numpy(X[training_indices("full")]).reshape(-1, *SAMPLE_SHAPE)
    unet = make_unet(unet_config, seed)
    if (unet.config.in_channels, unet.config.out_channels, unet.config.sample_size) != (1, 1, IMAGE_SHAPE[0]):
        raise ValueError(f"the digits UNet maps 1×8×8 samples to 1×8×8, got in_channels={unet.config.in_channels}, "
                         f"out_channels={unet.config.out_channels}, sample_size={unet.config.sample_size}")
    alphas = ddpm_scheduler().alphas_cumprod.float()
    T = len(alphas)
    gen = torch.Generator().manual_seed(seed)
    averaged = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    iters, bs = cfg["iterations"], cfg["batch_size"]
    opt = torch.optim.Adam(unet.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / iters)))
    losses = []
    unet.train()
    for i in range(iters):
        idx = torch.randint(0, len(x_all), (bs,), generator=gen)
        t = torch.randint(0, T, (bs,), generator=gen)
        eps = torch.randn((bs, *SAMPLE_SHAPE), generator=gen)
        a = alphas[t].view(-1, 1, 1, 1)
        loss = ((unet(a.sqrt() * x_all[idx] + (1 - a).sqrt() * eps, t).sample - eps) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            decay = min(cfg["ema"], (1 + i) / (10 + i))
            for k, v in unet.state_dict().items():
                averaged[k].mul_(decay).add_(v, alpha=1 - decay)
        losses.append(float(loss.detach()))
        if progress and ((i + 1) % PROGRESS_EVERY == 0 or i == iters - 1):
            progress(i + 1, iters, losses[-1])
    unet.load_state_dict(averaged)
    unet.eval().requires_grad_(False)
    record = {**cfg, "seed": seed, "optimizer": "adam", "lr_schedule": "cosine", "timesteps": "uniform",
              "loss": "mse on epsilon", "final_loss_mean_last_100": float(np.mean(losses[-100:]))}
    return unet, record


def pipeline_folder(out_dir: Path) -> Path:
    """Where ``train_digits_unet(out_dir)`` writes the pipeline: ``out_dir/pipelines/digits-unet``."""
    return Path(out_dir) / PIPELINE_SUBDIR


def train_digits_unet(out_dir: Path, seed: int = 0, iterations: int | None = None, progress=None, *,
                      overwrite: bool = False, allow_failed_gate: bool = False, n_check: int = N_CHECK,
                      num_threads: int | None = None, unet_config: dict | None = None, classifier=None,
                      **train) -> dict:
    """Train the digits UNet, gate it and write ``out_dir/pipelines/digits-unet``; returns the JSON record.

    The folder is ``DDPMPipeline(unet, ddpm_scheduler()).save_pretrained(..., safe_serialization=True)`` plus
    ``explorer_record.json``; it is written to a temporary folder beside it, reloaded with
    ``DDPMPipeline.from_pretrained(..., use_safetensors=True)`` and re-checked (the reloaded pipeline's DDIM
    samples must equal the gated ones), then moved into place, so an interrupted run leaves nothing
    half-written. An existing folder is replaced only with ``overwrite=True``; a model that fails the gate is
    written only with ``allow_failed_gate=True`` (its record then says ``"gate_passed": false``).
    ``num_threads`` sets torch's CPU threads for the run (on a shared 2-core machine 1 is much faster than 2);
    ``unet_config`` and ``train`` (batch_size, lr, ema) override UNET_CONFIG and DEFAULT_TRAIN; ``classifier``
    is a fitted ``digit_classifier()`` to reuse (default: fit one).
    """
    import diffusers
    from diffusers import DDPMPipeline

    folder = pipeline_folder(out_dir)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} already exists; pass overwrite=True to replace it")
    unknown = set(train) - {"batch_size", "lr", "ema"}
    if unknown:
        raise TypeError(f"unknown training settings {sorted(unknown)}; valid: batch_size, lr, ema")
    unet_config = dict(unet_config or {})
    threads_before = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        load_before, start, cpu_start = os.getloadavg(), time.perf_counter(), time.process_time()
        unet, train_record = train_unet(seed, iterations, unet_config=unet_config, progress=progress, **train)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        threads = torch.get_num_threads()
        load_after = os.getloadavg()
        scheduler = ddpm_scheduler()
        samples = ddim_sample(unet, scheduler, n_check, CHECK_SEED, DEFAULT_STEPS)
        quality = {**gate(samples, classifier), "samples_seed": CHECK_SEED, "steps": DEFAULT_STEPS}
        if not quality["gate_passed"] and not allow_failed_gate:
            raise RuntimeError(f"the trained UNet failed the quality gate ({quality['confident_fraction']:.1%} of "
                               f"{n_check} samples named with probability ≥ {CONFIDENT}, smallest class share "
                               f"{quality['min_class_share']:.1%}; needs {GATE_CONFIDENT:.0%} and "
                               f"{GATE_CLASS_SHARE:.0%}); train longer, or pass allow_failed_gate=True to write it")
        record = {
            "name": NAME, "dataset": "sklearn.load_digits", "variant": "full",
            "n_data": len(training_indices("full")), "train_indices_split_seed": SPLIT_SEED,
            "pixel_scaling": "x = v/8 - 1", "image_shape": list(IMAGE_SHAPE), "sample_shape": list(SAMPLE_SHAPE),
            "resolution": "native 8x8, no resampling",
            "unet": {k: list(v) if isinstance(v, tuple) else v for k, v in {**UNET_CONFIG, **unet_config}.items()},
            "n_parameters": int(sum(p.numel() for p in unet.parameters())),
            "activation": unet.config.act_fn, "attention": bool(unet.config.add_attention),
            "schedule": DEFAULT_SCHEDULE, "prediction_type": "epsilon",
            "sampler": {"kind": "ddim", "eta": 0.0, **SCHEDULER_CONVENTIONS},
            "default_steps": DEFAULT_STEPS, "train": train_record,
            "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu_seconds, 1), "torch_threads": threads,
            "load_average_1min": {"start": round(load_before[0], 2), "end": round(load_after[0], 2)},
            "cpu_count": os.cpu_count(), "quality": quality, "gate_passed": quality["gate_passed"],
            "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        }
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=folder.parent))
        tmp.chmod(0o755)
        try:
            DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(tmp, safe_serialization=True)
            (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            reloaded = DDPMPipeline.from_pretrained(tmp, use_safetensors=True)
            again = ddim_sample(reloaded.unet, reloaded.scheduler, n_check, CHECK_SEED, DEFAULT_STEPS)
            if not np.array_equal(again, samples) or list(tmp.rglob("*.bin")):
                raise RuntimeError(f"the pipeline written to {tmp} does not reproduce the gated samples on reload")
            _move_into_place(tmp, folder, overwrite)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        torch.set_num_threads(threads_before)
    return record


def _move_into_place(tmp: Path, folder: Path, overwrite: bool) -> None:
    """Rename the finished ``tmp`` folder to ``folder``; an old folder is moved aside first and removed after."""
    old = None
    if folder.exists():
        if not overwrite:
            raise FileExistsError(f"{folder} already exists; pass overwrite=True to replace it")
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

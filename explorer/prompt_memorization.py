"""Memorization of text-to-image pipelines from a list of prompts (Streamlit-free).

**Prompts.** A CSV or JSONL file with a ``caption`` field per prompt and an optional ``memorized`` label (true/false,
1/0, yes/no): the shape of the public memorized-prompt lists (e.g. Webster 2023's extraction of Stable Diffusion's
memorized LAION captions). ``read_prompts`` reads it.

**Per prompt.** ``per_prompt`` samples (sample i of prompt k from the latent of seed ``seed + i``, the same latents
for every prompt) through the deterministic DDIM ``sampler`` under ``prompt=caption``; their local descriptors ψ, ν,
ν_eff, δ (as on the Local geometry page), averaged over the prompt's samples; and the baseline of Wen et al. 2024
("Detecting, explaining, and mitigating memorization in diffusion models", ICLR 2024): the magnitude of the
text-conditional noise prediction over the first ``wen_steps`` DDIM steps,

    wen(c) = (1 / T) Σ_{t among the first T steps} ‖ε(x_t, c) − ε(x_t, ∅)‖₂,

with x_t on the sampling trajectory of the prompt (at ``guidance_scale``; ε(x_t, ∅) the empty prompt's) and the norm
over every latent value, averaged over the prompt's samples. Memorized prompts have a larger wen(c) (a strong text
signal from the first step).

**Nearest neighbours.** A pipeline without a training set has no copies to find, unless a folder of reference images
(PNG / JPEG, read with Pillow, resized to the sample size; e.g. the training images of the memorized prompts) is
given: then each sample's ratio d₁ / d₂ to its nearest / second-nearest distinct reference image
(``explorer.memorization.MemorizationScore``), and per prompt the smallest ratio and d_nearest over its samples
(a prompt is memorized when one of its samples is a copy). Without references these columns are NaN and
``params["nearest"]`` says why.

**AUROC.** When labels are given: ``separation_table`` of every feature over the prompts, memorized labels positive.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from explorer.errors import UserError

#: Features of the prompt table, compared by the AUROC table when labels are given.
PROMPT_FEATURES = ("psi", "nu", "nu_eff", "delta", "wen", "d_nearest", "ratio")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_TRUE = {"1", "true", "yes", "y", "t", "memorized"}
_FALSE = {"0", "false", "no", "n", "f", "novel", ""}


def _label(value, where: str) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return None if text == "" else False
    raise UserError(f"{where}: memorized must be true/false, 1/0 or yes/no; got {value!r}")


def read_prompts(path) -> pd.DataFrame:
    """A prompt list (CSV with a header, or JSONL: one object a line) → a frame with ``caption`` (str) and
    ``memorized`` (bool) when every row has a label, else without that column. Raises ``UserError`` for a missing
    file, no ``caption`` field, an empty caption or list, or a label that is not a boolean."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"no prompt list {path}: expected a CSV or JSONL file with a 'caption' field per prompt")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path} line {i} is not JSON ({err.msg}); expected one object a line") from None
            if not isinstance(row, dict):
                raise UserError(f"{path} line {i} is a {type(row).__name__}, not an object with a 'caption'")
            rows.append(row)
        frame = pd.DataFrame(rows)
    else:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
            raise UserError(f"{path} is not a readable CSV ({type(err).__name__}); expected a header row with a "
                            "'caption' column") from None
    if "caption" not in frame.columns:
        raise UserError(f"{path} has no 'caption' field (found: {', '.join(map(str, frame.columns)) or 'none'}); "
                        "name the prompt column 'caption'")
    if not len(frame):
        raise UserError(f"{path} lists no prompts")
    captions = [str(c) if c is not None else "" for c in frame["caption"]]
    for i, c in enumerate(captions, 1):
        if not c.strip() or c == "nan":
            raise UserError(f"{path}: prompt {i} has an empty caption")
    out = pd.DataFrame({"caption": captions})
    if "memorized" in frame.columns:
        labels = [_label(v, f"{path} prompt {i}") for i, v in enumerate(frame["memorized"], 1)]
        if all(v is not None for v in labels):
            out["memorized"] = np.array(labels, dtype=bool)
        elif any(v is not None for v in labels):
            raise UserError(f"{path}: some prompts have a memorized label and some do not; label all or none")
    return out


def read_reference_images(folder, sample_shape) -> tuple[np.ndarray, list[str]]:
    """The PNG / JPEG images of ``folder`` (sorted by name, not recursive) as an array (N, C, H, W) in [−1, 1] at
    ``sample_shape`` = (C, H, W) (RGB for C = 3, grey for C = 1; resized with Pillow's bicubic filter), and their
    file names. Raises ``UserError`` for a missing folder, no images, or a file Pillow cannot read."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"no reference image folder {folder}: expected a folder of PNG or JPEG images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{folder} holds no PNG or JPEG images ({', '.join(IMAGE_SUFFIXES)})")
    c, h, w = (int(s) for s in sample_shape)
    if c not in (1, 3):
        raise UserError(f"reference images need samples of 1 or 3 channels; this model's have {c}")
    out = np.empty((len(files), c, h, w), dtype=np.float64)
    for i, p in enumerate(files):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB" if c == 3 else "L").resize((w, h), Image.Resampling.BICUBIC)
                a = np.asarray(im, dtype=np.float64) / 127.5 - 1.0
        except (UnidentifiedImageError, OSError) as err:
            raise UserError(f"cannot read reference image {p} ({type(err).__name__}); give PNG or JPEG files") from None
        out[i] = a[None] if c == 1 else a.transpose(2, 0, 1)
    return out, [p.name for p in files]


def wen_scores(model, prompt: str, z: torch.Tensor, steps: int, n_first: int = 1, guidance_scale: float = 1.0,
               negative_prompt: str = "") -> np.ndarray:
    """Wen et al.'s wen(c) per latent (n,): the mean over the first ``n_first`` DDIM steps of the ``steps``-step
    sampler of ‖ε(x_t, c) − ε(x_t, ∅)‖₂ (every latent value), x_t following the sampler under ``prompt`` at
    ``guidance_scale`` (against ``negative_prompt``, the pipeline's ∅; empty by default) from x_T = z."""
    if int(n_first) < 1:
        raise ValueError(f"n_first (Wen et al.'s first steps) must be at least 1, got {n_first}")
    eps_c = model.eps_model(prompt=prompt)
    eps_u = model.eps_model(prompt=negative_prompt)
    a = model.schedule.alphas_cumprod.double()
    chain = model.schedule.chain(int(steps))[:int(n_first)]
    x = z.to(model.device, model.dtype)
    total = torch.zeros(len(x), dtype=torch.float64)
    with torch.no_grad():
        for t, s in chain:
            ec, eu = eps_c(x, t), eps_u(x, t)
            total += torch.linalg.vector_norm((ec - eu).reshape(len(x), -1).double(), dim=1).cpu()
            eps = eu + float(guidance_scale) * (ec - eu)
            a_t, a_s = float(a[t]), 1.0 if s < 0 else float(a[s])
            x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
            x = math.sqrt(a_s) * x0 + math.sqrt(1 - a_s) * eps
    return (total / len(chain)).numpy()


@dataclass
class PromptReport:
    """``prompts``: one row per prompt (caption, memorized when labelled, the features averaged over its samples;
    ratio and d_nearest the smallest over them); ``samples``: one row per sample (prompt index, latent seed,
    descriptors, wen, the nearest-reference columns); ``images`` (n_prompts · per_prompt, D) the samples;
    ``auroc`` the separation table (None without labels); ``params``."""

    prompts: pd.DataFrame
    samples: pd.DataFrame
    images: np.ndarray
    auroc: pd.DataFrame | None
    params: dict = field(default_factory=dict)


def prompt_report(model, prompts: pd.DataFrame, per_prompt: int = 4, seed: int = 0, steps: int | None = None,
                  wen_steps: int = 1, guidance_scale: float = 1.0, reference=None, n_directions: int | None = None,
                  radius: float | None = None, threshold: float | None = None, n_boot: int = 1000,
                  min_count: int = 20, progress=None, conditions: list[dict] | None = None) -> PromptReport:
    """The prompt-list report of a text-to-image ``model`` (see the module docstring): ``prompts`` from
    ``read_prompts``; ``reference`` an image array (N, *sample_shape) from ``read_reference_images`` or None (the
    nearest-neighbour score is off then); descriptors on the ``sampler`` map with a P = ``n_directions`` sketch
    (default: the per-device default) and δ at ``radius`` (default the model's ``delta_radius``). ``conditions``
    (one dict a row of ``prompts``, e.g. a DiT class or {} for an unconditional model) replaces the prompts as the
    rows' conditioning; Wen et al.'s score is then NaN unless the model takes prompts."""
    from explorer.descriptors import local_complexity, local_descriptors
    from explorer.device import compute_view
    from explorer.memorization import THRESHOLD, MemorizationScore, separation_table
    from explorer.views.sizes import default_directions, delta_radius, latent_dim

    if conditions is None and "prompt" not in model.capabilities.conditioning:
        raise UserError(f"model {model.name!r} takes no prompts (conditioning: "
                        f"{', '.join(model.capabilities.conditioning) or 'none'}); a prompt list needs a "
                        "text-to-image pipeline such as Stable Diffusion")
    if int(per_prompt) < 1:
        raise ValueError(f"per_prompt must be at least 1, got {per_prompt}")
    steps = int(model.default_steps if steps is None else steps)
    radius = delta_radius(model) if radius is None else float(radius)
    threshold = THRESHOLD if threshold is None else float(threshold)
    d = latent_dim(model)
    P = default_directions(d) if n_directions is None else min(int(n_directions), d)
    sketch = None if P >= d else P
    say = progress or (lambda fraction, message: None)
    captions = list(prompts["caption"])
    view = compute_view(model)
    z = torch.stack([model.latent_of_seed(int(seed) + i) for i in range(int(per_prompt))])
    scorer = None
    if reference is not None:
        scorer = MemorizationScore(threshold=threshold).fit(np.asarray(reference).reshape(len(reference), -1))
    t0 = time.perf_counter()
    rows, images = [], []
    texts = "prompt" in model.capabilities.conditioning
    for k, caption in enumerate(captions):
        cond = {"prompt": caption} if conditions is None else dict(conditions[k])
        if guidance_scale != 1:
            cond["guidance_scale"] = guidance_scale
        G = view.generator("sampler", steps=steps, **cond)
        zv = z.to(view.device, view.dtype)
        with torch.no_grad():
            x = G(zv).reshape(len(z), -1).double().cpu().numpy()
        desc = local_descriptors(G, zv, n_directions=sketch, seed=0)
        lc = local_complexity(G, zv, radius, n_directions=sketch, seed=0)
        wen = (wen_scores(view, cond.get("prompt", ""), z, steps, wen_steps, guidance_scale,
                          cond.get("negative_prompt", "")) if texts else np.full(len(z), np.nan))
        row = pd.DataFrame({"prompt": k, "latent_seed": np.arange(int(seed), int(seed) + len(z)), "psi": desc.psi,
                            "nu": desc.nu, "nu_eff": desc.nu_eff, "delta": lc.delta, "wen": wen})
        if scorer is not None:
            score = scorer.score(x)
            row["d_nearest"], row["ratio"] = score["d_nearest"].to_numpy(), score["ratio"].to_numpy()
            row["nearest_index"] = score["nearest_index"].to_numpy()
        else:
            row["d_nearest"], row["ratio"] = np.nan, np.nan
        rows.append(row)
        images.append(x)
        say((k + 1) / len(captions), f"prompt {k + 1}/{len(captions)} ({time.perf_counter() - t0:.0f} s)")
    samples = pd.concat(rows, ignore_index=True)
    groups = samples.groupby("prompt", sort=True)
    table = pd.DataFrame({"caption": captions})
    for f in ("psi", "nu", "nu_eff", "delta", "wen"):
        table[f] = groups[f].mean().to_numpy()
    for f in ("d_nearest", "ratio"):
        table[f] = groups[f].min().to_numpy()
    table["copied"] = table["ratio"] < threshold if scorer is not None else False
    auroc = None
    if "memorized" in prompts.columns:
        table.insert(1, "memorized", prompts["memorized"].to_numpy(dtype=bool))
        auroc = separation_table({f: table[f].to_numpy() for f in PROMPT_FEATURES}, table["memorized"].to_numpy(),
                                 n_boot=n_boot, seed=int(seed), min_count=min_count)
    params = {"model": model.name, "weights_hash": model.weights_hash, "n_prompts": len(captions),
              "conditions": None if conditions is None else [dict(c) for c in conditions],
              "per_prompt": int(per_prompt), "seed": int(seed), "steps": steps, "map": "sampler",
              "guidance_scale": float(guidance_scale), "wen_steps": int(wen_steps), "P": int(P), "radius": radius,
              "threshold": threshold, "labelled": auroc is not None,
              "nearest": (f"against {len(reference)} reference images" if scorer is not None else
                          "off: the pipeline has no training set and no reference image folder was given"),
              "seconds": round(time.perf_counter() - t0, 2)}
    return PromptReport(table, samples, np.concatenate(images), auroc, params)

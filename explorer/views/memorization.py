"""The Memorization view's heavy part (Streamlit-free): the disk-cached report.

``report_cached`` is the one entry point: the page and the CLI (``python -m explorer memorization``) both call it,
so a CLI run fills the page's cache. It stores the threshold-independent part of
``explorer.memorization.memorization_report`` (samples, descriptors, log p, nearest / second-nearest distinct
training image and the ratio) as one ``memorization-<key>`` entry, and each threshold's AUROC table as a
``memorization_auroc-<key>`` entry, so moving the threshold never recomputes samples or descriptors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from explorer import cache
from explorer.memorization import FEATURES, THRESHOLD, MemorizationReport, memorization_report
from explorer.memorization import separation_table as _separation_table
from explorer.views.sizes import delta_radius, sizes_for

#: Bumped when what ``report_cached`` stores changes meaning (part of every key, with cache.CODE_VERSION).
CACHE_VERSION = 1


def report_params(model, n: int, seed: int, steps: int | None, likelihood: bool = True,
                  n_directions: int | None = None, radius: float | None = None,
                  duplicate_tol: float | None = None) -> dict:
    """The threshold-independent parameters that name a report in the cache (steps resolved)."""
    if int(n) < 1:
        raise ValueError(f"n (the number of samples) must be at least 1, got {n}")
    return {"model": model.name, "n": int(n), "seed": int(seed),
            "steps": int(model.default_steps if steps is None else steps), "map": "sampler",
            "likelihood": bool(likelihood), "n_directions": None if n_directions is None else int(n_directions),
            "radius": delta_radius(model) if radius is None else float(radius),
            "duplicate_tol": None if duplicate_tol is None else float(duplicate_tol), "version": CACHE_VERSION}


def report_is_cached(model, n: int, seed: int, steps: int | None, likelihood: bool = True, **kw) -> bool:
    """Whether ``report_cached`` would read the samples and descriptors from disk (no confirm needed)."""
    return cache.exists("memorization", report_params(model, n, seed, steps, likelihood, **kw), model.weights_hash,
                        dtype="float64")


def report_cost(model, n: int, steps: int | None, likelihood: bool = True) -> float:
    """Estimated seconds of an uncached report on a contended 2-core CPU: the full Jacobian (D directions) and
    δ's cross-polytope through every sampler step, per sample (measured: 64 digit samples × 20 steps ≈ 8 s,
    64 ring samples × 50 steps ≈ 2 s; with a margin of 1.5)."""
    steps = int(model.default_steps if steps is None else steps)
    d = int(np.prod(model.sample_shape))
    per = 4.7e-4 + 9.3e-5 * d
    return 1.0 + 1.5 * int(n) * steps * per * (1.0 if likelihood else 0.9)


def _table_arrays(table: pd.DataFrame, prefix: str) -> dict[str, np.ndarray]:
    out = {f"{prefix}columns": np.array(list(table.columns), dtype=str)}
    for name in table.columns:
        col = table[name].to_numpy()
        out[f"{prefix}{name}"] = col.astype(str) if col.dtype == object else col
    return out


def _table_from(arrays: Mapping[str, np.ndarray], prefix: str) -> pd.DataFrame:
    return pd.DataFrame({str(c): arrays[f"{prefix}{c}"] for c in arrays[f"{prefix}columns"]})


def report_cached(model, n: int | None = None, seed: int = 0, steps: int | None = None, threshold: float = THRESHOLD,
                  progress: Callable | None = None, *, likelihood: bool = True, n_boot: int | None = None,
                  n_directions: int | None = None, radius: float | None = None, duplicate_tol: float | None = None,
                  batch_size: int = 64, preset: str = "default") -> tuple[MemorizationReport, dict]:
    """``memorization_report(model, n, seed, steps, ..., threshold)`` through the disk cache.

    Returns ``(report, record)``: the same report ``memorization_report`` gives for these arguments (the table's
    ``memorized`` column and the AUROC table at ``threshold``), and a record with ``hit`` (everything came from
    disk), ``seconds`` (compute time of the samples and descriptors), ``key`` and ``params``. ``n`` and
    ``n_boot`` default to the sizes of ``preset``. ``progress(fraction, message)`` is called while computing.
    """
    size = sizes_for(model, preset)
    n = size["mem_n"] if n is None else int(n)
    n_boot = size["mem_boot"] if n_boot is None else int(n_boot)
    if not 0 < float(threshold) <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    params = report_params(model, n, seed, steps, likelihood, n_directions, radius, duplicate_tol)
    fresh: dict = {}

    def compute():
        rep = memorization_report(model, n=n, seed=int(seed), steps=params["steps"], n_directions=n_directions,
                                  radius=radius, batch_size=batch_size, likelihood=likelihood,
                                  threshold=float(threshold), duplicate_tol=duplicate_tol, n_boot=n_boot,
                                  progress=progress)
        fresh["report"] = rep
        return {"samples": rep.samples, **_table_arrays(rep.table, "t_"),
                "params_json": np.array(json.dumps(cache._jsonable(rep.params)))}

    arrays, record = cache.cached("memorization", params, compute, weights_hash=model.weights_hash, dtype="float64")
    table = _table_from(arrays, "t_")
    table["memorized"] = table["ratio"].to_numpy() < float(threshold)
    rparams = {**json.loads(str(arrays["params_json"])), "threshold": float(threshold), "n_boot": n_boot}

    def compute_auroc():
        if "report" in fresh:  # just computed at this threshold: reuse its table
            return _table_arrays(fresh["report"].auroc, "a_")
        auroc = _separation_table({f: table[f].to_numpy() for f in FEATURES}, table["memorized"].to_numpy(),
                                  n_boot=n_boot, seed=int(seed))
        return _table_arrays(auroc, "a_")

    a_arrays, a_record = cache.cached("memorization_auroc", {**params, "threshold": float(threshold),
                                                             "n_boot": n_boot},
                                      compute_auroc, weights_hash=model.weights_hash, dtype="float64")
    auroc = _table_from(a_arrays, "a_")
    report = MemorizationReport(np.asarray(arrays["samples"]), table, auroc, rparams)
    return report, {**record, "hit": bool(record["hit"] and a_record["hit"]), "auroc_key": a_record["key"]}


# ---------------------------------------------------------------------------- prompt lists (text-to-image pipelines)
def _reference(model, reference_dir):
    """(images, digest) of a reference image folder, or (None, None)."""
    if not reference_dir:
        return None, None
    import hashlib

    from explorer.prompt_memorization import read_reference_images

    images, names = read_reference_images(reference_dir, model.sample_shape)
    digest = hashlib.sha256(images.tobytes() + "\n".join(names).encode()).hexdigest()[:16]
    return images, digest


def prompt_report_params(model, captions, labels, per_prompt: int, seed: int, steps: int | None, wen_steps: int,
                         guidance_scale: float, reference_digest, conditions=None, n_directions=None) -> dict:
    """The parameters that name a prompt-list report in the cache (steps resolved; the reference images by the
    digest of their pixels and names)."""
    return {"model": model.name, "captions": [str(c) for c in captions],
            "labels": None if labels is None else [bool(v) for v in labels], "per_prompt": int(per_prompt),
            "seed": int(seed), "steps": int(model.default_steps if steps is None else steps),
            "wen_steps": int(wen_steps), "guidance_scale": float(guidance_scale), "reference": reference_digest,
            "conditions": None if conditions is None else [dict(c) for c in conditions],
            "n_directions": None if n_directions is None else int(n_directions), "version": CACHE_VERSION}


def prompt_report_is_cached(model, captions, labels, per_prompt, seed, steps, wen_steps, guidance_scale,
                            reference_dir=None, conditions=None, n_directions=None) -> bool:
    _, digest = _reference(model, reference_dir)
    return cache.exists("prompt_memorization", prompt_report_params(
        model, captions, labels, per_prompt, seed, steps, wen_steps, guidance_scale, digest, conditions,
        n_directions), model.weights_hash, dtype="float64")


def prompt_report_cached(model, captions, labels=None, per_prompt: int = 4, seed: int = 0, steps: int | None = None,
                         wen_steps: int = 1, guidance_scale: float = 1.0, reference_dir=None, conditions=None,
                         n_directions: int | None = None, n_boot: int = 200, min_count: int = 5, progress=None):
    """``explorer.prompt_memorization.prompt_report`` through the disk cache (the page's entry point): the rows'
    ``captions`` (prompts, or names of ``conditions``), optional ``labels`` (memorized or not), the reference images
    of ``reference_dir`` (None: the nearest-neighbour score is off). Returns ``(report, record)``."""
    from explorer.prompt_memorization import PromptReport, prompt_report

    images, digest = _reference(model, reference_dir)
    params = prompt_report_params(model, captions, labels, per_prompt, seed, steps, wen_steps, guidance_scale, digest,
                                  conditions, n_directions)
    prompts = pd.DataFrame({"caption": params["captions"]})
    if labels is not None:
        prompts["memorized"] = np.asarray(params["labels"], dtype=bool)

    def compute():
        rep = prompt_report(model, prompts, per_prompt=per_prompt, seed=seed, steps=params["steps"],
                            wen_steps=wen_steps, guidance_scale=guidance_scale, reference=images,
                            n_directions=n_directions, n_boot=n_boot, min_count=min_count, progress=progress,
                            conditions=conditions)
        out = {"images": rep.images, **_table_arrays(rep.prompts, "p_"), **_table_arrays(rep.samples, "s_"),
               "params_json": np.array(json.dumps(cache._jsonable(rep.params)))}
        if rep.auroc is not None:
            out.update(_table_arrays(rep.auroc, "a_"))
        return out

    arrays, record = cache.cached("prompt_memorization", params, compute, weights_hash=model.weights_hash,
                                  dtype="float64")
    auroc = _table_from(arrays, "a_") if "a_columns" in arrays else None
    report = PromptReport(_table_from(arrays, "p_"), _table_from(arrays, "s_"), np.asarray(arrays["images"]), auroc,
                          json.loads(str(arrays["params_json"])))
    return report, record

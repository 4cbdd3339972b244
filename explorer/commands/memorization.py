"""Memorized vs novel samples, and the AUROC of each local descriptor (ψ, ν, ν_eff, δ) for telling them apart.

Example:
  python -m explorer memorization --model toy2d/ring --n 512 --out runs/ring

A sample is memorized when its distance to the nearest training image is below THRESHOLD (1/3) of its
distance to the second-nearest distinct one (near-duplicate training images count as one; see
explorer/memorization.py). Sample i is generated from the latent of seed SEED + i. Writes OUT.csv (one row
per sample), OUT.auroc.csv (one row per feature, with the baselines log p and d_nearest) and OUT.json
(parameters, counts and seconds); a trailing .csv in OUT is ignored.

Text-to-image pipelines take a prompt list instead (a CSV or JSONL with a ``caption`` field and an optional
``memorized`` label):
  python -m explorer memorization --model FOLDER --prompts prompts.jsonl --reference-images DIR --out runs/sd

Per prompt: the mean descriptors of its PER_PROMPT samples and Wen et al.'s ‖ε(x_t, c) − ε(x_t, ∅)‖ over the first
WEN_STEPS steps; the nearest-neighbour ratio against the reference images (PNG/JPEG) when a folder is given, else
off (a pipeline has no training set). Writes OUT.prompts.csv, OUT.samples.csv, OUT.auroc.csv (with labels only) and
OUT.json; see explorer/prompt_memorization.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from explorer import files
from explorer.commands import _args
from explorer.distributed.cli import add_ray_arguments, session
from explorer.models import DEFAULT_MODEL
from explorer.provenance import stamped


def add_arguments(p) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.add_argument("--n", type=_args.positive_int, default=512, help="number of samples (default 512)")
    p.add_argument("--seed", type=_args.seed, default=0, help="sample i uses the latent of seed SEED + i (default 0)")
    p.add_argument("--steps", type=_args.positive_int, default=None, help="DDIM steps S (default: the model's)")
    p.add_argument("--n-directions", type=_args.positive_int, default=None,
                   help="sketch size P (default: full Jacobian)")
    p.add_argument("--radius", type=_args.positive_float, default=None,
                   help="δ's cross-polytope radius (default: the model's rule, explorer.views.sizes.delta_radius)")
    p.add_argument("--threshold", type=_args.fraction, default=1 / 3,
                   help="memorized when the ratio is below (default 1/3)")
    p.add_argument("--duplicate-tol", type=_args.nonnegative_float, default=None,
                   help="training images this close are one image (default: 1/3 of the median NN distance)")
    p.add_argument("--no-likelihood", action="store_true", help="skip log p (the exact DDIM likelihood)")
    p.add_argument("--batch-size", type=_args.positive_int, default=64,
                   help="latents per descriptor batch (default 64)")
    p.add_argument("--out", type=_args.output_file, required=True,
                   help="output prefix OUT: writes OUT.csv, OUT.auroc.csv, OUT.json")
    add_ray_arguments(p)
    g = p.add_argument_group("prompt lists (text-to-image pipelines)")
    g.add_argument("--prompts", type=Path, default=None,
                   help="CSV or JSONL with a 'caption' field and an optional 'memorized' label: one row per prompt")
    g.add_argument("--reference-images", type=Path, default=None,
                   help="folder of PNG/JPEG images the samples' nearest neighbours are taken in (default: none, the "
                        "nearest-neighbour score is off)")
    g.add_argument("--per-prompt", type=_args.positive_int, default=4, help="samples per prompt (default 4)")
    g.add_argument("--wen-steps", type=_args.positive_int, default=1,
                   help="first DDIM steps of Wen et al.'s score (default 1)")
    g.add_argument("--guidance-scale", type=float, default=1.0,
                   help="classifier-free guidance scale of the samples' trajectories (default 1)")


def output_paths(out) -> dict[str, Path]:
    """OUT.csv, OUT.auroc.csv and OUT.json for OUT given with or without .csv."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix == ".csv" else out
    return {k: base.with_name(base.name + ext) for k, ext in
            (("table", ".csv"), ("auroc", ".auroc.csv"), ("json", ".json"))}


def run(args) -> int:
    import pandas as pd

    from explorer.errors import UserError
    from explorer.jobs.console import ConsoleProgress
    from explorer.models import load_model
    from explorer.views.memorization import report_cached

    start = time.perf_counter()
    if args.reference_images is not None and args.prompts is None:
        raise UserError("--reference-images goes with --prompts (a text-to-image pipeline's prompt list); built-in "
                        "models compare their samples with their own training set")
    model = load_model(args.model)
    if args.prompts is not None:
        return _run_prompts(args, model, start)

    # through the disk cache the app reads too: the Memorization page then opens this run instantly
    # --ray: samples, descriptors and log p of the samples sharded over Ray workers
    with session(args), ConsoleProgress(f"memorization report of {args.n} samples") as progress:
        report, cache_record = report_cached(model, args.n, args.seed, args.steps, args.threshold, progress,
                                             likelihood=not args.no_likelihood, n_boot=1000,
                                             n_directions=args.n_directions, radius=args.radius,
                                             duplicate_tol=args.duplicate_tol, batch_size=args.batch_size)
    paths = output_paths(args.out)
    paths["table"].parent.mkdir(parents=True, exist_ok=True)
    report.table.to_csv(paths["table"], index=False)
    report.auroc.to_csv(paths["auroc"], index=False)
    counts = report.counts
    record = {"command": "memorization", **report.params, "counts": counts, "cache_hit": bool(cache_record["hit"]),
              "seconds": round(time.perf_counter() - start, 2)}
    files.write_json(paths["json"], stamped(record))
    print(f"memorized: {counts['memorized']} / {counts['n']} samples (ratio < {args.threshold:.3g}); "
          f"{args.model}, {report.params['steps']} steps")
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(report.auroc.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {', '.join(map(str, paths.values()))} in {record['seconds']} s", file=sys.stderr)
    return 0


def prompt_output_paths(out) -> dict[str, Path]:
    """OUT.prompts.csv, OUT.samples.csv, OUT.auroc.csv and OUT.json for OUT given with or without .csv."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix == ".csv" else out
    return {k: base.with_name(base.name + ext) for k, ext in
            (("prompts", ".prompts.csv"), ("samples", ".samples.csv"), ("auroc", ".auroc.csv"), ("json", ".json"))}


def _run_prompts(args, model, start: float) -> int:
    import pandas as pd

    from explorer.jobs.console import ConsoleProgress
    from explorer.prompt_memorization import prompt_report, read_prompts, read_reference_images

    prompts = read_prompts(args.prompts)
    reference = None
    if args.reference_images is not None:
        reference, _ = read_reference_images(args.reference_images, model.sample_shape)
    with ConsoleProgress(f"memorization of {len(prompts)} prompts") as progress:
        rep = prompt_report(model, prompts, per_prompt=args.per_prompt, seed=args.seed, steps=args.steps,
                            wen_steps=args.wen_steps, guidance_scale=args.guidance_scale, reference=reference,
                            n_directions=args.n_directions, radius=args.radius, threshold=args.threshold,
                            progress=progress)
    paths = prompt_output_paths(args.out)
    paths["prompts"].parent.mkdir(parents=True, exist_ok=True)
    rep.prompts.to_csv(paths["prompts"], index=False)
    rep.samples.to_csv(paths["samples"], index=False)
    written = [paths["prompts"], paths["samples"], paths["json"]]
    if rep.auroc is not None:
        rep.auroc.to_csv(paths["auroc"], index=False)
        written.insert(2, paths["auroc"])
    record = {"command": "memorization", "prompts": str(args.prompts), **rep.params,
              "seconds": round(time.perf_counter() - start, 2)}
    files.write_json(paths["json"], stamped(record))
    if reference is None:
        print("nearest-neighbour score off: no --reference-images folder, and a pipeline has no training set")
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        cols = [c for c in ("caption", "memorized", "psi", "nu_eff", "delta", "wen", "ratio") if c in rep.prompts]
        print(rep.prompts[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        if rep.auroc is not None:
            print(rep.auroc.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {', '.join(map(str, written))} in {record['seconds']} s", file=sys.stderr)
    return 0

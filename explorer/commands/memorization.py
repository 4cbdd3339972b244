"""Memorized vs novel samples, and the AUROC of each local descriptor (ψ, ν, ν_eff, δ) for telling them apart.

Example:
  python -m explorer memorization --model toy2d/ring --n 512 --out runs/ring

A sample is memorized when its distance to the nearest training image is below THRESHOLD (1/3) of its
distance to the second-nearest distinct one (near-duplicate training images count as one; see
explorer/memorization.py). Sample i is generated from the latent of seed SEED + i. Writes OUT.csv (one row
per sample), OUT.auroc.csv (one row per feature, with the baselines log p and d_nearest) and OUT.json
(parameters, counts and seconds); a trailing .csv in OUT is ignored.
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


def output_paths(out) -> dict[str, Path]:
    """OUT.csv, OUT.auroc.csv and OUT.json for OUT given with or without .csv."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix == ".csv" else out
    return {k: base.with_name(base.name + ext) for k, ext in
            (("table", ".csv"), ("auroc", ".auroc.csv"), ("json", ".json"))}


def run(args) -> int:
    import pandas as pd

    from explorer.jobs.console import ConsoleProgress
    from explorer.models import load_model
    from explorer.views.memorization import report_cached

    start = time.perf_counter()
    model = load_model(args.model)

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

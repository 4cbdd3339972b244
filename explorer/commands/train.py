"""Train a built-in model reproducibly from a seed and write its safetensors + JSON.

Examples:
  python -m explorer train toy2d --dataset moons            # writes assets/toy2d/moons.*
  python -m explorer train toy2d --csv points.csv --out my_models
  python -m explorer train digits --variant memorized       # writes assets/digits/memorized.*
"""

from __future__ import annotations

import sys
from pathlib import Path

from explorer.models import ASSETS


def add_arguments(p) -> None:
    p.add_argument("family", choices=["toy2d", "digits"], help="model family")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=["moons", "circles", "ring", "spiral"], help="toy2d: built-in data set")
    src.add_argument("--csv", type=Path, help="toy2d: CSV of 2-D points (two numeric columns, optional header)")
    src.add_argument("--variant", choices=["full", "memorized"], help="digits: which built-in digit model")
    p.add_argument("--seed", type=int, default=0, help="seed of data, initialisation and batches (default 0)")
    p.add_argument("--iterations", type=int, default=None,
                   help="training iterations (default: toy2d 15000, digits/full 30000, digits/memorized 60000)")
    p.add_argument("--out", type=Path, default=ASSETS, help="output folder (default: assets/)")


def _progress(i: int, total: int, loss: float) -> None:
    print(f"\r  iteration {i}/{total}  loss {loss:.4f}", end="\n" if i == total else "", file=sys.stderr, flush=True)


def run(args) -> int:
    if args.family == "digits":
        if not args.variant:
            raise ValueError("train digits needs --variant full or --variant memorized")
        from explorer.models.digits import train_builtin as train_digits

        record = train_digits(args.variant, args.out, seed=args.seed, iterations=args.iterations, progress=_progress)
        q = record["quality"]
        print(f"wrote {Path(args.out) / 'digits' / args.variant}.safetensors and .json in {record['train_seconds']} s; "
              f"{q['confident_fraction']:.1%} of {q['n']} samples confidently classified (gate 80%), "
              f"{q['memorized_fraction']:.1%} memorized")
        return 0
    from explorer.models.toy2d import train_builtin, train_csv

    if args.variant or not (args.dataset or args.csv):
        raise ValueError("train toy2d needs --dataset NAME or --csv FILE")
    if args.dataset:
        record = train_builtin(args.dataset, args.out, seed=args.seed, iterations=args.iterations, progress=_progress)
        where = Path(args.out) / "toy2d" / args.dataset
    else:
        record, where = train_csv(args.csv, args.out, seed=args.seed, iterations=args.iterations, progress=_progress)
    q = record["quality"]
    print(f"wrote {where}.safetensors and .json in {record['train_seconds']} s; "
          f"sliced Wasserstein ratio to the data's own {q['swd_ratio']:.3f} (gate 1.5)")
    return 0

"""Train a built-in model reproducibly from a seed and write its safetensors + JSON.

Models go to your own folder, $EXPLORER_HOME/models (default ~/.explorer/models), as FAMILY/NAME.safetensors
beside FAMILY/NAME.json; load one with load_model("PATH.safetensors") or the app's "Add a trained model".
Training never overwrites the shipped models in assets/ (maintainers: --replace-builtin) nor an existing
model (--overwrite). A model that fails its quality gate (toy2d: sliced Wasserstein ratio <= 1.5; digits: the
classifier and memorization gates) is not written unless --allow-failed-gate; its record then says
"gate_passed": false.

Examples:
  python -m explorer train toy2d --dataset moons            # writes ~/.explorer/models/toy2d/moons.*
  python -m explorer train toy2d --csv points.csv --out my_models
  python -m explorer train digits --variant memorized --replace-builtin   # maintainers: assets/digits/memorized.*
"""

from __future__ import annotations

import sys
from pathlib import Path

from explorer import files
from explorer.commands import _args
from explorer.errors import UserError


def add_arguments(p) -> None:
    p.add_argument("family", choices=["toy2d", "digits"], help="model family")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=["moons", "circles", "ring", "spiral"], help="toy2d: built-in data set")
    src.add_argument("--csv", type=Path, help="toy2d: CSV of 2-D points (two numeric columns, optional header)")
    src.add_argument("--variant", choices=["full", "memorized"], help="digits: which built-in digit model")
    p.add_argument("--seed", type=_args.seed, default=0, help="seed of data, initialisation and batches (default 0)")
    p.add_argument("--iterations", type=_args.positive_int, default=None,
                   help="training iterations, at least 1 (default: toy2d 15000, digits/full 30000, "
                        "digits/memorized 60000)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: $EXPLORER_HOME/models, i.e. ~/.explorer/models); never assets/")
    p.add_argument("--overwrite", action="store_true", help="replace a model of the same name in the output folder")
    p.add_argument("--allow-failed-gate", action="store_true",
                   help="write the model even when it fails its quality gate (its record says gate_passed: false)")
    p.add_argument("--replace-builtin", action="store_true",
                   help="maintainers: retrain a built-in model in place, over the shipped assets/FAMILY/NAME.* "
                        "(--dataset or --variant only; no --out)")


def _progress(i: int, total: int, loss: float) -> None:
    print(f"\r  iteration {i}/{total}  loss {loss:.4f}", end="\n" if i == total else "", file=sys.stderr, flush=True)


def _gate_note(record: dict) -> str:
    return f"quality gate {'passed' if record['gate_passed'] else 'FAILED'}: {record['gate']}"


def run(args) -> int:
    if args.replace_builtin:
        if args.csv is not None:
            raise UserError("--replace-builtin retrains a built-in model (--dataset or --variant); a model trained "
                            "on your CSV goes to your own folder")
        if args.out is not None:
            raise UserError("--replace-builtin writes over the shipped model in assets/; it takes no --out")
        out = files.ASSETS
    else:
        out = files.user_models_dir() if args.out is None else args.out
    flags = {"overwrite": args.overwrite, "allow_failed_gate": args.allow_failed_gate}
    if args.family == "digits":
        if not args.variant:
            raise UserError("train digits needs --variant full or --variant memorized")
        from explorer.models.digits import train_builtin as train_digits

        record = train_digits(args.variant, out, seed=args.seed, iterations=args.iterations, progress=_progress,
                              replace_builtin=args.replace_builtin, **flags)
        q = record["quality"]
        print(f"wrote {Path(out) / 'digits' / args.variant}.safetensors and .json in {record['train_seconds']} s; "
              f"{q['confident_fraction']:.1%} of {q['n']} samples confidently classified, "
              f"{q['memorized_fraction']:.1%} memorized; {_gate_note(record)}")
        return 0
    from explorer.models.toy2d import train_builtin, train_csv

    if args.variant or not (args.dataset or args.csv):
        raise UserError("train toy2d needs --dataset NAME or --csv FILE")
    if args.dataset:
        record = train_builtin(args.dataset, out, seed=args.seed, iterations=args.iterations, progress=_progress,
                               replace_builtin=args.replace_builtin, **flags)
        where = Path(out) / "toy2d" / args.dataset
    else:
        record, where = train_csv(args.csv, out, seed=args.seed, iterations=args.iterations, progress=_progress,
                                  **flags)
    print(f"wrote {where}.safetensors and .json in {record['train_seconds']} s; {_gate_note(record)}")
    return 0

"""The convergence study (Kim et al., Figure 4): graph distance error vs number of points, as a table.

On an analytic ring density (8 Gaussians, like toy2d/ring) between opposite points, at a large and a small λ,
for uniform points and points drawn from p; the reference is the eikonal distance by fast marching on a fine grid
(explorer.geodesics.eikonal), independent of graphs and paths.
Prints the table; --out writes it as CSV with a .json of parameters beside it. Example:
  python -m explorer convergence --sizes 250 500 1000 2000 --lams 10 0.01 --out fig4.csv
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from explorer import files
from explorer.commands import _args
from explorer.provenance import stamped


def add_arguments(p) -> None:
    p.add_argument("--sizes", type=_args.int_at_least(2), nargs="+", default=[250, 500, 1000, 2000],
                   help="numbers of points")
    p.add_argument("--lams", type=_args.positive_float, nargs="+", default=[10.0, 0.01],
                   help="λ values (default 10 0.01)")
    p.add_argument("--p0", type=_args.positive_float, default=1.0, help="p0 (default 1.0)")
    p.add_argument("--k", type=_args.positive_int, default=None,
                   help="neighbours of the k-NN graph (default: 10·sqrt(N/250), growing with N)")
    p.add_argument("--n-quad", type=_args.positive_int, default=3, help="Gauss–Legendre nodes per edge (default 3)")
    p.add_argument("--ref-grid", type=_args.int_at_least(21), default=401,
                   help="nodes per side of the reference's eikonal grid over the box (default 401)")
    p.add_argument("--repeats", type=_args.positive_int, default=2, help="draws per size, averaged (default 2)")
    p.add_argument("--seed", type=_args.seed, default=0, help="seed (default 0)")
    p.add_argument("--out", type=_args.output_file, default=None, help="CSV file for the table (a .json beside it)")


COLUMNS = ["sampling", "lam", "n", "k", "distance", "reference", "rel_error", "rel_error_std", "n_disconnected"]


def format_table(rows: list[dict]) -> str:
    """The rows as a fixed-width text table."""
    lines = ["  ".join(f"{c:>14}" for c in COLUMNS)]
    for r in rows:
        lines.append("  ".join(f"{r[c]:>14.6g}" if isinstance(r[c], float) else f"{r[c]!s:>14}" for c in COLUMNS))
    return "\n".join(lines)


def run(args) -> int:
    from explorer.geodesics.convergence import convergence_study

    if min(args.sizes) < 2 or args.repeats < 1 or args.ref_grid < 21:
        raise ValueError("--sizes must be at least 2, --repeats at least 1, --ref-grid at least 21")
    t0 = time.perf_counter()
    rows = convergence_study(sizes=tuple(args.sizes), lams=tuple(args.lams), p0=args.p0, k=args.k,
                             n_quad=args.n_quad, ref_grid=args.ref_grid, n_repeats=args.repeats, seed=args.seed)
    print(format_table(rows))
    if args.out is not None:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")}
        files.write_json(out.with_suffix(".json"), stamped(
                         {"command": "convergence", "parameters": params,
                          "density": "ring_density() (8 Gaussians, std 0.2)",
                          "reference": "eikonal distance, second-order fast marching on the --ref-grid grid",
                          "seconds": round(time.perf_counter() - t0, 3)}))
        print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0

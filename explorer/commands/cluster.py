"""Spectral clustering of a model's training data: geodesic affinity vs the c≡1 graph and Euclidean baselines.

Affinity exp(−d²/2σ²) (σ: median finite distance) of each distance; ARI and NMI against the data's labels.
Prints the table; --out writes it as CSV with a .json of parameters beside it. Example:
  python -m explorer cluster --model toy2d/moons --n 600 --lam 0.05 --density kde
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from explorer import files
from explorer.commands import _args
from explorer.commands._density import add_density_arguments, load_points_and_density
from explorer.distributed.cli import add_ray_arguments, session
from explorer.provenance import stamped


def add_arguments(p) -> None:
    add_density_arguments(p)
    p.set_defaults(n=600)
    p.add_argument("--n-clusters", type=_args.positive_int, default=None,
                   help="clusters (default: number of distinct labels)")
    p.add_argument("--sigma", type=_args.positive_float, default=None,
                   help="affinity width σ (default: median finite distance)")
    p.add_argument("--out", type=_args.output_file, default=None, help="CSV file for the table (a .json beside it)")
    add_ray_arguments(p)


def run(args) -> int:
    from explorer.embedding import compare_clusterings
    from explorer.geodesics import GenerativeGeodesics

    pd = load_points_and_density(args)
    if pd.labels is None and args.n_clusters is None:
        raise ValueError(f"model {args.model!r} has no training labels; pass --n-clusters")
    # --ray: the density cache (log p at nodes and quadrature points) sharded over Ray workers
    with warnings.catch_warnings(record=True) as caught, session(args):
        warnings.simplefilter("always", RuntimeWarning)
        g = GenerativeGeodesics(lam=args.lam, p0=args.p0, relative=args.relative, log_p_ref=pd.log_p_ref,
                                k=args.k, n_quad=args.n_quad).fit(pd.X, pd.log_density)
    for w in caught:
        print(f"warning: {w.message}")
    mats = {name: g.distance_matrix(kind=name) for name in ("geodesic", "graph", "euclidean")}
    n_inf = int(np.isinf(mats["geodesic"]).sum())
    if n_inf:
        print(f"note: {n_inf} infinite distances ({g.n_components_} components) get affinity 0")
    rows = compare_clusterings(mats, pd.labels, args.n_clusters, sigma=args.sigma, seed=args.seed)
    table = [{k: v for k, v in r.items() if k != "labels"} for r in rows]
    print(f"{'distance':>10}  {'ARI':>7}  {'NMI':>7}  clusters")
    for r in table:
        print(f"{r['distance']:>10}  {r['ari']:7.3f}  {r['nmi']:7.3f}  {r['n_clusters']}")
    if args.out is not None:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(table[0]))
            w.writeheader()
            w.writerows(table)
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")}
        files.write_json(out.with_suffix(".json"), stamped(
                         {"command": "cluster", "parameters": params, "density": pd.info,
                          "n_components": int(g.n_components_), "n_infinite_distances": n_inf}))
        print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0

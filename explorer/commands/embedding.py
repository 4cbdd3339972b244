"""UMAP embeddings and spectral clusterings of geodesic distances over a λ grid, next to the straight-line and
c ≡ 1 graph baselines: the Embedding page's computation, through the same job and disk cache (the page then opens
a CLI run at once).

Writes OUT.npz (the arrays: X, labels, lams, Y_geodesic (L, n, 2), Y_euclidean, Y_graph, clusters_*, scores) and
OUT.csv (ARI and NMI per distance), with OUT.json beside them. Example:
  python -m explorer embedding --model toy2d/moons --n 1000 --lams 0.05 0.3 1 3 10 --out moons
"""

from __future__ import annotations

import sys
import time

import numpy as np

from explorer import files
from explorer.commands import _args
from explorer.distributed.cli import add_ray_arguments, session
from explorer.provenance import stamped


def add_arguments(p) -> None:
    p.add_argument("--model", default="toy2d/ring", help="model spec (default toy2d/ring)")
    p.add_argument("--n", type=_args.int_at_least(2), default=1000,
                   help="training points, a seeded subset (default 1000; at most the training set)")
    p.add_argument("--density", choices=["model", "kde"], default="kde",
                   help="log p of the model (its default likelihood) or a KDE of the training data (default kde)")
    p.add_argument("--lams", type=_args.positive_float, nargs="+", default=[0.05, 0.3, 1.0, 3.0, 10.0],
                   help="λ grid, relative to p_ref (default 0.05 0.3 1 3 10)")
    p.add_argument("--k", type=_args.positive_int, default=10, help="k-NN graph neighbours (default 10)")
    p.add_argument("--n-quad", type=_args.positive_int, default=3, help="Gauss–Legendre nodes per edge (default 3)")
    p.add_argument("--n-neighbors", type=_args.int_at_least(2), default=15, help="UMAP n_neighbors (default 15)")
    p.add_argument("--out", type=_args.output_file, required=True,
                   help="output prefix OUT (writes OUT.npz, OUT.csv, OUT.json)")
    add_ray_arguments(p)


def run(args) -> int:
    from explorer.density.cached import make_density
    from explorer.jobs.console import run_in_foreground
    from explorer.models import load_model
    from explorer.views.embedding import embedding_n, scores_table

    start = time.perf_counter()
    model = load_model(args.model)
    if model.training_set is None:
        raise ValueError(f"model {args.model!r} has no training set to embed")
    n = embedding_n(model, args.n)
    with session(args):  # --ray: the density cache (log p at nodes and quadrature points) on Ray workers
        params = {"density": make_density(model, args.density), "n": n, "lams": sorted(set(args.lams)),
                  "k": args.k, "n_quad": args.n_quad, "n_neighbors": args.n_neighbors}
        arrays, record = run_in_foreground("embedding", model, params)
    out = args.out.with_suffix("") if args.out.suffix in (".npz", ".csv", ".json") else args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out.with_name(out.name + ".npz"), **arrays)
    table = scores_table(arrays)
    table.to_csv(out.with_name(out.name + ".csv"), index=False)
    files.write_json(out.with_name(out.name + ".json"), stamped({
        "command": "embedding", "model": args.model, "weights_hash": model.weights_hash, "n": n,
        "density": params["density"].info, "lams": params["lams"], "k": args.k, "n_quad": args.n_quad,
        "n_neighbors": args.n_neighbors, "n_components": int(arrays["n_components"]),
        "cache_key": record["key"], "cache_hit": bool(record.get("hit")),
        "seconds": round(time.perf_counter() - start, 2)}))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out}.npz, {out}.csv and {out}.json", file=sys.stderr)
    return 0

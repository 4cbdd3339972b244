"""Generative geodesics on a model's training data: path, distances, affinities and components.

Writes OUT (.npz) and OUT with suffix .json (every parameter and a summary). Examples:
  python -m explorer geodesics --model toy2d/ring --n 2000 --lam 0.05 --source 0 --target 1 --out ring.npz
  python -m explorer geodesics --model digits/full --n 1000 --k 10 --compare 10 --out digits.npz
"""

from __future__ import annotations

import sys
import time
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
    p.add_argument("--source", type=_args.nonnegative_int, default=0, help="index of the start point (default 0)")
    p.add_argument("--target", type=_args.nonnegative_int, default=1, help="index of the end point (default 1)")
    p.add_argument("--background", type=_args.nonnegative_int, default=None,
                   help="uniform background points over the bounding box, appended after the data, so that a "
                        "geodesic can cross empty regions (default 500 for 2-D models; 0 for image models, where "
                        "a uniform point in the pixel box has density ≈ 0; 0: data only)")
    p.add_argument("--refine", type=_args.nonnegative_int, default=0,
                   help="refine the path into a polyline of this many points by L-BFGS, with gradients of the "
                        "model's log p (exact almost everywhere) or of the KDE (default 0: off)")
    p.add_argument("--compare", type=_args.nonnegative_int, default=0,
                   help="also write the refined geodesic, the straight line and the latent slerp between source and "
                        "target, each this many points, with log p along each (default 0: off)")
    p.add_argument("--out", type=_args.output_file, required=True,
                   help="output .npz file (a .json of parameters beside it)")
    add_ray_arguments(p)


def run(args) -> int:
    from explorer.geodesics import GenerativeGeodesics, add_background_points, refine_path

    t0 = time.perf_counter()
    pd = load_points_and_density(args)
    if args.background is None:
        args.background = 0 if pd.info.get("image_shape") else 500
    X, is_bg = add_background_points(pd.X, args.background, seed=args.seed)
    for name in ("source", "target"):
        if not 0 <= getattr(args, name) < len(X):
            raise ValueError(f"--{name} must be an index in [0, {len(X)}); got {getattr(args, name)}")
    # --ray: the density cache (log p at nodes and quadrature points) sharded over Ray workers
    with warnings.catch_warnings(record=True) as caught, session(args):
        warnings.simplefilter("always", RuntimeWarning)
        g = GenerativeGeodesics(lam=args.lam, p0=args.p0, relative=args.relative, log_p_ref=pd.log_p_ref,
                                k=args.k, n_quad=args.n_quad).fit(X, pd.log_density)
        s, t = args.source, args.target
        dist = g.distances(s)
        connected = bool(np.isfinite(dist[t]))
        summary = {"n_points": len(X), "n_background": int(is_bg.sum()), "n_duplicates_merged": g.n_duplicates_,
                   "n_edges": len(g.edges_), "connectivity": g.connectivity_,
                   "n_density_evals": g.n_density_evals_, "log_p_ref_used": g.log_p_ref_,
                   "lam_quantile": g.lam_quantile_, "connected": connected}
        path = np.empty(0, dtype=np.int64)
        refined = np.empty((0, X.shape[1]))
        extra: dict[str, np.ndarray] = {}
        summary["fit_seconds"] = round(time.perf_counter() - t0, 2)
        if connected:
            cmp = g.compare_with_straight(s, t)
            path = cmp.pop("path")
            summary.update(cmp)
            if args.refine:
                if pd.log_density.torch is None:
                    raise ValueError("--refine needs a torch-differentiable density")
                r = refine_path(X[path], pd.log_density.torch, lam=args.lam, p0=args.p0, n_quad=args.n_quad,
                                log_p_ref=g.log_p_ref_, n_points=args.refine)
                refined = r.points
                summary.update(refined_length_before=r.length_before, refined_length_after=r.length_after)
            if args.compare:
                from explorer.geodesics.three_paths import compare_paths
                from explorer.models import load_model

                three = compare_paths(load_model(args.model), X[path], pd.log_density,
                                      getattr(pd.log_density, "torch", None), lam=args.lam, p0=args.p0,
                                      log_p_ref=g.log_p_ref_, n_points=args.compare, n_quad=args.n_quad)
                for name, r in three.items():
                    extra[f"{name}_points"], extra[f"{name}_log_p"] = r["points"], r["log_p"]
                    summary[f"{name}_metric_length"] = r["metric_length"]
    summary["warnings"] = [str(w.message) for w in caught]
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    out = Path(args.out)
    out = out if out.suffix == ".npz" else out.with_name(out.name + ".npz")  # what np.savez writes
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, X=X, is_background=is_bg, path=path, path_points=X[path], refined_path=refined,
             distances=dist, graph_distances=g.graph_distances(s), euclidean_distances=g.euclidean_distances(s),
             affinity=g.affinity(s), components=g.labels_, component_sizes=np.bincount(g.labels_),
             log_p=g.log_p_nodes_[g.node_of_], source=s, target=t, **extra)
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")}
    record = {"command": "geodesics", "parameters": params, "density": pd.info, "summary": summary}
    files.write_json(out.with_suffix(".json"), stamped(record))  # strict JSON: an infinite distance is "inf"
    if not connected:
        print(f"error: points {s} and {t} are not connected ({g.n_components_} components); "
              f"{g.connectivity_.get('fix', '')}. Wrote distances and components to {out}", file=sys.stderr)
        return 1
    print(f"d(source={s}, target={t}) = {summary['geodesic']:.6g} over {len(path)} points "
          f"(straight segment {summary['straight_metric']:.6g}, c≡1 graph {summary['graph_c1']:.6g}, "
          f"Euclidean {summary['euclidean']:.6g}); {g.n_components_} component(s); wrote {out} and .json")
    return 0

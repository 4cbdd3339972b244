"""Generative geodesics on a model's training data: path, distances, affinities and components.

Writes OUT (.npz) and OUT with suffix .json (every parameter and a summary). Examples:
  python -m explorer geodesics --model toy2d/ring --n 2000 --lam 0.05 --source 0 --target 1 --out ring.npz
  python -m explorer geodesics --model digits/full --n 1000 --k 10 --compare 10 --out digits.npz

Two lengths are reported (summary ``length_graph`` and ``length_refined``; ``length`` is the refined one when
there is one): the graph's shortest path, and, by default wherever log p has an exact gradient (the 2-D models'
discrete likelihood, the KDE), the shortest of that path and the straight segment refined under the continuous
metric and measured with segments cut to |b − a|/64 (``explorer.geodesics.refine_shortest``). The k-NN graph's
zig-zag makes the graph length several per cent too long at any λ and far more at small λ (toy2d/ring, opposite
points: +6 % at λ = 5, +30 % at λ = 0.05 against the eikonal solution; issue 11, item 19, and
bench/bench_geodesic_accuracy.py).
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
    add_density_arguments(p, auto_sizes=True)
    p.add_argument("--source", type=_args.nonnegative_int, default=0, help="index of the start point (default 0)")
    p.add_argument("--target", type=_args.nonnegative_int, default=1, help="index of the end point (default 1)")
    p.add_argument("--background", type=_args.nonnegative_int, default=None,
                   help="uniform background points over the bounding box, appended after the data, so that a "
                        "geodesic can cross empty regions (default 500 for 2-D models; 0 for image models, where "
                        "a uniform point in the pixel box has density ≈ 0; 0: data only)")
    p.add_argument("--refine", type=_args.nonnegative_int, default=None,
                   help="refine the shortest of the graph path and the straight segment under the continuous metric, "
                        "as a polyline of at most this many points (≥ 3), with gradients of the model's exact log p "
                        "(central differences) or of the KDE (default: 64 where the gradient "
                        "is exact, off for image models, whose gradient is the score's approximation; 0: off)")
    p.add_argument("--compare", type=_args.nonnegative_int, default=0,
                   help="also write the refined geodesic, the straight line and the latent slerp between source and "
                        "target, each this many points, with log p along each (default 0: off)")
    p.add_argument("--out", type=_args.output_file, required=True,
                   help="output .npz file (a .json of parameters beside it)")
    add_ray_arguments(p)


def run(args) -> int:
    from explorer.geodesics import GenerativeGeodesics, add_background_points
    from explorer.geodesics.interpolation import REFINE_POINTS, refine_graph_geodesic
    from explorer.geodesics.quadrature import default_n_quad

    t0 = time.perf_counter()
    pd = load_points_and_density(args)
    if args.background is None:
        args.background = 0 if pd.info.get("image_shape") else 500
    X, is_bg = add_background_points(pd.X, args.background, seed=args.seed)
    for name in ("source", "target"):
        if not 0 <= getattr(args, name) < len(X):
            raise ValueError(f"--{name} must be an index in [0, {len(X)}); got {getattr(args, name)}")
    lam_rel = args.lam if args.relative else args.lam / np.exp(pd.log_p_ref)
    n_quad = default_n_quad(lam_rel) if args.n_quad is None else args.n_quad
    n_refine = args.refine
    if n_refine is None:
        n_refine = REFINE_POINTS if getattr(pd.log_density, "gradient", None) == "exact" else 0
    if n_refine and n_refine < 3:
        raise ValueError(f"--refine must be 0 (off) or at least 3 points; got {n_refine}")
    # --ray: the density cache (log p at nodes and quadrature points) sharded over Ray workers
    with warnings.catch_warnings(record=True) as caught, session(args):
        warnings.simplefilter("always", RuntimeWarning)
        g = GenerativeGeodesics(lam=args.lam, p0=args.p0, relative=args.relative, log_p_ref=pd.log_p_ref,
                                k=args.k, n_quad=n_quad).fit(X, pd.log_density)
        s, t = args.source, args.target
        dist = g.distances(s)
        connected = bool(np.isfinite(dist[t]))
        summary = {"n_points": len(X), "n_background": int(is_bg.sum()), "n_duplicates_merged": g.n_duplicates_,
                   "k": g.k_, "n_quad": n_quad, "n_edges": len(g.edges_), "connectivity": g.connectivity_,
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
            summary.update(length_graph=cmp["geodesic"], length_refined=None, length=cmp["geodesic"])
            if n_refine:
                if pd.log_density.torch is None:
                    raise ValueError("--refine needs a torch-differentiable density")
                t1 = time.perf_counter()
                measure = getattr(pd.log_density, "fn", pd.log_density)  # not disk-cached: points seen once
                best = refine_graph_geodesic(X[path], measure, pd.log_density.torch, lam=args.lam, p0=args.p0,
                                             n_quad=n_quad, log_p_ref=g.log_p_ref_, max_points=n_refine)
                refined = best.points
                summary.update(length_refined=best.length, length=best.length,
                               refinement={"start": best.start, "candidates_measured": best.lengths,
                                           "refined_kept": best.refined, "n_points": len(best.points),
                                           "max_step": best.max_step, "n_quad": best.n_quad,
                                           "seconds": round(time.perf_counter() - t1, 2)})
            if args.compare:
                from explorer.geodesics.three_paths import compare_paths
                from explorer.models import load_model

                three = compare_paths(load_model(args.model), X[path], pd.log_density,
                                      getattr(pd.log_density, "torch", None), lam=args.lam, p0=args.p0,
                                      log_p_ref=g.log_p_ref_, n_points=args.compare, n_quad=n_quad)
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
    refined_txt = ("" if summary["length_refined"] is None else
                   f"refined {summary['length_refined']:.6g} (from the {summary['refinement']['start']} path), ")
    print(f"d(source={s}, target={t}) = {summary['length']:.6g}: {refined_txt}graph {summary['length_graph']:.6g} "
          f"over {len(path)} points (straight segment {summary['straight_metric']:.6g}, c≡1 graph "
          f"{summary['graph_c1']:.6g}, Euclidean {summary['euclidean']:.6g}, k = {g.k_}, {n_quad} nodes per edge); "
          f"{g.n_components_} component(s); wrote {out} and .json")
    return 0

"""The Geodesics view on image models (Streamlit-free, disk-cached): a k-NN graph over training images with the
model's likelihood, its default endpoints, and the three-path comparison (refined geodesic, pixel-space line,
latent slerp)."""

from __future__ import annotations

import numpy as np

from explorer import cache
from explorer.density.cached import make_density
from explorer.views.geodesics import fit_geodesics, geodesic_points, geodesic_view
from explorer.views.sizes import sizes_for


def fit_image_graph(model, density, n: int, k: int, n_quad: int):
    """The view's graph: a k-NN graph over ``n`` training images (seeded subset, no background points) with
    ``density`` (a disk-cached ``explorer.density.cached.Density``) at nodes and quadrature points."""
    n = min(int(n), len(model.training_set))
    X, is_bg, labels = geodesic_points(model, "data", n, 0, seed=0)
    params = graph_params(model, density, n, k, n_quad)
    state = fit_geodesics(model, density, X, is_bg, labels, graph="knn", k=int(k), n_quad=int(n_quad),
                          params=params)
    # a marker, so the page can tell that this graph's log p is on disk (no cost confirm then)
    cache.cached("image_graph", params, lambda: {"n_edges": np.array(len(state.est.edges_))},
                 weights_hash=model.weights_hash, dtype="float64")
    return state


def graph_params(model, density, n: int, k: int, n_quad: int) -> dict:
    n = min(int(n), len(model.training_set))
    return {"model": model.name, "weights_hash": density.weights_hash, "points": "data", "n": n,
            "n_background": 0, "graph": "knn", "k": int(k), "n_quad": int(n_quad), "density": density.info}


def graph_is_cached(model, density, n: int, k: int, n_quad: int) -> bool:
    """Whether ``fit_image_graph`` with these sizes has run before (here or in the shipped cache)."""
    return cache.exists("image_graph", graph_params(model, density, n, k, n_quad), model.weights_hash, "float64")


def default_endpoints(labels, classes: tuple[int, int] = (0, 6)) -> list[int]:
    """The first node of each of two classes (a path between two different digits), else nodes 0 and 1."""
    if labels is not None:
        labels = np.asarray(labels)
        hits = [np.flatnonzero(labels == c) for c in classes]
        if all(len(h) for h in hits):
            return [int(hits[0][0]), int(hits[1][0])]
    return [0, 1]


def compare(model, density, state, i: int, j: int, lam: float, p0: float, n_points: int, max_iter: int) -> dict:
    """``explorer.geodesics.three_paths.compare_paths`` between nodes i and j at (relative) λ, p0: all three paths
    under one measure, the geodesic refined from the shortest of the graph path, the line and the slerp (the
    refinement's gradient is the model's score, explorer.density.score). Disk-cached by the graph's parameters,
    endpoints, λ, p0 and sizes; returns {name: {points, log_p, c, arclength, metric_length}} plus ``meta``; the
    geodesic also has ``length_graph`` (the graph path under the same measure), ``start`` (the candidate refined)
    and ``candidates`` ({name: length})."""
    from explorer.density.score import score_log_density_torch
    from explorer.geodesics.three_paths import compare_paths

    params = {**state.params, "i": int(i), "j": int(j), "lam": float(lam), "p0": float(p0),
              "n_points": int(n_points), "max_iter": int(max_iter), "refine_gradient": "model score, sigma 0.1",
              "measure": "one measure, refined from the shortest candidate", "version": 6}

    def compute():
        with state.lock:
            state.est.set_lam(lam, p0)
            path = state.est.path(int(i), int(j))
        log_p_ref = float(state.est.log_p_ref_)
        torch_density = score_log_density_torch(model, density)
        out = compare_paths(model, state.X[path], density, torch_density, lam=lam, p0=p0, log_p_ref=log_p_ref,
                            n_points=n_points, n_quad=state.est.n_quad, max_iter=max_iter)
        arrays = {}
        for name, d in out.items():
            for key in ("points", "log_p", "c", "arclength"):
                arrays[f"{name}.{key}"] = np.asarray(d[key], dtype=np.float64)
            arrays[f"{name}.metric_length"] = np.array(d["metric_length"])
        arrays["graph_points"] = np.asarray(out["geodesic"]["graph_points"])
        arrays["length_graph"] = np.array(out["geodesic"]["length_graph"])
        arrays["start"] = np.array(out["geodesic"]["start"])
        for name, length in out["geodesic"]["candidates"].items():
            arrays[f"candidate.{name}"] = np.array(length)
        return arrays

    arrays, record = cache.cached("three_paths", params, compute, weights_hash=model.weights_hash, dtype="float64")
    result = {name: {key: arrays[f"{name}.{key}"] for key in ("points", "log_p", "c", "arclength")}
              for name in ("geodesic", "straight", "slerp")}
    for name in result:
        result[name]["metric_length"] = float(arrays[f"{name}.metric_length"])
    result["geodesic"]["length_graph"] = float(arrays["length_graph"])
    result["geodesic"]["start"] = str(arrays["start"])
    result["geodesic"]["candidates"] = {key.split(".", 1)[1]: float(arrays[key]) for key in arrays
                                        if key.startswith("candidate.")}
    result["meta"] = {"graph_points": arrays["graph_points"], "hit": record.get("hit", False), "params": params}
    return result


def image_graph_defaults(model, preset: str = "default") -> dict:
    """The image Geodesics view's sizes: ``n`` training images, ``k``, ``n_quad``, ``n_points`` shown per path
    and ``refine_iter``."""
    S = sizes_for(model, preset)
    return {"n": S["igraph_n"], "k": S["igraph_k"], "n_quad": S["igraph_nq"], "n_points": S["igraph_points"],
            "refine_iter": S["igraph_refine_iter"]}


def precompute_default_view(model, preset: str = "default", log=print) -> None:
    """Fill the disk cache with what the view shows first for ``model``: the default graph's log p, the straight
    line's profile and the three-path comparison between the default endpoints at λ = p0 = 1."""
    S = image_graph_defaults(model, preset)
    density = make_density(model, "model")
    state = fit_image_graph(model, density, S["n"], S["k"], S["n_quad"])
    log(f"{model.name}: image graph of {len(state.X)} images, {density.n_evals} new log p evaluations")
    i, j = default_endpoints(state.labels)
    view = geodesic_view(state, 1.0, 1.0, i, j)
    if view["ok"]:
        compare(model, density, state, i, j, 1.0, 1.0, S["n_points"], S["refine_iter"])
        log(f"{model.name}: three paths between images {i} and {j} at λ = 1")

"""Streamlit-free glue of the Geodesics page for image models: graph sizes, default endpoints, image strips and
the three-path comparison (refined geodesic, pixel-space line, latent slerp) with its disk cache."""

from __future__ import annotations

import numpy as np

from explorer import cache
from explorer.app_state import profile_name
from explorer.images import image_strip

#: Graph sizes for image models, per profile: ≥ 1,000 digit images with k = 10 by default (DESIGN.md §3; the
#: first build of the default graph takes minutes, then the density cache, shipped in assets/cache for the
#: built-in digits, makes it instant).
SIZES = {"default": {"n": 1000, "k": 10, "n_quad": 3, "n_points": 10, "refine_iter": 20},
         "test": {"n": 40, "k": 5, "n_quad": 1, "n_points": 4, "refine_iter": 2}}


def sizes() -> dict:
    return dict(SIZES[profile_name()])


def fit_image_graph(model, density, n: int, k: int, n_quad: int):
    """The page's graph: a k-NN graph over ``n`` training images (seeded subset, no background points) with
    ``density`` (an app_compute.Density, disk-cached) at nodes and quadrature points."""
    from explorer import app_compute

    n = min(int(n), len(model.training_data()))
    X, is_bg, labels = app_compute.geodesic_points(model, "data", n, 0, seed=0)
    params = graph_params(model, density, n, k, n_quad)
    state = app_compute.fit_geodesics(model, density, X, is_bg, labels, graph="knn", k=int(k), n_quad=int(n_quad),
                                      params=params)
    # a marker, so the page can tell that this graph's log p is on disk (no cost confirm then)
    cache.cached("image_graph", params, lambda: {"n_edges": np.array(len(state.est.edges_))},
                 weights_hash=model.weights_hash, dtype="float64")
    return state


def graph_params(model, density, n: int, k: int, n_quad: int) -> dict:
    n = min(int(n), len(model.training_data()))
    return {"model": model.name, "weights_hash": density.weights_hash, "points": "data", "n": n,
            "n_background": 0, "graph": "knn", "k": int(k), "n_quad": int(n_quad), "density": density.info}


def graph_is_cached(model, density, n: int, k: int, n_quad: int) -> bool:
    """Whether ``fit_image_graph`` with these sizes has run before (here or in the shipped cache)."""
    return cache.exists("image_graph", graph_params(model, density, n, k, n_quad), model.weights_hash, "float64")


def precompute_default_view(model, log=print) -> None:
    """Fill the disk cache with what the page shows first for ``model``: the default graph's log p, the straight
    line's profile and the three-path comparison between the default endpoints at λ = p0 = 1."""
    from explorer import app_compute

    S = sizes()
    density = app_compute.make_density(model, "model")
    state = fit_image_graph(model, density, S["n"], S["k"], S["n_quad"])
    log(f"{model.name}: image graph of {len(state.X)} images, {density.n_evals} new log p evaluations")
    i, j = default_endpoints(state.labels)
    view = app_compute.geodesic_view(state, 1.0, 1.0, i, j)
    if view["ok"]:
        compare(model, density, state, i, j, 1.0, 1.0, S["n_points"], S["refine_iter"])
        log(f"{model.name}: three paths between images {i} and {j} at λ = 1")


def default_endpoints(labels, classes: tuple[int, int] = (0, 6)) -> list[int]:
    """The first node of each of two classes (a path between two different digits), else nodes 0 and 1."""
    if labels is not None:
        labels = np.asarray(labels)
        hits = [np.flatnonzero(labels == c) for c in classes]
        if all(len(h) for h in hits):
            return [int(hits[0][0]), int(hits[1][0])]
    return [0, 1]


def strip(points, image_shape, scale: int = 8) -> np.ndarray:
    return image_strip(np.asarray(points), image_shape, scale=scale)


def compare(model, density, state, i: int, j: int, lam: float, p0: float, n_points: int, max_iter: int) -> dict:
    """``explorer.geodesics.three_paths.compare_paths`` between nodes i and j at (relative) λ, p0, starting from
    the graph geodesic; the refinement's gradient is the model's score (explorer.density.score). Disk-cached
    by the graph's parameters, endpoints, λ, p0 and sizes; returns {name: {points, log_p, c, arclength,
    metric_length}} plus ``meta``."""
    from explorer.density.score import score_log_density_torch
    from explorer.geodesics.three_paths import compare_paths

    params = {**state.params, "i": int(i), "j": int(j), "lam": float(lam), "p0": float(p0),
              "n_points": int(n_points), "max_iter": int(max_iter), "refine_gradient": "model score, sigma 0.1",
              "version": 5}

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
        return arrays

    arrays, record = cache.cached("three_paths", params, compute, weights_hash=model.weights_hash, dtype="float64")
    result = {name: {key: arrays[f"{name}.{key}"] for key in ("points", "log_p", "c", "arclength")}
              for name in ("geodesic", "straight", "slerp")}
    for name in result:
        result[name]["metric_length"] = float(arrays[f"{name}.metric_length"])
    result["geodesic"]["length_graph"] = float(arrays["length_graph"])
    result["meta"] = {"graph_points": arrays["graph_points"], "hit": record.get("hit", False), "params": params}
    return result

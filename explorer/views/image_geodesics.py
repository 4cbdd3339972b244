"""The Geodesics view on image models (Streamlit-free, disk-cached): a k-NN graph over training images (or, for a
pipeline without a training set, over its own samples) with the model's likelihood, its default endpoints, and the
three-path comparison (refined geodesic, straight line, latent slerp).

Everything is in the space the model's density is over: pixels, or a latent diffusion model's VAE latents (the
x_0 of its samples, ``sample_x0``; given images are encoded, ``explorer.views.geodesics.space_points``). A page shows
any of these points with ``model.to_display``, which decodes latents to images.
"""

from __future__ import annotations

import numpy as np

from explorer import cache
from explorer.density.cached import make_density
from explorer.views.geodesics import fit_geodesics, geodesic_points, geodesic_view
from explorer.views.sizes import default_condition, sizes_for

POINTS = ("data", "samples")


def graph_points_kind(model, points: str | None = None) -> str:
    """``points`` checked, or the default: the training images when the model has them, else its samples."""
    if points is None:
        return "data" if model.training_set is not None else "samples"
    if points not in POINTS:
        raise ValueError(f"points must be one of {', '.join(POINTS)}; got {points!r}")
    if points == "data" and model.training_set is None:
        raise ValueError(f"model {model.name!r} has no training set; use points = samples")
    return points


def fit_image_graph(model, density, n: int, k: int, n_quad: int, points: str | None = None,
                    condition: dict | None = None, steps: int | None = None):
    """The view's graph: a k-NN graph over ``n`` training images (seeded subset) or, with ``points="samples"``, over
    the x_0 of ``n`` samples (seeds 1 … n, ``steps``-step sampler, ``condition``), no background points, with
    ``density`` (a disk-cached ``explorer.density.cached.Density``) at nodes and quadrature points."""
    params = graph_params(model, density, n, k, n_quad, points, condition, steps)
    X, is_bg, labels = geodesic_points(model, params["points"], params["n"], 0, seed=0, steps=params.get("steps"),
                                       condition=params.get("condition"))
    state = fit_geodesics(model, density, X, is_bg, labels, graph="knn", k=int(k), n_quad=int(n_quad),
                          params=params)
    # a marker, so the page can tell that this graph's log p is on disk (no cost confirm then)
    cache.cached("image_graph", params, lambda: {"n_edges": np.array(len(state.est.edges_))},
                 weights_hash=model.weights_hash, dtype="float64")
    return state


def graph_params(model, density, n: int, k: int, n_quad: int, points: str | None = None,
                 condition: dict | None = None, steps: int | None = None) -> dict:
    points = graph_points_kind(model, points)
    n = min(int(n), len(model.training_set)) if points == "data" else int(n)
    params = {"model": model.name, "weights_hash": density.weights_hash, "points": points, "n": n,
              "n_background": 0, "graph": "knn", "k": int(k), "n_quad": int(n_quad), "density": density.info}
    if points == "samples":
        params["steps"] = int(model.default_steps if steps is None else steps)
        condition = model.canonical_condition(condition)
        if condition:
            params["condition"] = condition
    return params


def graph_is_cached(model, density, n: int, k: int, n_quad: int, points: str | None = None,
                    condition: dict | None = None, steps: int | None = None) -> bool:
    """Whether ``fit_image_graph`` with these sizes has run before (here or in the shipped cache)."""
    return cache.exists("image_graph", graph_params(model, density, n, k, n_quad, points, condition, steps),
                        model.weights_hash, "float64")


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
        torch_density = score_log_density_torch(model, density, condition=getattr(density, "condition", None))
        out = compare_paths(model, state.X[path], density, torch_density, lam=lam, p0=p0, log_p_ref=log_p_ref,
                            n_points=n_points, n_quad=state.est.n_quad, max_iter=max_iter,
                            steps=state.params.get("steps"), condition=state.params.get("condition"))
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
    """The image Geodesics view's defaults: ``n`` nodes, ``k``, ``n_quad``, ``n_points`` shown per path and
    ``refine_iter``; ``points`` (training images, else samples), their sampler ``steps`` and ``condition`` (also the
    density's: ``make_density(model, "model", condition=...)``)."""
    S = sizes_for(model, preset)
    points = graph_points_kind(model)
    out = {"n": S["igraph_n"], "k": S["igraph_k"], "n_quad": S["igraph_nq"], "n_points": S["igraph_points"],
           "refine_iter": S["igraph_refine_iter"], "points": points, "condition": {}, "steps": None}
    if points == "samples":
        out.update(condition=default_condition(model), steps=int(S["steps"]))
    return out


def precompute_default_view(model, preset: str = "default", log=print, compare_paths: bool | None = None) -> None:
    """Fill the disk cache with what the view shows first for ``model``: the default graph's log p, the straight
    line's profile and (``compare_paths``; default: not for diffusers pipelines, whose ODE log p through a UNet
    makes the refinement take the better part of an hour on a CPU) the three-path comparison between the default
    endpoints at λ = p0 = 1, which the page computes when asked ("Compare the three paths")."""
    from explorer.views.sizes import size_kind

    if compare_paths is None:
        compare_paths = size_kind(model) != "pipeline"
    S = image_graph_defaults(model, preset)
    density = make_density(model, "model", condition=S["condition"])
    state = fit_image_graph(model, density, S["n"], S["k"], S["n_quad"], S["points"], S["condition"], S["steps"])
    log(f"{model.name}: image graph of {len(state.X)} images, {density.n_evals} new log p evaluations")
    i, j = default_endpoints(state.labels)
    view = geodesic_view(state, 1.0, 1.0, i, j)
    if view["ok"] and compare_paths:
        compare(model, density, state, i, j, 1.0, 1.0, S["n_points"], S["refine_iter"])
        log(f"{model.name}: three paths between images {i} and {j} at λ = 1")

"""The papers' figures, each one function over the disk cache (so the Paper figures page draws them from the shipped
cache, and ``python -m explorer precompute`` fills it).

Generative geodesics (Kim et al.): Figure 2 (paths as λ goes from 5 to 0.05 over p), Figure 3 (ε-graphs connected
vs broken), Figure 4 (convergence: error vs number of points, uniform vs p samples), Figure 5 (Euclidean vs
geodesic affinity on the four toy data sets). Local geometry (Humayun et al.): ψ/ν/δ maps over a latent plane,
on- vs off-manifold descriptors over t, memorized vs novel samples.
"""

from __future__ import annotations

import warnings

import numpy as np

from explorer import cache
from explorer.density.cached import make_density

FIG2_LAMS = (5.0, 1.0, 0.3, 0.05)
FIG5_MODELS = ("toy2d/ring", "toy2d/moons", "toy2d/circles", "toy2d/spiral")
#: Figure 5's graphs: smaller than the Geodesics page's default, with the model's own density.
FIG5_GRAPH = {"points": "data", "n": 500, "n_background": 100, "graph": "knn", "k": 10, "eps": None, "n_quad": 3,
              "seed": 0, "view_grid": 40, "upload": None}


def _graph(model, params: dict):
    from explorer.jobs.kinds import run_kind

    return run_kind("geodesic_graph", model, {**params, "model_name": model.name,
                                                 "density": make_density(model, "model")})


def figure2(model, preset: str = "default") -> dict:
    """The default geodesic graph of ``model`` (the Geodesics view's) and its path between the default endpoints at
    each λ of FIG2_LAMS, over the log p grid."""
    from explorer.views.geodesics import default_endpoints, geodesics_defaults, graph_job_params, overlay_paths

    g = geodesics_defaults(model, preset)
    from explorer.jobs.kinds import run_kind

    state, grid = run_kind("geodesic_graph", model, graph_job_params(g, make_density(model, g["source"])))
    i, j = default_endpoints(state.X, state.is_bg)
    return {"paths": overlay_paths(state, FIG2_LAMS, 1.0, i, j), "grid": grid, "X": state.X, "is_bg": state.is_bg,
            "ends": (i, j)}


def mst_threshold(X: np.ndarray) -> float:
    """The smallest ε whose ε-graph on X is connected: the longest edge of the Euclidean minimum spanning tree."""
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial.distance import pdist, squareform

    D = squareform(pdist(np.asarray(X, dtype=np.float64)))
    return float(minimum_spanning_tree(D).max())


def figure3(model, n: int = 400, factors=(1.4, 0.7)) -> dict:
    """ε-graphs on ``n`` training points with ε = factor × the connectivity threshold ε* (the MST's longest edge):
    above ε* one component and a geodesic across the data, below it several components (paper 2, Figure 3 uses
    ε = 0.56 and 0.4 on its data). KDE density (cheap, model-free)."""
    from explorer.views.geodesics import fit_geodesics, geodesic_points

    X, is_bg, labels = geodesic_points(model, "data", n, 0, seed=3)
    eps_star = mst_threshold(X)
    dens = make_density(model, "kde")
    a, b = int(np.argmin(X[:, 0])), int(np.argmax(X[:, 0]))
    out = {"X": X, "eps_star": eps_star, "graphs": []}
    for f in factors:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            state = fit_geodesics(model, dens, X, is_bg, labels, graph="epsilon", eps=f * eps_star)
        est = state.est
        try:
            path = est.path(a, b)
        except ValueError:
            path = None
        out["graphs"].append({"factor": f, "eps": f * eps_star, "n_components": int(est.n_components_),
                              "labels": est.labels_, "edges": est.edges_, "path": path})
    return out


def figure4(sizes=(250, 500, 1000), lams=(10.0, 0.05), repeats: int = 2, ref_grid: int = 401) -> dict:
    """The convergence study (paper 2, Figure 4) at small sizes, disk-cached: relative error of the graph distance
    vs the number of points, for points drawn uniformly and from p, at a large and a small λ, against the eikonal
    distance on a ``ref_grid`` × ``ref_grid`` grid (``explorer.geodesics.convergence.reference_distances``)."""
    from explorer.geodesics.convergence import convergence_study

    params = {"sizes": [int(s) for s in sizes], "lams": [float(x) for x in lams], "repeats": int(repeats),
              "reference": "eikonal", "ref_grid": int(ref_grid), "version": 3}

    def compute():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rows = convergence_study(sizes=tuple(sizes), lams=tuple(lams), n_repeats=repeats, ref_grid=ref_grid)
        cols = {c: np.array([r[c] for r in rows]) for c in rows[0]}
        return {k: (v.astype(str) if v.dtype == object else v) for k, v in cols.items()}

    arrays, record = cache.cached("figure4", params, compute, weights_hash="ring_density", dtype="float64")
    return {"table": arrays, "record": record}


def figure5(models, lam: float = 0.05) -> list[dict]:
    """For each model: its FIG5_GRAPH graph (the model's likelihood) and the geodesic vs Euclidean affinity from the
    data point nearest the data's centre of mass (paper 2, Figure 5)."""
    from explorer.views.geodesics import affinity_view

    out = []
    for model in models:
        state, _ = _graph(model, FIG5_GRAPH)
        data = ~state.is_bg
        centre = state.X[data].mean(0)
        src = int(np.flatnonzero(data)[np.argmin(np.linalg.norm(state.X[data] - centre, axis=1))])
        aff = affinity_view(state, lam, 1.0, src)
        out.append({"model": model.name, "X": state.X, "is_bg": state.is_bg, "src": src, **aff})
    return out


def figure_jobs(preset: str = "default") -> dict[str, tuple[str, str, dict]]:
    """What each figure of the Paper figures page runs: {figure: (job kind, model spec, params)}, so that the page
    and ``python -m explorer precompute`` ask the backend for the same cache entries."""
    from explorer.models import load_model
    from explorer.views.local_geometry import local_geometry_defaults
    from explorer.views.sizes import sizes_for

    ring, dm = load_model("toy2d/ring"), load_model("digits/memorized")
    d, S, M = local_geometry_defaults(ring, preset), sizes_for(ring, preset), sizes_for(dm, preset)
    T = ring.num_train_timesteps
    return {
        "g2": ("figure", "toy2d/ring", {"figure": "figure2", "preset": preset}),
        "g3": ("figure", "toy2d/ring", {"figure": "figure3"}),
        "g4": ("figure", "toy2d/ring", {"figure": "figure4"}),
        "g5": ("figure", "toy2d/ring", {"figure": "figure5"}),
        "l1": ("descriptor_plane", "toy2d/ring", {"map": "sampler", "steps": d["steps"], "t": None, "seeds": [],
                                                  "n": d["n"], "extent": d["extent"],
                                                  "n_directions": d["n_directions"], "radius": d["radius"]}),
        "l2": ("on_off", "toy2d/ring", {"map": "from_t", "t": int(0.17 * T), "steps": int(S["steps"]),
                                        "grid_n": int(S["onoff_grid"]), "r_factor": 0.05, "n_ts": int(S["auroc_ts"])}),
        "l3": ("memorization", "digits/memorized", {"n": M["mem_n"], "seed": 0, "steps": M["mem_steps"],
                                                    "threshold": 1 / 3, "preset": preset}),
    }

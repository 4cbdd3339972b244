"""The Geodesics view's computations (Streamlit-free): graph nodes, a fitted ``GenerativeGeodesics`` with the
disk-cached density, and the λ-dependent views (path, straight line, profiles, affinity, several λ), which are
cheap functions of the fitted graph and never evaluate a density: log p at the graph's nodes and quadrature points,
along each straight segment and over the view is evaluated once per parameter set.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

from explorer.density.cached import Density, flat_points, has_likelihood
from explorer.views.sizes import sizes_for

#: The Geodesics view's default λ (relative to p_ref): small enough that the path visibly follows the data (the
#: paper's Figure 2 shows the effect below about 0.1); the view's overlay adds the large λ values.
DEFAULT_LAM = 0.0562
#: The λ values the default overlay draws (paper 2, Figure 2: from nearly straight to hugging the data).
DEFAULT_OVERLAY = (5.0, 0.5, 0.05)


def geodesics_defaults(model, preset: str = "default") -> dict:
    """The Geodesics view's default graph for a points model (the parameters of the ``geodesic_graph`` job, without
    the density) and its default λ, p0 and density source."""
    P = sizes_for(model, preset)
    return {"points": "data", "n": int(P["graph_n"]), "n_background": int(P["n_background"]), "graph": "knn",
            "k": int(P["k"]), "eps": None, "n_quad": 3, "seed": 0, "view_grid": int(P["view_grid"]), "upload": None,
            "model_name": model.name, "lam": DEFAULT_LAM, "p0": 1.0,
            "source": "model" if has_likelihood(model) else "kde"}


def graph_job_params(defaults: dict, density) -> dict:
    """The ``geodesic_graph`` job's parameters from ``geodesics_defaults`` and a density."""
    return {**{k: v for k, v in defaults.items() if k not in ("lam", "p0", "source")}, "density": density}


def space_points(model, data) -> np.ndarray:
    """Given points as flat rows of the space the model's density is over (the diffusion's): unchanged where the
    diffusion runs in sample space; for a latent model, images (rows of the sample's size) are VAE-encoded
    (``model.encode``) and rows of the latent's size are taken as latents."""
    data = flat_points(data)
    if getattr(model, "decode_module", lambda: None)() is None:
        return data
    image, latent = int(np.prod(model.sample_shape)), int(np.prod(model.diffusion_shape))
    if data.shape[1] == image:
        return flat_points(model.encode(data))
    if data.shape[1] == latent:
        return data
    raise ValueError(f"points for {model.name!r} must be images of {image} values or latents of {latent}; got "
                     f"{data.shape[1]} values a point")


def geodesic_points(model, kind: str, n: int, n_background: int, seed: int = 0, data: np.ndarray | None = None,
                    steps: int | None = None,
                    condition: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Graph nodes in the space the model's density is over (the diffusion's: pixels, or a latent model's VAE
    latents): ``kind`` = data (a seeded training subset, or uploaded ``data``; ``space_points`` encodes images of a
    latent model), samples (the model's, x_0 before any decoder, from the latents of seeds seed + 1 …, under
    ``condition``) or uniform (over the data's box), followed by ``n_background`` uniform background points.

    Returns ``(X, is_background, labels)``; the first points keep their order.
    """
    from explorer.geodesics import add_background_points

    def base_points():
        if data is not None:
            return space_points(model, data), None
        if model.training_set is None:
            raise ValueError(f"model {model.name!r} has no training set; use points = samples, or give data (images)")
        return space_points(model, model.training_data()), model.training_labels()

    if kind == "data":
        base, labels = base_points()
        idx = np.arange(len(base))
        if n < len(base):
            idx = np.sort(np.random.default_rng(seed).choice(len(base), size=n, replace=False))
        X, labels = base[idx], None if labels is None else np.asarray(labels)[idx]
    elif kind == "samples":
        if data is not None:
            raise ValueError("uploaded data has no model to sample; use points = data or uniform")
        condition = dict(condition or {})
        if model.decode_module() is None and not condition:
            X = model.sample(n, seed=seed + 1, steps=steps)
        else:
            X = model.sample_x0(n, seed=seed + 1, steps=steps, **condition)
        X, labels = X.astype(np.float64).reshape(n, -1), None
    elif kind == "uniform":
        base, _ = base_points()
        lo, hi = base.min(0), base.max(0)
        pad = 0.1 * (hi - lo)
        X, labels = np.random.default_rng(seed).uniform(lo - pad, hi + pad, size=(n, base.shape[1])), None
    else:
        raise ValueError(f"points must be 'data', 'samples' or 'uniform'; got {kind!r}")
    if n_background > 0:
        X, is_bg = add_background_points(X, n_background, seed=seed + 7)
    else:
        is_bg = np.zeros(len(X), dtype=bool)
    return X, is_bg, labels


def default_endpoints(X: np.ndarray, is_bg: np.ndarray) -> list[int]:
    """Two far-apart non-background points: the leftmost and the rightmost (a path across the data)."""
    idx = np.flatnonzero(~is_bg)
    return [int(idx[np.argmin(X[idx, 0])]), int(idx[np.argmax(X[idx, 0])])]


@dataclass
class GeodesicState:
    """A fitted estimator with the view's density grid; λ views go through the lock (shared across sessions)."""

    est: object
    X: np.ndarray
    is_bg: np.ndarray
    labels: np.ndarray | None
    density: Density
    params: dict
    lock: threading.Lock = field(default_factory=threading.Lock)
    straight: dict = field(default_factory=dict)
    n_evals_at_fit: int = 0


def fit_geodesics(model, density: Density, X: np.ndarray, is_bg: np.ndarray, labels, graph: str = "knn",
                  k: int = 10, eps: float | None = None, n_quad: int = 3, params: dict | None = None,
                  lam: float = 1.0, p0: float = 1.0) -> GeodesicState:
    """``GenerativeGeodesics`` (relative λ, p0) fitted on ``X`` with the disk-cached density."""
    from explorer.geodesics import GenerativeGeodesics

    est = GenerativeGeodesics(lam=lam, p0=p0, relative=True, log_p_ref=density.log_p_ref, graph=graph, k=k,
                              eps=eps, n_quad=n_quad, batch_size=10 ** 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # components are reported on the page
        est.fit(X, density)
    return GeodesicState(est, X, is_bg, labels, density, dict(params or {}), n_evals_at_fit=density.n_evals)


def _straight_log_p(state: GeodesicState, i: int, j: int, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    from explorer.geodesics import straight_line

    key = (int(i), int(j), n)
    if key not in state.straight:
        P = straight_line(state.X[i], state.X[j], n)
        state.straight[key] = (P, state.density(P))
    return state.straight[key]


def _profile(points: np.ndarray, log_p: np.ndarray, log_lam: float, log_p0: float) -> dict:
    from explorer.geodesics import log_conformal_factor

    c = np.exp(log_conformal_factor(log_p, log_lam, log_p0))
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
    return {"points": points, "arclength": s, "log_p": log_p, "c": c}


def geodesic_view(state: GeodesicState, lam: float, p0: float, i: int, j: int) -> dict:
    """The geodesic from point i to j at (relative) λ, p0 next to the straight segment, from cached densities.

    Returns ``ok`` False with a ``message`` (and the fix) when i and j are in different components.
    """
    est = state.est
    P_line, logp_line = _straight_log_p(state, i, j)
    with state.lock:
        est.set_lam(lam, p0)
        out = {"lam": float(lam), "p0": float(p0), "i": int(i), "j": int(j),
               "lam_quantile": float(est.lam_quantile_), "n_components": int(est.n_components_)}
        try:
            path, length = est.path(int(i), int(j), return_length=True)
        except ValueError as err:
            return {**out, "ok": False, "message": str(err), "fix": est.connectivity_.get("fix", ""),
                    "straight_points": P_line, "euclidean": float(np.linalg.norm(state.X[i] - state.X[j]))}
        log_lam, log_p0 = est.log_lam_, est.log_p0_
        logp_path = est.log_p_nodes_[est.node_of_[path]]
        straight = est.straight_length(int(i), int(j))
        graph_c1 = float(est.graph_distances(int(i))[int(j)])
    geo = _profile(state.X[path], logp_path, log_lam, log_p0)
    line = _profile(P_line, logp_line, log_lam, log_p0)
    eucl = float(np.linalg.norm(state.X[i] - state.X[j]))
    return {**out, "ok": True, "path": path, "path_points": state.X[path], "length": float(length),
            "straight_points": P_line, "straight_length": float(straight), "euclidean": eucl,
            "graph_c1": graph_c1, "ratio": float(length / straight) if straight > 0 else float("nan"),
            "geodesic_profile": geo, "straight_profile": line}


def refined_geodesic(state: GeodesicState, lam: float, p0: float, i: int, j: int) -> dict:
    """The geodesic from i to j at (relative) λ, p0 refined under the continuous metric
    (``explorer.geodesics.interpolation.refine_graph_geodesic``: the shortest of the graph path and the straight
    segment, moved by L-BFGS with the density's gradient), with the graph path's length beside it under the same
    measure. Disk-cached by the graph's parameters, endpoints, λ and p0. Returns ``ok`` False with a ``message``
    when i and j are disconnected or the density has no gradient; otherwise ``points``, ``length`` (refined),
    ``length_graph`` (the graph path, measured the same way), ``length_graph_edges`` (the graph's own edge sum,
    what ``geodesic_view`` reports), ``start`` (the candidate refined), ``candidates``, ``refined`` (whether the
    refinement was kept) and ``max_step``."""
    from explorer import cache
    from explorer.geodesics.interpolation import refine_graph_geodesic

    density = state.density
    if density.torch is None:
        return {"ok": False, "message": "this density has no gradient to refine the path with"}
    with state.lock:
        state.est.set_lam(lam, p0)
        try:
            path, graph_length = state.est.path(int(i), int(j), return_length=True)
        except ValueError as err:
            return {"ok": False, "message": str(err)}
        n_quad = int(state.est.n_quad)
    params = {**state.params, "i": int(i), "j": int(j), "lam": float(lam), "p0": float(p0),
              "density": density.info, "gradient": density.gradient, "version": 1}

    def compute():
        best = refine_graph_geodesic(state.X[path], density.fn, density.torch, lam=lam, p0=p0, n_quad=n_quad,
                                     log_p_ref=density.log_p_ref)
        return {"points": best.points, "length": np.array(best.length), "start": np.array(best.start),
                "refined": np.array(best.refined), "max_step": np.array(best.max_step),
                **{f"candidate.{k}": np.array(v) for k, v in best.lengths.items()}}

    arrays, record = cache.cached("refined_geodesic", params, compute, weights_hash=density.weights_hash,
                                  dtype="float64")
    candidates = {k.split(".", 1)[1]: float(v) for k, v in arrays.items() if k.startswith("candidate.")}
    return {"ok": True, "points": arrays["points"], "length": float(arrays["length"]),
            "length_graph": candidates["graph"], "length_graph_edges": float(graph_length),
            "start": str(arrays["start"]), "candidates": candidates, "refined": bool(arrays["refined"]),
            "max_step": float(arrays["max_step"]), "gradient": density.gradient, "hit": record.get("hit", False)}


def overlay_paths(state: GeodesicState, lams, p0: float, i: int, j: int) -> list[dict]:
    """Geodesics from i to j at several λ (the paper's Figure 2): ``[{"lam", "points" or None, "length"}]``."""
    out = []
    with state.lock:
        for lam in lams:
            state.est.set_lam(float(lam), p0)
            try:
                path, length = state.est.path(int(i), int(j), return_length=True)
                out.append({"lam": float(lam), "points": state.X[path], "length": float(length)})
            except ValueError:
                out.append({"lam": float(lam), "points": None, "length": float("inf")})
    return out


def affinity_view(state: GeodesicState, lam: float, p0: float, src: int) -> dict:
    """Geodesic affinity exp(−d²/2σ²) from point ``src`` next to the Euclidean one (the paper's Figure 5).

    σ is the median finite positive distance of each. A source that reaches no other point (an isolated node of an
    ε-graph) has geodesic affinity 1 at itself and 0 elsewhere, and ``message`` says why."""
    from explorer.geodesics import affinity_from_distances

    with state.lock:
        state.est.set_lam(lam, p0)
        d_geo = state.est.distances(int(src))
    d_euc = np.linalg.norm(state.X - state.X[int(src)], axis=1)
    message = None
    try:
        a_geo = affinity_from_distances(d_geo)
    except ValueError:
        a_geo = (d_geo == 0).astype(np.float64)
        message = (f"Point {int(src)} reaches no other point of the graph (an isolated node), so its geodesic "
                   f"affinity is 0 everywhere else. {state.est.connectivity_.get('fix', '')}")
    return {"src": int(src), "geodesic": a_geo, "euclidean": affinity_from_distances(d_euc),
            "d_geodesic": d_geo, "d_euclidean": d_euc, "message": message}


def connectivity(state: GeodesicState) -> dict:
    return dict(state.est.connectivity_)


def view_density(density: Density, X: np.ndarray, n: int) -> dict:
    """log p over an n × n grid covering the points' box (10% margin): ``u``, ``v``, ``log_p`` (n, n), cached."""
    lo, hi = X.min(0), X.max(0)
    pad = 0.1 * (hi - lo)
    u = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    v = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    V, U = np.meshgrid(v, u, indexing="ij")
    log_p = density(np.stack([U.ravel(), V.ravel()], 1)).reshape(n, n)
    return {"u": u, "v": v, "log_p": log_p}

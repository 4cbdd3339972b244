"""What the app's pages compute, as plain Streamlit-free functions over ``explorer`` with the disk cache.

Each heavy result goes through ``explorer.cache.cached`` (keyed by the model's weights hash, the code
version, the dtype and every parameter), so a restarted server shows a page again at once. λ-dependent
views of the geodesics are cheap functions of a fitted ``GenerativeGeodesics`` and never evaluate a
density: log p at the graph's nodes and quadrature points, along each straight segment and over the view
is evaluated once per parameter set.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from explorer import cache
from explorer.app_state import default_directions, density_cost, descriptor_cost, graph_cost, latent_dim, sizes_for

# ---------------------------------------------------------------------------- models


def model_status(spec: str) -> tuple[bool, str]:
    """Whether a built-in model loads here, and why not."""
    from explorer.models import load_model

    try:
        load_model(spec)
    except Exception as err:  # noqa: BLE001 - any failure to load means "not available here", with the reason
        return False, f"{type(err).__name__}: {err}".splitlines()[0]
    return True, ""


def available_models(extra=()) -> list[str]:
    """The built-in models whose weights are present, then the ``extra`` model files that load
    (paths of models trained by ``python -m explorer train toy2d --csv``)."""
    from explorer.models import list_models

    return [s for s in [*list_models(), *dict.fromkeys(extra)] if model_status(s)[0]]


def extra_model_paths(env: str | None = None) -> list[str]:
    """Model files named in ``EXPLORER_MODELS`` (separated by the OS path separator)."""
    value = os.environ.get("EXPLORER_MODELS", "") if env is None else env
    return [p for p in value.split(os.pathsep) if p.strip()]


def has_model_likelihood(model) -> bool:
    return callable(getattr(model, "log_prob", None))


# ---------------------------------------------------------------------------- densities


def _sha(a: np.ndarray) -> str:
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    return hashlib.sha256(a.tobytes() + str(a.shape).encode()).hexdigest()[:20]


@dataclass
class Density:
    """A log density over data space that caches every evaluation on disk by the content of its input.

    ``source``: ``kde`` (Gaussian KDE of the points it was built on) or ``model`` (the model's
    ``default_likelihood``: the exact density of its DDIM sampler for the 2-D models, the probability-flow ODE
    for image models). ``log_p_ref``: the reference log density (median over the training data) that relative λ
    and p0 are measured in.
    """

    fn: object
    source: str
    log_p_ref: float
    weights_hash: str
    ident: dict
    n_evals: int = 0

    def __call__(self, P) -> np.ndarray:
        P = np.asarray(P, dtype=np.float64)
        P = P.reshape(len(P), -1)

        def compute():
            self.n_evals += len(P)
            return {"log_p": np.asarray(self.fn(P), dtype=np.float64).reshape(-1)}

        arrays, _ = cache.cached("logp", {**self.ident, "points": _sha(P), "n": len(P)}, compute,
                                 weights_hash=self.weights_hash, dtype="float64")
        return arrays["log_p"]

    @property
    def info(self) -> dict:
        return {**self.ident, "log_p_ref": self.log_p_ref}


def make_density(model, source: str = "kde", data: np.ndarray | None = None, name: str | None = None,
                 bandwidth: float | None = None) -> Density:
    """The log density a page uses: ``kde`` of the training data (or of uploaded ``data``), or the model's."""
    from explorer.density import KernelDensity

    if source == "kde":
        pts = _flat(model.training_data()) if data is None else np.asarray(data, dtype=np.float64)
        kde = KernelDensity(pts, bandwidth=bandwidth)
        whash = _sha(pts) if data is not None else model.weights_hash
        ident = {"source": "kde", "bandwidth": kde.bandwidth, "data": name or getattr(model, "name", "")}
        ref_pts = pts if len(pts) <= 2000 else pts[np.random.default_rng(0).choice(len(pts), 2000, replace=False)]
        dens = Density(kde, "kde", 0.0, whash, ident)
        dens.log_p_ref = float(np.median(dens(ref_pts)))
        return dens
    if source == "model":
        if not has_model_likelihood(model):
            raise ValueError(f"model {model.name!r} has no likelihood (log_prob) yet; use the KDE density")
        likelihood = dict(model.default_likelihood)
        ident = {"source": "model", **likelihood, "steps": model.default_steps}
        dens = Density(model.log_density(), "model", 0.0, model.weights_hash, ident)
        ref = getattr(model, "log_p_ref", None)
        if ref is None:
            data = _flat(model.training_data())
            ref = float(np.median(dens(data[np.random.default_rng(0).choice(len(data), 500, replace=False)])))
        dens.log_p_ref = float(ref)
        return dens
    raise ValueError(f"density source must be 'kde' or 'model'; got {source!r}")


def _flat(x) -> np.ndarray:
    """Points (N, *sample_shape) as float64 rows (N, D)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


_SECONDS_PER_POINT: dict[tuple, float] = {}


def likelihood_seconds_per_point(model, n: int = 48) -> float | None:
    """Measured seconds per point of the model's ``default_likelihood`` when it is not the toys' discrete
    inversion (whose cost ``app_state.density_cost`` estimates): ``log_prob`` of ``n`` training points after a
    2-point warm-up, timed once per process and model (about 2 s for the digits' ODE). Conservative: the pages
    evaluate thousands of points per call, which spreads the per-call overhead (digits: 0.02 s per point measured
    here against 0.013 s in batches of 512). None for the discrete method."""
    likelihood = dict(getattr(model, "default_likelihood", None) or {"method": "discrete"})
    if likelihood.get("method", "discrete") == "discrete":
        return None
    key = (model.name, model.weights_hash, repr(sorted(likelihood.items())))
    if key not in _SECONDS_PER_POINT:
        x = _flat(model.training_data())
        model.log_prob(x[:2], **likelihood)
        x = x[:n]
        start = time.perf_counter()
        model.log_prob(x, **likelihood)
        _SECONDS_PER_POINT[key] = (time.perf_counter() - start) / len(x)
    return _SECONDS_PER_POINT[key]


def density_fit_cost(model, source: str, n_points: int) -> float:
    per = likelihood_seconds_per_point(model) if source == "model" else None
    return density_cost(n_points, source == "model", getattr(model, "default_steps", 50), per)


# ---------------------------------------------------------------------------- local geometry


def plane_for(model, seeds, n: int, extent: float, dtype=torch.float32):
    """The latent plane: through the latents of three ``seeds``, else (2-D latents) the whole latent plane."""
    from explorer.descriptors import latent_plane

    seeds = [int(s) for s in seeds]
    if len(seeds) == 3:
        anchors = torch.stack([model.latent_of_seed(s, torch.float64) for s in seeds])
        return latent_plane(model.latent_shape, anchors=anchors, n=n, extent=extent, dtype=dtype)
    return latent_plane(model.latent_shape, n=n, extent=extent, dtype=dtype)


def default_radius(n: int, extent: float) -> float:
    """δ's cross-polytope radius at a plane resolution: a quarter of the grid spacing (descriptor_maps' default)."""
    return 2.0 * extent / (n - 1) / 4.0


def n_directions_for(model, n_directions: int | None = None) -> int:
    """P, the number of Jacobian directions: ``n_directions`` clipped to [1, d], or the full d when None."""
    d = latent_dim(model)
    return d if n_directions is None else max(1, min(int(n_directions), d))


def _sketch(model, P: int) -> int | None:
    """``n_directions`` for the descriptor functions: None (the full Jacobian) when P = d, else P (a random
    orthonormal sketch from seed 0, the same for every latent of a run)."""
    return None if P >= latent_dim(model) else P


def _plane_params(model, map_name, steps, t, seeds, n, extent, n_directions=None) -> dict:
    seeds = [int(s) for s in seeds] if len(seeds) == 3 else []
    t = None if map_name == "sampler" else int(t)
    return {"map": map_name, "steps": int(steps), "t": t, "seeds": seeds, "n": int(n), "extent": float(extent),
            "n_directions": n_directions_for(model, n_directions), "model": model.name}


def descriptor_plane_is_cached(model, map_name: str, steps: int, t: int | None, seeds, n: int, extent: float,
                               n_directions: int | None = None) -> bool:
    """Whether ``descriptor_plane`` with these arguments would read the disk cache (no confirm needed)."""
    return cache.exists("descriptor_maps", _plane_params(model, map_name, steps, t, seeds, n, extent, n_directions),
                        model.weights_hash)


def descriptor_plane(model, map_name: str, steps: int, t: int | None, seeds, n: int, extent: float,
                     n_directions: int | None = None, progress=None) -> tuple[dict, dict]:
    """ψ, ν, ν_eff, δ (n, n) over the plane with u, v, singular values, origin and basis (disk-cached).

    ``n_directions``: P Jacobian directions (None or d: the full Jacobian; fewer: a sketch shared by ψ, ν and δ).
    """
    from explorer.descriptors import descriptor_maps

    params = _plane_params(model, map_name, steps, t, seeds, n, extent, n_directions)
    seeds, t, P = params["seeds"], params["t"], params["n_directions"]

    def compute():
        plane = plane_for(model, seeds, n, extent)
        G = model.generator(map_name, steps=steps, t=t)
        dm = descriptor_maps(G, plane, n_directions=_sketch(model, P), progress=progress)
        anchors = plane.anchor_coords if len(plane.anchor_coords) else np.zeros((0, 2))
        return {**dm.maps, "u": plane.u, "v": plane.v, "singular_values": dm.singular_values,
                "origin": plane.origin.numpy(), "basis": plane.basis.numpy(), "anchor_coords": anchors,
                "radius": np.array(dm.params["radius"])}

    return cache.cached("descriptor_maps", params, compute, weights_hash=model.weights_hash)


def descriptor_plane_cost(map_name: str, steps: int, t: int | None, n: int, n_directions: int = 2) -> float:
    return descriptor_cost(n * n, steps, map_name, t, n_directions=n_directions)


def sample_descriptors_cost(map_name: str, steps: int, t: int | None, n: int, n_directions: int = 2) -> float:
    return descriptor_cost(n, steps, map_name, t, n_directions=n_directions)


def cell_details(model, map_name: str, steps: int, t: int | None, arrays: dict, i: int, j: int) -> dict:
    """The latent of cell (i, j), its image G(z), descriptor values and singular-value spectrum."""
    u, v = arrays["u"], arrays["v"]
    z = arrays["origin"] + u[j] * arrays["basis"][0] + v[i] * arrays["basis"][1]
    G = model.generator(map_name, steps=steps, t=None if map_name == "sampler" else t)
    with torch.no_grad():
        x = G(torch.as_tensor(z, dtype=torch.float32).reshape(1, *model.latent_shape)).numpy().reshape(-1)
    n = len(u)
    return {"i": i, "j": j, "u": float(u[j]), "v": float(v[i]), "latent": np.asarray(z, dtype=np.float64),
            "sample": x.astype(np.float64),
            "values": {k: float(arrays[k][i, j]) for k in ("psi", "nu", "nu_eff", "delta", "n_psi")},
            "singular_values": np.asarray(arrays["singular_values"][i * n + j], dtype=np.float64)}


def pool(model, n: int, steps: int) -> tuple[dict, dict]:
    """Latents of seeds 0..n−1 (``latent_of_seed``) and their samples through the ``steps``-step sampler."""
    def compute():
        z = torch.stack([model.latent_of_seed(s) for s in range(n)])
        with torch.no_grad():
            x = model.generator("sampler", steps=steps)(z).numpy()
        return {"seeds": np.arange(n), "latents": z.numpy(), "samples": x}

    return cache.cached("pool", {"n": int(n), "steps": int(steps), "model": model.name}, compute,
                        weights_hash=model.weights_hash)


def latents_of_seeds(model, seeds) -> np.ndarray:
    if not len(seeds):
        return np.zeros((0, latent_dim(model)))
    return np.stack([model.latent_of_seed(int(s)).numpy().reshape(-1) for s in seeds])


def _sample_params(model, map_name, steps, t, n, radius, n_directions=None) -> dict:
    t = None if map_name == "sampler" else int(t)
    return {"map": map_name, "steps": int(steps), "t": t, "n": int(n), "radius": float(radius),
            "n_directions": n_directions_for(model, n_directions), "model": model.name}


def sample_descriptors_is_cached(model, map_name: str, steps: int, t: int | None, n: int, radius: float,
                                 n_directions: int | None = None) -> bool:
    return cache.exists("sample_descriptors", _sample_params(model, map_name, steps, t, n, radius, n_directions),
                        model.weights_hash)


def sample_descriptors(model, map_name: str, steps: int, t: int | None, n: int, radius: float,
                       n_directions: int | None = None, progress=None) -> tuple[dict, dict]:
    """ψ, ν, ν_eff, δ at the latents of seeds 0..n−1, with their generated samples (disk-cached); P =
    ``n_directions`` Jacobian directions as in ``descriptor_plane``."""
    from explorer.descriptors import local_complexity, local_descriptors

    params = _sample_params(model, map_name, steps, t, n, radius, n_directions)
    t, P = params["t"], params["n_directions"]

    def compute():
        z = torch.stack([model.latent_of_seed(s) for s in range(n)])
        G = model.generator(map_name, steps=steps, t=t)
        half = (lambda k: (lambda done, total: progress(done / max(total, 1) / 2 + k / 2))) if progress else (
            lambda k: None)
        d = local_descriptors(G, z, n_directions=_sketch(model, P), progress=half(0))
        lc = local_complexity(G, z, radius, n_directions=_sketch(model, P), progress=half(1))
        with torch.no_grad():
            x = model.generator("sampler", steps=steps)(z).numpy()
        return {"seeds": np.arange(n), "latents": z.numpy(), "samples": x, "psi": d.psi, "nu": d.nu,
                "nu_eff": d.nu_eff, "delta": lc.delta}

    return cache.cached("sample_descriptors", params, compute, weights_hash=model.weights_hash)


def local_geometry_defaults(model) -> dict:
    """The Local geometry page's default view of ``model`` (its widget defaults, and what
    ``scripts/precompute-default-views`` ships): map, steps, t, anchor seeds, plane size n and extent, P Jacobian
    directions, δ radius, pool and sample counts, from ``app_state.sizes_for(model)``."""
    P = sizes_for(model)
    n, extent = int(P["plane_n"]), float(P["extent"])
    return {"map": "sampler", "steps": int(P["steps"]), "t": int(0.17 * model.num_train_timesteps),
            "seeds": [int(s) for s in P["seeds"]], "n": n, "extent": extent,
            "n_directions": default_directions(latent_dim(model)), "radius": default_radius(n, extent),
            "n_pool": int(P["n_pool"]), "n_samples": int(P["n_samples"])}


def embedding_defaults(model) -> dict:
    """The Embedding page's default settings for ``model`` (KDE density: the model's likelihood is an option)."""
    P = sizes_for(model)
    return {"n": int(P["embed_n"]), "k": int(P["k"]), "n_quad": 3, "n_neighbors": 15,
            "lams": [float(x) for x in P["embed_lams"]], "source": "kde"}


def precompute_default_views(model, embedding: bool = True, log=print) -> list[dict]:
    """Compute (or read) what the Local geometry page (and, with ``embedding``, the Embedding page) shows for
    ``model`` at its defaults, through the disk cache; returns the cache records (kind, key, seconds, hit).

    Run with ``EXPLORER_CACHE_DIR`` set to ``assets/cache`` to fill the shipped cache (the entries' keys hold the
    weights hash and code version, so entries made with other weights are never hit)."""
    d = local_geometry_defaults(model)
    t = None if d["map"] == "sampler" else d["t"]
    records = []

    def note(what, rec):
        records.append({"what": what, "kind": rec["kind"], "key": rec["key"], "hit": rec["hit"],
                        "seconds": rec.get("seconds")})
        how = "read from the cache" if rec["hit"] else f"computed in {rec['seconds']:.1f} s"
        log(f"{model.name}: {what}: {how}")

    note("pool", pool(model, d["n_pool"], d["steps"])[1])
    if len(d["seeds"]) == 3 or latent_dim(model) == 2:
        note("descriptor plane", descriptor_plane(model, d["map"], d["steps"], t, d["seeds"], d["n"], d["extent"],
                                                  d["n_directions"])[1])
    note("sample descriptors", sample_descriptors(model, d["map"], d["steps"], t, d["n_samples"], d["radius"],
                                                  d["n_directions"])[1])
    if embedding:
        e = embedding_defaults(model)
        dens = make_density(model, e["source"])
        note("embedding", embedding_grid(model, dens, e["n"], e["lams"], k=e["k"], n_quad=e["n_quad"],
                                         n_neighbors=e["n_neighbors"])[1])
    return records


DESCRIPTORS = ("psi", "nu", "nu_eff", "delta")


def descriptor_correlations(arrays: dict):
    """Pearson and Spearman correlations of ψ, ν, ν_eff, δ over the samples (pandas DataFrames)."""
    import pandas as pd

    df = pd.DataFrame({k: np.asarray(arrays[k], dtype=np.float64) for k in DESCRIPTORS})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        return df.corr(method="pearson"), df.corr(method="spearman")


# ---------------------------------------------------------------------------- geodesics


def geodesic_points(model, kind: str, n: int, n_background: int, seed: int = 0, data: np.ndarray | None = None,
                    steps: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Graph nodes: ``kind`` = data (a seeded training subset, or uploaded ``data``), samples (the model's)
    or uniform (over the data's box), followed by ``n_background`` uniform background points.

    Returns ``(X, is_background, labels)``; the first points keep their order.
    """
    from explorer.geodesics import add_background_points

    base = _flat(model.training_data()) if data is None else np.asarray(data, float)
    labels = model.training_labels() if data is None else None
    if kind == "data":
        idx = np.arange(len(base))
        if n < len(base):
            idx = np.sort(np.random.default_rng(seed).choice(len(base), size=n, replace=False))
        X, labels = base[idx], None if labels is None else np.asarray(labels)[idx]
    elif kind == "samples":
        if data is not None:
            raise ValueError("uploaded data has no model to sample; use points = data or uniform")
        X, labels = model.sample(n, seed=seed + 1, steps=steps).astype(np.float64).reshape(n, -1), None
    elif kind == "uniform":
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


def graph_fit_cost(model, source: str, n_nodes: int, k: int, n_quad: int) -> float:
    per = likelihood_seconds_per_point(model) if source == "model" else None
    return graph_cost(n_nodes, k, n_quad, source == "model", getattr(model, "default_steps", 50), per)


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
    """Geodesic affinity exp(−d²/2σ²) from point ``src`` next to the Euclidean one (the paper's Figure 5)."""
    from explorer.geodesics import affinity_from_distances

    with state.lock:
        state.est.set_lam(lam, p0)
        d_geo = state.est.distances(int(src))
    d_euc = np.linalg.norm(state.X - state.X[int(src)], axis=1)
    return {"src": int(src), "geodesic": affinity_from_distances(d_geo), "euclidean": affinity_from_distances(d_euc),
            "d_geodesic": d_geo, "d_euclidean": d_euc}


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


# ---------------------------------------------------------------------------- embedding & clusters


def embedding_n(model, n: int) -> int:
    """The number of training points an embedding of ``n`` uses: at most the training set's size."""
    return max(2, min(int(n), len(model.training_data())))


def _embedding_params(model, density, n, lams, k, n_quad, n_background, seed, n_neighbors) -> dict:
    return {"n": embedding_n(model, n), "lams": [float(x) for x in lams], "k": int(k), "n_quad": int(n_quad),
            "n_background": int(n_background), "seed": int(seed), "n_neighbors": int(n_neighbors),
            "density": density.info, "model": model.name}


def embedding_is_cached(model, density: Density, n: int, lams, k: int = 10, n_quad: int = 3, n_background: int = 0,
                        seed: int = 0, n_neighbors: int = 15) -> bool:
    """Whether ``embedding_grid`` with these arguments would read the disk cache (no confirm needed)."""
    return cache.exists("embedding", _embedding_params(model, density, n, lams, k, n_quad, n_background, seed,
                                                       n_neighbors), density.weights_hash)


def embedding_grid(model, density: Density, n: int, lams, k: int = 10, n_quad: int = 3, n_background: int = 0,
                   seed: int = 0, n_neighbors: int = 15, progress=None) -> tuple[dict, dict]:
    """UMAPs of geodesic distances over a λ grid (each Procrustes-aligned onto the previous one), of the
    straight-line and c ≡ 1 graph baselines, spectral clusterings of each and ARI / NMI (disk-cached), on ``n``
    training points (at most all of them: ``embedding_n``).

    Arrays: ``X``, ``labels``, ``lams``, ``Y_geodesic`` (L, n, 2), ``clusters_geodesic`` (L, n), ``Y_euclidean``,
    ``Y_graph``, ``clusters_euclidean``, ``clusters_graph``, ``scores`` (rows: [ARI, NMI] for euclidean, graph,
    then each λ), ``n_components``.
    """
    from explorer.embedding import cluster_scores, procrustes_align, spectral_clustering, umap_embedding
    from explorer.geodesics import affinity_from_distances

    lams = [float(x) for x in lams]
    n = embedding_n(model, n)
    params = _embedding_params(model, density, n, lams, k, n_quad, n_background, seed, n_neighbors)
    step = [0]
    total = 2 + 2 * len(lams) + 1

    def tick(what: str):
        step[0] += 1
        if progress:
            progress(min(step[0] / total, 1.0), what)

    def compute():
        X, is_bg, labels = geodesic_points(model, "data", n, n_background, seed)
        labels = np.zeros(n, dtype=int) if labels is None else np.asarray(labels)
        n_clusters = max(2, len(np.unique(labels)))
        state = fit_geodesics(model, density, X, is_bg, labels, k=k, n_quad=n_quad)
        tick("graph fitted")
        data_idx = np.arange(n)
        D_euc = np.linalg.norm(X[:n, None] - X[None, :n], axis=-1)
        D_graph = state.est.graph_distances(data_idx)[:, :n]
        out = {"X": X[:n], "labels": labels, "lams": np.array(lams), "n_components": np.array(state.est.n_components_)}
        scores = []
        for name, D in (("euclidean", D_euc), ("graph", D_graph)):
            Y, _ = umap_embedding(D, n_neighbors=n_neighbors, seed=seed)
            cl = spectral_clustering(affinity_from_distances(D), n_clusters, seed)
            s = cluster_scores(labels, cl)
            out[f"Y_{name}"], out[f"clusters_{name}"] = Y, cl
            scores.append([s["ari"], s["nmi"]])
            tick(f"{name} baseline")
        Ys, cls, prev = [], [], out["Y_graph"]
        for lam in lams:
            state.est.set_lam(lam)
            D = state.est.distances(data_idx)[:, :n]
            Y, _ = umap_embedding(D, n_neighbors=n_neighbors, seed=seed)
            Y = procrustes_align(Y, prev)
            prev = Y
            cl = spectral_clustering(affinity_from_distances(D), n_clusters, seed)
            s = cluster_scores(labels, cl)
            Ys.append(Y)
            cls.append(cl)
            scores.append([s["ari"], s["nmi"]])
            tick(f"λ = {lam:g}")
        out["Y_geodesic"], out["clusters_geodesic"], out["scores"] = np.stack(Ys), np.stack(cls), np.array(scores)
        return out

    return cache.cached("embedding", params, compute, weights_hash=density.weights_hash)


def scores_table(arrays: dict):
    """ARI and NMI against the true labels: one row per distance (euclidean, c ≡ 1 graph, geodesic at each λ)."""
    import pandas as pd

    names = ["straight line (Euclidean)", "graph, c ≡ 1"] + [f"geodesic λ = {lam:g}" for lam in arrays["lams"]]
    s = np.asarray(arrays["scores"])
    return pd.DataFrame({"distance": names, "ARI": s[:, 0], "NMI": s[:, 1]})


def embedding_cost_estimate(model, source: str, n: int, n_lams: int, k: int, n_quad: int) -> float:
    from explorer.app_state import embedding_cost

    return embedding_cost(n, n_lams, graph_fit_cost(model, source, n, k, n_quad))


def warm_umap() -> float:
    """Run UMAP once on a tiny matrix so numba's JIT is paid once per process; returns seconds."""
    import time

    from explorer.embedding import umap_embedding

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    P = rng.normal(size=(30, 2))
    umap_embedding(np.linalg.norm(P[:, None] - P[None], axis=-1), n_neighbors=5)
    return time.perf_counter() - start


def finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


# ---------------------------------------------------------------------------- on- vs off-manifold


def on_off(model, map_name: str, t: int, steps: int, grid_n: int, r_factor: float = 0.05):
    """Per-input descriptors with the on/off label (column ``on``) and the class counts."""
    from explorer.analysis.onmanifold import on_off_manifold

    result = on_off_manifold(model, map=map_name, t=int(t), steps=int(steps), grid_n=int(grid_n),
                             r_on_factor=float(r_factor))
    return result.table, result.counts


def on_off_sweep(model, map_name: str, steps: int, grid_n: int, r_factor: float, n_ts: int):
    """AUROC per descriptor over ``n_ts`` timesteps up to T/2: one row per t, one column per descriptor."""
    from explorer.analysis.onmanifold import auroc_sweep

    T = model.num_train_timesteps
    ts = sorted({int(x) for x in np.linspace(0.05 * T, 0.5 * T, n_ts)})
    long = auroc_sweep(model, ts, map=map_name, steps=int(steps), grid_n=int(grid_n), r_on_factor=float(r_factor))
    return long.pivot(index="t", columns="descriptor", values="auroc").reset_index()

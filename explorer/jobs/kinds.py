"""Every heavy computation of the views as a *job kind*: one function the app's worker and the CLI both run, the
units of work it costs (for estimates from measured rates), and whether its result is already on disk.

``run_kind(name, model, params, job)`` computes; ``estimate(name, model, params)`` gives seconds from the measured
rates (probing a rate the first time it is needed); ``job_key`` names a job by its kind, model, dtype and
parameters, so that two sessions asking for the same result share one job.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from explorer import cache
from explorer.device import compute_device, compute_view
from explorer.jobs.rates import Rates, default_rates


@dataclass(frozen=True)
class JobKind:
    """``run(model, params, progress) -> (result, computed)``; ``units(model, params) -> {op: units}``;
    ``cached(model, params) -> bool`` (whether the result is on disk, so the job is a quick read)."""

    name: str
    run: Callable
    units: Callable
    cached: Callable
    label: Callable


KINDS: dict[str, JobKind] = {}


def _register(name: str, units, cached, label):
    def wrap(fn):
        KINDS[name] = JobKind(name, fn, units, cached, label)
        return fn

    return wrap


def _eff_steps(model, map_name: str, steps: int, t) -> int:
    """Sampler steps a map runs: all S for ``sampler``, 1 for ``denoiser``/``decoder``, the tail for ``from_t``."""
    if map_name in ("denoiser", "decoder") or not model.capabilities.diffusion:
        return 1
    if map_name == "from_t" and t is not None:
        return max(1, math.ceil(int(steps) * (int(t) + 1) / model.num_train_timesteps))
    return int(steps)


def _directions(model, P) -> int:
    d = int(np.prod(model.latent_shape))
    return d if P is None else max(1, min(int(P), d))


def _descriptor_ident(model, map_name: str) -> str:
    return f"{model.weights_hash}|{map_name}"


def _jvp_units(model, n: int, map_name: str, steps: int, t, P, delta: bool = True) -> tuple[float, float]:
    """(units, calls) of ψ/ν (P + 1 copies of each latent) and δ (2P + 1 copies) of n latents: units are
    latent · step · copy; a call is one step of one chunk (at most MAX_ROWS copies), for each of the two passes."""
    from explorer.device import MAX_ROWS

    P = _directions(model, P)
    S = _eff_steps(model, map_name, steps, t)
    copies = (P + 1) + ((2 * P + 1) if delta else 0)
    calls = S * sum(math.ceil(n * c / MAX_ROWS) for c in ((P + 1), (2 * P + 1) if delta else 0) if c)
    return float(n) * S * copies, float(max(calls, 1))


# ---------------------------------------------------------------------------- local geometry
def _plane_units(model, p):
    return {("descriptor", _descriptor_ident(model, p["map"])): _jvp_units(model, p["n"] ** 2, p["map"], p["steps"],
                                                                         p.get("t"), p.get("n_directions"))}


def _plane_cached(model, p):
    from explorer.views.local_geometry import descriptor_plane_is_cached

    return descriptor_plane_is_cached(model, p["map"], p["steps"], p.get("t"), p.get("seeds", []), p["n"],
                                      p["extent"], p.get("n_directions"), p.get("radius"), p.get("direction_seed", 0),
                                      p.get("condition"), _torch_dtype(p.get("dtype")), p.get("anchors"))


@_register("descriptor_plane", _plane_units, _plane_cached,
           lambda m, p: f"ψ, ν, δ over {p['n']}×{p['n']} latents of the {p['map']} map")
def _descriptor_plane(model, p, progress):
    from explorer.views.local_geometry import descriptor_plane

    arrays, record = descriptor_plane(model, p["map"], p["steps"], p.get("t"), p.get("seeds", []), p["n"],
                                      p["extent"], p.get("n_directions"), progress=progress, radius=p.get("radius"),
                                      direction_seed=p.get("direction_seed", 0), condition=p.get("condition"),
                                      dtype=_torch_dtype(p.get("dtype")), anchors=p.get("anchors"))
    return (arrays, record), not record.get("hit")


def _torch_dtype(name):
    return None if name is None else getattr(torch, str(name).replace("torch.", ""))


def _samples_units(model, p):
    return {("descriptor", _descriptor_ident(model, p["map"])): _jvp_units(model, p["n"], p["map"], p["steps"],
                                                                         p.get("t"), p.get("n_directions"))}


def _samples_cached(model, p):
    from explorer.views.local_geometry import sample_descriptors_is_cached

    return sample_descriptors_is_cached(model, p["map"], p["steps"], p.get("t"), p["n"], p["radius"],
                                        p.get("n_directions"), p.get("condition"))


@_register("sample_descriptors", _samples_units, _samples_cached,
           lambda m, p: f"descriptors of {p['n']} samples ({p['map']} map)")
def _sample_descriptors(model, p, progress):
    from explorer.views.local_geometry import sample_descriptors

    arrays, record = sample_descriptors(model, p["map"], p["steps"], p.get("t"), p["n"], p["radius"],
                                        p.get("n_directions"), progress=progress, condition=p.get("condition"))
    return (arrays, record), not record.get("hit")


def _pool_params(model, p):
    from explorer.views.local_geometry import pool_params

    return pool_params(model, p["n"], p["steps"], p.get("condition"))


@_register("pool", lambda m, p: {("descriptor", _descriptor_ident(m, "sampler")): (float(p["n"]) * p["steps"],
                                                                                 float(p["steps"]))},
           lambda m, p: cache.exists("pool", _pool_params(m, p), m.weights_hash),
           lambda m, p: f"{p['n']} samples of the sampler")
def _pool(model, p, progress):
    from explorer.views.local_geometry import pool

    arrays, record = pool(model, p["n"], p["steps"], p.get("condition"))
    return (arrays, record), not record.get("hit")


@_register("cell", lambda m, p: {("descriptor", _descriptor_ident(m, p["map"])):
                                 (1.0, float(_eff_steps(m, p["map"], p["steps"], p.get("t"))))},
           lambda m, p: False, lambda m, p: "the clicked cell's sample")
def _cell(model, p, progress):
    from explorer.views.local_geometry import sample_of_latent

    return sample_of_latent(model, p["map"], p["steps"], p.get("t"), p["latent"], p.get("condition")), False


def _onoff_units(model, p):
    units, calls = _jvp_units(model, p["grid_n"] ** 2, p["map"], p["steps"], p["t"], None)
    k = 1 + int(p["n_ts"])
    return {("descriptor", _descriptor_ident(model, p["map"])): (units * k, calls * k)}


@_register("on_off", _onoff_units, lambda m, p: False,
           lambda m, p: f"on-/off-manifold descriptors of a {p['grid_n']}² grid and an AUROC sweep over t")
def _on_off(model, p, progress):
    from explorer.views.local_geometry import on_off, on_off_sweep

    res = on_off(model, p["map"], p["t"], p["steps"], p["grid_n"], p["r_factor"])
    progress(1 / (1 + p["n_ts"]), "the grid at t")
    sweep = on_off_sweep(model, p["map"], p["steps"], p["grid_n"], p["r_factor"], p["n_ts"])
    return (res, sweep), True


# ---------------------------------------------------------------------------- densities and graphs
def _density_ident(density) -> str:
    return f"{density.weights_hash}|{json.dumps(cache.jsonable(density.ident), sort_keys=True)}"


def graph_points_count(n_nodes: int, k: int, n_quad: int) -> float:
    """Points a k-NN graph of n nodes evaluates log p at: the nodes and E·n_quad quadrature points, E ≈ 0.75·n·k
    (symmetric k-NN edges, measured 0.7–0.8 n·k on the built-in data)."""
    return n_nodes + 0.75 * n_nodes * k * n_quad


def _points_work(density, points: float) -> tuple[float, float]:
    """(units, calls) of evaluating ``density`` at ``points`` points (one call per chunk of its disk cache)."""
    return float(points), float(max(1, math.ceil(points / density.chunk)))


def _graph_units(model, p):
    n = p["n"] + p.get("n_background", 0)
    pts = graph_points_count(n, p.get("k", 10), p["n_quad"]) + p.get("view_grid", 0) ** 2
    return {("log_prob", _density_ident(p["density"]) + "|graph"): _points_work(p["density"], pts)}


def _graph_marker_params(p) -> dict:
    keep = ("points", "n", "n_background", "graph", "k", "eps", "n_quad", "seed", "upload", "view_grid")
    return {**{k: p.get(k) for k in keep}, "density": p["density"].info}


def _graph_cached(model, p):
    return cache.exists("graph_marker", _graph_marker_params(p), p["density"].weights_hash, "float64")


@_register("geodesic_graph", _graph_units, _graph_cached,
           lambda m, p: f"the geodesic graph of {p['n'] + p.get('n_background', 0)} points: log p at nodes and "
                        "quadrature points")
def _geodesic_graph(model, p, progress):
    """The Geodesics view's fitted graph (a ``GeodesicState``, kept in memory) and its log p view grid."""
    from explorer.views.geodesics import fit_geodesics, geodesic_points, view_density

    density = p["density"]
    total = graph_points_count(p["n"] + p.get("n_background", 0), p.get("k", 10), p["n_quad"])
    density.progress = lambda done, n: progress(min(0.95, done / max(total, 1)), f"log p at {done:,} of {n:,} points")
    try:
        X, is_bg, labels = geodesic_points(model, p["points"], p["n"], p.get("n_background", 0), seed=p.get("seed", 0),
                                           data=p.get("data"))
        params = {**_graph_marker_params(p), "model": p.get("model_name", model.name)}
        state = fit_geodesics(model, density, X, is_bg, labels, graph=p.get("graph", "knn"), k=p.get("k", 10),
                              eps=p.get("eps"), n_quad=p["n_quad"], params=params)
        grid = view_density(density, X, p["view_grid"]) if p.get("view_grid") else None
    finally:
        density.progress = None
    computed = density.n_evals > 0
    cache.cached("graph_marker", _graph_marker_params(p), lambda: {"n_edges": np.array(len(state.est.edges_))},
                 weights_hash=density.weights_hash, dtype="float64")
    return (state, grid), computed


def _refined_units(model, p):
    """About 60 evaluations of the length (L-BFGS with restarts) of REFINE_POINTS vertices × REFINE_QUAD nodes,
    each with 2D more for a central-difference gradient."""
    from explorer.geodesics.interpolation import REFINE_POINTS, REFINE_QUAD

    d = int(p["state"].X.shape[1])
    pts = 60 * REFINE_POINTS * REFINE_QUAD * (1 + 2 * d)
    return {("log_prob", _density_ident(p["density"]) + "|graph"): (float(pts), 60.0 * (1 + 2 * d))}


@_register("refined_geodesic", _refined_units, lambda m, p: False,
           lambda m, p: "the geodesic refined under the continuous metric")
def _refined_geodesic(model, p, progress):
    from explorer.views.geodesics import refined_geodesic

    res = refined_geodesic(p["state"], p["lam"], p["p0"], p["i"], p["j"])
    return res, not res.get("hit", True)


def _image_graph_units(model, p):
    pts = graph_points_count(p["n"], p["k"], p["n_quad"])
    return {("log_prob", _density_ident(p["density"]) + "|graph"): _points_work(p["density"], pts)}


def _image_graph_cached(model, p):
    from explorer.views.image_geodesics import graph_is_cached

    return graph_is_cached(model, p["density"], p["n"], p["k"], p["n_quad"], p.get("points"), p.get("condition"),
                           p.get("steps"))


@_register("image_graph", _image_graph_units, _image_graph_cached,
           lambda m, p: f"the k-NN graph of {p['n']} {'samples' if p.get('points') == 'samples' else 'training images'}"
                        ": log p at nodes and quadrature points")
def _image_graph(model, p, progress):
    from explorer.views.image_geodesics import fit_image_graph

    density = p["density"]
    total = graph_points_count(p["n"], p["k"], p["n_quad"])
    density.progress = lambda done, n: progress(min(0.99, done / max(total, 1)), f"log p at {done:,} of {n:,} points")
    try:
        state = fit_image_graph(model, density, p["n"], p["k"], p["n_quad"], p.get("points"), p.get("condition"),
                                p.get("steps"))
    finally:
        density.progress = None
    return state, density.n_evals > 0


def _three_paths_units(model, p):
    m = p.get("path_len", 10)
    pts = p["max_iter"] * m * (p["n_quad"] + 1) * 3 + 3 * p["n_points"] * (p["n_quad"] + 1)
    return {("log_prob", _density_ident(p["density"]) + "|graph"): (float(pts), float(p["max_iter"] * 3 + 6))}


@_register("three_paths", _three_paths_units, lambda m, p: False,
           lambda m, p: "the refined geodesic, the pixel-space line and the latent slerp")
def _three_paths(model, p, progress):
    from explorer.views.image_geodesics import compare

    res = compare(model, p["density"], p["state"], p["i"], p["j"], p["lam"], p["p0"], p["n_points"], p["max_iter"])
    return res, not res["meta"]["hit"]


# ---------------------------------------------------------------------------- embedding and memorization
def _embedding_units(model, p):
    n = p["n"]
    return {("log_prob", _density_ident(p["density"]) + "|graph"): _points_work(
                p["density"], graph_points_count(n, p["k"], p["n_quad"])),
            ("umap", "umap"): (float(n) * (len(p["lams"]) + 2), float(len(p["lams"]) + 2))}


def _embedding_cached(model, p):
    from explorer.views.embedding import embedding_is_cached

    return embedding_is_cached(model, p["density"], p["n"], p["lams"], k=p["k"], n_quad=p["n_quad"],
                               n_neighbors=p["n_neighbors"], points=p.get("points", "data"),
                               condition=p.get("condition"), steps=p.get("steps"))


@_register("embedding", _embedding_units, _embedding_cached,
           lambda m, p: f"UMAPs of {p['n']} points for {len(p['lams'])} λ values and two baselines")
def _embedding(model, p, progress):
    from explorer.views.embedding import embedding_grid

    arrays, record = embedding_grid(model, p["density"], p["n"], p["lams"], k=p["k"], n_quad=p["n_quad"],
                                    n_neighbors=p["n_neighbors"], progress=progress, points=p.get("points", "data"),
                                    condition=p.get("condition"), steps=p.get("steps"))
    return (arrays, record), not record.get("hit")


def _memorization_units(model, p):
    steps = int(model.default_steps if p.get("steps") is None else p["steps"])
    units = {("descriptor", _descriptor_ident(model, "sampler")): _jvp_units(model, p["n"], "sampler", steps, None,
                                                                           p.get("n_directions"))}
    return units


def _memorization_cached(model, p):
    from explorer.views.memorization import report_is_cached

    return report_is_cached(model, p["n"], p["seed"], p.get("steps"))


@_register("memorization", _memorization_units, _memorization_cached,
           lambda m, p: f"the memorization report of {p['n']} samples: descriptors, log p and nearest images")
def _memorization(model, p, progress):
    from explorer.views.memorization import report_cached

    rep, record = report_cached(model, p["n"], p["seed"], p.get("steps"), p["threshold"], progress,
                                preset=p.get("preset", "default"))
    return (rep, record), not record.get("hit")


def _prompt_args(p):
    return (p["captions"], p.get("labels"), p["per_prompt"], p.get("seed", 0), p.get("steps"), p.get("wen_steps", 1),
            p.get("guidance_scale", 1.0), p.get("reference_dir"), p.get("conditions"), p.get("n_directions"))


def _prompt_units(model, p):
    steps = int(model.default_steps if p.get("steps") is None else p["steps"])
    n = len(p["captions"]) * int(p["per_prompt"])
    return {("descriptor", _descriptor_ident(model, "sampler")): _jvp_units(model, n, "sampler", steps, None,
                                                                           p.get("n_directions"))}


def _prompt_cached(model, p):
    from explorer.views.memorization import prompt_report_is_cached

    return prompt_report_is_cached(model, *_prompt_args(p))


@_register("prompt_memorization", _prompt_units, _prompt_cached,
           lambda m, p: f"the memorization report of {len(p['captions'])} prompts × {p['per_prompt']} samples")
def _prompt_memorization(model, p, progress):
    from explorer.views.memorization import prompt_report_cached

    rep, record = prompt_report_cached(model, *_prompt_args(p), progress=progress)
    return (rep, record), not record.get("hit")


# ---------------------------------------------------------------------------- guidance
def _guidance_params(model, p) -> dict:
    from explorer.views.guidance import guidance_defaults

    return {**guidance_defaults(model, p.get("preset", "default")), **{k: v for k, v in p.items() if k != "preset"}}


def _guidance_units(model, p):
    """(units, calls) of ψ of the reward's training latents (one full-Jacobian pass each: P + 1 copies per step, when
    not cached) and, per ρ and sample, the inversion and ψ at the inverted latent (about two such passes)."""
    q = _guidance_params(model, p)
    steps = int(model.default_steps if q.get("steps") is None else q["steps"])
    n = 2 * len(q["rhos"]) * int(q["n"])
    if not _guidance_reward_cached(model, q):
        n += int(q["reward_n"])
    return {("descriptor", _descriptor_ident(model, "sampler")): _jvp_units(model, n, "sampler", steps, None,
                                                                          q.get("n_directions"), delta=False)}


def _guidance_reward_cached(model, q) -> bool:
    from explorer.guidance.report import reward_params

    condition = {k: q[k] for k in model.capabilities.conditioning if k in q}
    params = reward_params(model, q["reward_n"], q["reward_seed"], q.get("steps"), q["map"], q.get("n_directions"),
                           condition)
    return cache.exists("guidance_psi", params, model.weights_hash)


def _guidance_cached(model, p):
    """Whether the report is on disk: a quick read of the reward (itself cached) and the report."""
    from explorer.guidance.report import guidance_is_cached

    return guidance_is_cached(model, **_guidance_params(model, p))


@_register("guidance", _guidance_units, _guidance_cached,
           lambda m, p: f"reward guidance over {len(_guidance_params(m, p)['rhos'])} values of ρ: the reward, guided "
                        "samples, their inversion and ψ")
def _guidance(model, p, progress):
    from explorer.guidance.report import guidance_report

    arrays, record = guidance_report(model, progress=progress, **_guidance_params(model, p))
    return (arrays, record), not record.get("hit")


# ---------------------------------------------------------------------------- keys, running, estimates
def job_key(name: str, model, params: dict) -> str:
    """A job's name: its kind, the model's weights hash and dtype, and a hash of its parameters (objects such as a
    density count by their own identity: their parameters, or their id when they have none)."""
    def ident(v):
        if hasattr(v, "info") and hasattr(v, "weights_hash"):
            return {"density": v.info, "weights": v.weights_hash}
        if isinstance(v, np.ndarray):
            return hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:16]
        if hasattr(v, "est"):  # a fitted geodesic state
            return f"state-{id(v)}"
        return v

    blob = json.dumps(cache.jsonable({k: ident(v) for k, v in params.items()}), sort_keys=True)
    digest = hashlib.sha256(f"{name}|{model.name}|{model.weights_hash}|{blob}".encode()).hexdigest()[:20]
    return f"{name}-{digest}"


def run_kind(name: str, model, params: dict, job=None, rates: Rates | None = None):
    """Run a job kind (in the worker or in the CLI's own thread) and, when it computed, refine its rate."""
    kind = KINDS[name]

    def progress(fraction, message=None):
        if job is not None:
            job.progress(fraction, message)

    def scaled(*args):  # the views' callbacks: (fraction), (fraction, message) or (done, total)
        if len(args) == 2 and not isinstance(args[1], str):
            progress(args[0] / max(args[1], 1))
        else:
            progress(*args)

    start = time.perf_counter()
    result, computed = kind.run(model, params, scaled)
    seconds = time.perf_counter() - start
    work = kind.units(model, params)
    if computed and len(work) == 1:
        (op, ident), (units, calls) = next(iter(work.items()))
        view = compute_view(model)
        (rates or default_rates()).record(op, ident, str(compute_device()), str(view.dtype), units, seconds, calls)
    return result


#: A probe times two batch sizes, the second large enough to take at least PROBE_SECONDS (the first mostly shows
#: the per-call overhead, which large chunks pay once, not per latent or point).
PROBE_SECONDS = 0.3
PROBE_MAX = 1024


def _two_timings(run, max_n: int = PROBE_MAX) -> tuple[int, float, int, float]:
    """(n1, t1, n2, t2): ``run(n)`` timed at n1 = 2 and at the first n2 = 8, 32, 128, … (≤ max_n) taking
    PROBE_SECONDS, after a warm-up call."""
    def timed(n):
        start = time.perf_counter()
        run(n)
        return time.perf_counter() - start

    timed(1)
    n1, t1 = 2, timed(2)
    n2 = 8
    while True:
        t2 = timed(n2)
        if t2 >= PROBE_SECONDS or n2 >= max_n:
            return n1, t1, n2, t2
        n2 = min(max_n, n2 * 4)


def _probe_descriptor_rate(model, map_name: str, rates: Rates):
    """Fit the descriptor cost of ``map_name``: ψ/ν (a P = 2 sketch, or d when smaller) and δ of 2 and of n
    latents; per call and step, per latent · step · copy."""
    from explorer.descriptors import local_complexity, local_descriptors

    view = compute_view(model)
    T = model.num_train_timesteps
    steps = min(int(model.default_steps or 1), 50) if model.capabilities.diffusion else None
    t = None if map_name in ("sampler", "decoder") or T is None else T // 2
    G = view.generator(map_name, steps=steps, t=t)
    P = min(2, int(np.prod(model.latent_shape)))
    z = model.latents(PROBE_MAX, seed=123)

    def run(n):
        local_descriptors(G, z[:n], n_directions=P)
        try:
            local_complexity(G, z[:n], radius=1e-3, n_directions=P)
        except ValueError:  # no activation module to hook: δ is not computed either
            pass

    n1, t1, n2, t2 = _two_timings(run)
    S = _eff_steps(model, map_name, steps or 1, t)
    per = float(S * ((P + 1) + (2 * P + 1)))  # units per latent
    cost = rates.fit("descriptor", _descriptor_ident(model, map_name), str(compute_device()), str(view.dtype),
                     n1 * per, t1, n2 * per, t2)
    calls = 2.0 * S  # two passes of S steps per call of run
    return rates.set("descriptor", _descriptor_ident(model, map_name), str(compute_device()), str(view.dtype),
                     type(cost)(cost.a / calls, cost.b))


def _probe_points(model, kind_name: str, params: dict) -> np.ndarray:
    """Points like the ones the job evaluates: a graph's own nodes and quadrature points where the job builds a
    graph (its k-NN structure is cheap), else training points moved a little off the data."""
    if kind_name == "geodesic_graph":
        from explorer.geodesics.graph import knn_edges
        from explorer.geodesics.quadrature import gauss_legendre_01
        from explorer.views.geodesics import geodesic_points

        X, _, _ = geodesic_points(model, params["points"], params["n"], params.get("n_background", 0),
                                  seed=params.get("seed", 0), data=params.get("data"))
        E = knn_edges(X, min(int(params.get("k", 10)), len(X) - 1))
        t, _ = gauss_legendre_01(int(params["n_quad"]))
        rng = np.random.default_rng(0)
        e = E[rng.choice(len(E), min(len(E), PROBE_MAX), replace=False)]
        q = t[rng.integers(len(t), size=len(e))][:, None]
        return X[e[:, 0]] + q * (X[e[:, 1]] - X[e[:, 0]])
    if model.training_set is not None:
        idx = np.resize(np.arange(len(model.training_set)), PROBE_MAX)
        pts = model.training_set.data(idx).reshape(PROBE_MAX, -1).astype(np.float64)
        return pts + 0.01 * np.random.default_rng(0).normal(size=pts.shape)
    return np.random.default_rng(0).normal(size=(PROBE_MAX, int(np.prod(model.sample_shape))))


def _probe_log_prob_rate(model, density, ident: str, pts: np.ndarray, rates: Rates):
    """Fit the density's cost (bypassing its disk cache) on 2 and on n of ``pts``: per call, per point."""
    n1, t1, n2, t2 = _two_timings(lambda k: density.fn(pts[:k]), max_n=len(pts))
    view = compute_view(model)
    return rates.fit("log_prob", ident, str(compute_device()), str(view.dtype), n1, t1, n2, t2)


#: UMAP's cost before any embedding ran here: about 1 s per call and 600 points per second after its JIT
#: warm-up, measured on a 2-core CPU; embedding jobs refine it.
UMAP_PRIOR = (1.0, 1 / 600.0)


def estimate(name: str, model, params: dict, rates: Rates | None = None, probe: bool = True) -> float | None:
    """Seconds the job will take: Σ (a · calls + b · units) over its operations, from the measured costs (a cost not
    yet measured is probed first when ``probe``, else the estimate is None)."""
    from explorer.jobs.rates import Cost

    rates = rates or default_rates()
    device, dtype = str(compute_device()), str(compute_view(model).dtype)
    total = 0.0
    for (op, ident), (units, calls) in KINDS[name].units(model, params).items():
        cost = rates.get(op, ident, device, dtype)
        if cost is None and op == "umap":
            cost = Cost(*UMAP_PRIOR)
        if cost is None:
            if not probe:
                return None
            if op == "descriptor":
                cost = _probe_descriptor_rate(model, ident.split("|")[-1], rates)
            else:
                cost = _probe_log_prob_rate(model, params["density"], ident, _probe_points(model, name, params),
                                            rates)
        total += cost.seconds(units, calls)
    return 0.5 + total


def probe_key(name: str, model, params: dict) -> str:
    """The job key of the rate probe an estimate of this job needs (one per operation and model)."""
    ops = sorted(f"{op}|{ident}" for op, ident in KINDS[name].units(model, params))
    if name == "geodesic_graph":  # its probe samples the graph's own points
        ops.append(job_key(name, model, params))
    return "probe-" + hashlib.sha256("|".join(ops).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- the papers' figures
@_register("figure", lambda m, p: {}, lambda m, p: False, lambda m, p: f"the paper's {p['figure']}")
def _figure(model, p, progress):
    """One of explorer.views.figures (its inputs are disk-cached: from the shipped cache it is quick)."""
    from explorer.models import load_model
    from explorer.views import figures

    name = p["figure"]
    if name == "figure2":
        return figures.figure2(model, p.get("preset", "default")), True
    if name == "figure3":
        return figures.figure3(model), True
    if name == "figure4":
        return figures.figure4(), True
    if name == "figure5":
        return figures.figure5([load_model(s) for s in figures.FIG5_MODELS]), True
    raise ValueError(f"unknown figure {name!r}")

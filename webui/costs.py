"""Cost estimates of heavy work, and how the app words them."""

from __future__ import annotations

import math

from explorer.density.cached import likelihood_seconds_per_point

#: Seconds per unit on a contended 2-core CPU, measured for the toy 2-D models (conservative): e.g. 128² cells of
#: the 50-step sampler took 69 s; embeddings of 1,000 points over 5 λ values took 24 s. ``direction_step``: ψ, ν
#: and δ per latent, sampler step and Jacobian direction through the digits' 512-wide MLP (P = 16 and P = 64 both
#: gave 1.5e-4 s: 0.19 s per latent for the full 64-direction Jacobian of the 20-step sampler).
_COST = {"step_overhead": 0.3, "latent_step": 1.5e-4, "direction_step": 1.5e-4, "density_eval": 5.0e-6,
         "logprob_eval_step": 1.0e-5, "dijkstra_pair": 1.0e-6, "umap_point": 1.5e-3}


def descriptor_cost(n_latents: int, steps: int, map_name: str = "sampler", t: int | None = None,
                    T: int = 1000, n_directions: int = 2) -> float:
    """Estimated seconds for ψ/ν/δ of ``n_latents`` latents through a ``map_name`` with ``steps`` steps and
    ``n_directions`` Jacobian directions (2 for the toy models; up to 64 for the digits)."""
    if map_name == "denoiser":
        eff = 1
    elif map_name == "from_t" and t is not None:
        eff = max(1, math.ceil(steps * (t + 1) / T))
    else:
        eff = steps
    per = _COST["latent_step"] if n_directions <= 2 else n_directions * _COST["direction_step"]
    return 1.0 + eff * (_COST["step_overhead"] + n_latents * per)


def density_cost(n_points: int, model_density: bool, steps: int = 50,
                 seconds_per_point: float | None = None) -> float:
    """Estimated seconds to evaluate log p at ``n_points`` (model likelihood or KDE); ``seconds_per_point``
    (a measured model likelihood, e.g. the digits' ODE) replaces the toy models' DDIM inversion estimate."""
    if model_density and seconds_per_point is not None:
        per = float(seconds_per_point)
    else:
        per = _COST["logprob_eval_step"] * steps if model_density else _COST["density_eval"]
    return 1.0 + n_points * per


def graph_cost(n_nodes: int, k: int, n_quad: int, model_density: bool, steps: int = 50,
               seconds_per_point: float | None = None) -> float:
    """Estimated seconds to fit the geodesic graph: log p at the nodes and at E·n_quad quadrature points."""
    n_edges = n_nodes * k * 0.75
    return density_cost(int(n_nodes + n_edges * n_quad), model_density, steps, seconds_per_point)


def embedding_cost(n: int, n_lams: int, graph: float) -> float:
    """Estimated seconds for the embedding page: graph fit, (n_lams + 1) distance matrices, n_lams + 2 UMAPs."""
    return graph + (n_lams + 1) * n * n * _COST["dijkstra_pair"] + (n_lams + 2) * (1.0 + n * _COST["umap_point"])


def needs_confirm(seconds: float, limit: float = 60.0) -> bool:
    """Whether work of ``seconds`` must say its cost and wait for a confirm (issue: more than about a minute)."""
    return float(seconds) > float(limit)


def describe_seconds(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    return f"about {seconds / 60:.0f} min"


def density_fit_cost(model, source: str, n_points: int) -> float:
    per = likelihood_seconds_per_point(model) if source == "model" else None
    return density_cost(n_points, source == "model", getattr(model, "default_steps", 50), per)


def descriptor_plane_cost(map_name: str, steps: int, t: int | None, n: int, n_directions: int = 2) -> float:
    return descriptor_cost(n * n, steps, map_name, t, n_directions=n_directions)


def sample_descriptors_cost(map_name: str, steps: int, t: int | None, n: int, n_directions: int = 2) -> float:
    return descriptor_cost(n, steps, map_name, t, n_directions=n_directions)


def graph_fit_cost(model, source: str, n_nodes: int, k: int, n_quad: int) -> float:
    per = likelihood_seconds_per_point(model) if source == "model" else None
    return graph_cost(n_nodes, k, n_quad, source == "model", getattr(model, "default_steps", 50), per)


def embedding_cost_estimate(model, source: str, n: int, n_lams: int, k: int, n_quad: int) -> float:
    return embedding_cost(n, n_lams, graph_fit_cost(model, source, n, k, n_quad))

"""Generative geodesics d_{Ψ,λ} (Kim et al. 2024; DESIGN.md §3) on neighbourhood graphs, and their helpers."""

from __future__ import annotations

from explorer.geodesics.background import add_background_points
from explorer.geodesics.baselines import straight_line_distances, unit_graph_distances
from explorer.geodesics.estimator import GenerativeGeodesics, affinity_from_distances
from explorer.geodesics.interpolation import discrete_length, profile_along, refine_path, straight_line
from explorer.geodesics.metric import conformal_factor, edge_weights, log_conformal_factor
from explorer.geodesics.quadrature import gauss_legendre_01, trapezoid_01

__all__ = [
    "GenerativeGeodesics",
    "add_background_points",
    "affinity_from_distances",
    "conformal_factor",
    "discrete_length",
    "edge_weights",
    "gauss_legendre_01",
    "log_conformal_factor",
    "profile_along",
    "refine_path",
    "straight_line",
    "straight_line_distances",
    "trapezoid_01",
    "unit_graph_distances",
]

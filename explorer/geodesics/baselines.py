"""Baselines beside d_{Ψ,λ}: the straight-line distance ‖x − y‖ and the c ≡ 1 graph distance (Isomap-style).

Shown side by side so that a user can tell what the density adds beyond the graph itself.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial.distance import cdist


def straight_line_distances(X: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """‖x_s − x_n‖ for each source index s and every point n: ``(S, N)``."""
    X = np.asarray(X, dtype=np.float64)
    return cdist(X[np.asarray(sources).reshape(-1)], X)


def unit_graph_distances(graph: csr_matrix, sources: np.ndarray) -> np.ndarray:
    """Shortest-path distances with c ≡ 1, i.e. on ``graph`` whose entries are the Euclidean edge lengths."""
    return dijkstra(graph, directed=True, indices=np.asarray(sources))

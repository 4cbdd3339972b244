"""Neighbourhood graphs on points: duplicate merging, ε- and symmetric k-NN edges, CSR layout, connectivity.

Edges are undirected pairs (i < j). The symmetric k-NN graph is the union: i–j is an edge when either is
among the other's k nearest neighbours. Exact duplicates are merged into one node first, since a
zero-length edge would get weight 0, which scipy's sparse graphs drop (a fake disconnection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform
from sklearn.neighbors import NearestNeighbors

#: k(N) = max(K_MIN, round(K_PER_LOG_N · ln N)), the default neighbour count (``default_k``).
K_PER_LOG_N = 1.5
K_MIN = 10
DENSE_MST_LIMIT = 3000  # up to this many nodes the smallest connecting ε is exact (dense MST)
MAX_CONNECTING_K = 1024  # the search for the smallest connecting k stops here (memory N × k)


def merge_duplicates(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge identical rows of ``X``.

    Returns ``(nodes, node_of, representative)``: ``nodes`` are the distinct points in order of first
    occurrence, ``node_of[i]`` the node of original point i, ``representative[n]`` the first original
    index of node n (so ``nodes == X[representative]`` and ``X == nodes[node_of]``).
    """
    _, first, inverse = np.unique(X, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first, kind="stable")  # unique rows sorted by first occurrence
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    representative = first[order]
    return X[representative], rank[inverse], representative


def default_k(n: int) -> int:
    """The default k of the symmetric k-NN graph on ``n`` nodes: max(10, round(1.5 ln n)) (12 at 2,500 nodes, 14 at
    10,000, 10 below about 800).

    Why k ∝ ln N: a k-NN graph on N uniform points in the plane is connected with probability → 1 once
    k ≥ 0.5139 ln N and → 0 below 0.3043 ln N (Balister, Bollobás, Sarkar and Walters 2005), so 1.5 ln N keeps a
    margin of about 3 over the threshold at every N, while a fixed k eventually disconnects and a k ∝ √N (the
    convergence study's ``auto_k``, which makes the graph error itself vanish) costs √N density evaluations per
    node (every edge costs n_quad evaluations). The rest of the graph's zig-zag error is removed by refining the
    path (``refine_shortest``), whose length is the one reported; the graph only has to find the right route.
    """
    n = int(n)
    return max(K_MIN, int(round(K_PER_LOG_N * np.log(max(n, 2)))))


def knn_edges(X: np.ndarray, k: int) -> np.ndarray:
    """Edges ``(E, 2)`` (i < j, unique) of the symmetric k-NN union graph."""
    n = len(X)
    k = min(int(k), n - 1)
    if k < 1:
        return np.empty((0, 2), dtype=np.int64)
    if X.shape[1] > EXACT_KNN_MIN_DIM:
        nbrs = exact_knn(X, k + 1)
    else:  # a k-d tree: exact distances, deterministic ties
        nbrs = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)
    return _knn_pairs(nbrs, k)


#: From this dimension on, scikit-learn's "auto" neighbours are brute force through BLAS, whose rounding depends
#: on the thread count, so exact ties (common between images with integer pixel levels) break differently from
#: run to run and the graph, and with it every content-keyed density cache entry, changes. We use exact_knn.
EXACT_KNN_MIN_DIM = 15


def exact_knn(X: np.ndarray, k: int, chunk: int | None = None) -> np.ndarray:
    """Indices (n, k) of each row's k nearest rows (itself included), by exact float64 squared distances
    Σ_d (x_d − y_d)², ties broken by the lower index: the same answer on every machine and thread count."""
    X = np.asarray(X, dtype=np.float64)
    chunk = chunk or max(1, 4_000_000 // max(1, X.size))  # rows per block: about 32 MB of differences
    out = np.empty((len(X), k), dtype=np.int64)
    idx = np.arange(len(X))
    for start in range(0, len(X), chunk):
        block = X[start:start + chunk]
        d2 = ((block[:, None, :] - X[None, :, :]) ** 2).sum(-1)
        order = np.lexsort((np.broadcast_to(idx, d2.shape), d2), axis=1)  # by distance, then index
        out[start:start + chunk] = order[:, :k]
    return out


def _knn_pairs(nbrs: np.ndarray, k: int) -> np.ndarray:
    """Union pairs from a ``(n, k + 1)`` neighbour table that includes each point itself (else drop the last)."""
    n = nbrs.shape[0]
    is_self = nbrs == np.arange(n)[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # self not returned (ties): drop the farthest instead
    drop_first = np.cumsum(is_self, axis=1) == 1  # only the first self-like entry
    keep = ~(is_self & drop_first)
    rows = np.broadcast_to(np.arange(n)[:, None], nbrs.shape)[keep]
    return _unique_pairs(rows, nbrs[keep], n)


def epsilon_edges(X: np.ndarray, eps: float) -> np.ndarray:
    """Edges ``(E, 2)`` (i < j) with ‖x_i − x_j‖ ≤ ε."""
    nn = NearestNeighbors(radius=float(eps)).fit(X)
    A = nn.radius_neighbors_graph(X, mode="connectivity").tocoo()
    return _unique_pairs(A.row, A.col, len(X))


def _unique_pairs(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    a, b = np.minimum(rows, cols), np.maximum(rows, cols)
    keep = a != b
    key = np.unique(a[keep].astype(np.int64) * n + b[keep])
    return np.stack([key // n, key % n], axis=1)


@dataclass
class CSRLayout:
    """A symmetric CSR structure over undirected edges; ``edge_of_entry`` maps each stored entry to its edge.

    Re-weighting keeps ``indptr``/``indices`` and only replaces ``data = w[edge_of_entry]``.
    """

    indptr: np.ndarray
    indices: np.ndarray
    edge_of_entry: np.ndarray
    n_nodes: int

    @classmethod
    def from_edges(cls, edges: np.ndarray, n_nodes: int) -> CSRLayout:
        E = len(edges)
        rows = np.concatenate([edges[:, 0], edges[:, 1]])
        cols = np.concatenate([edges[:, 1], edges[:, 0]])
        eid = np.concatenate([np.arange(E), np.arange(E)])
        order = np.lexsort((cols, rows))
        indptr = np.zeros(n_nodes + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=n_nodes), out=indptr[1:])
        return cls(indptr, cols[order].astype(np.int32), eid[order], n_nodes)

    def matrix(self, edge_values: np.ndarray) -> csr_matrix:
        """A new CSR matrix with entry values ``edge_values[edge]`` (shares ``indptr``/``indices``)."""
        M = csr_matrix((edge_values[self.edge_of_entry], self.indices, self.indptr),
                       shape=(self.n_nodes, self.n_nodes))
        M.has_sorted_indices = True
        return M


def components(edges: np.ndarray, n_nodes: int) -> tuple[int, np.ndarray]:
    """``(n_components, labels)`` of the undirected graph."""
    A = csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_nodes, n_nodes))
    return connected_components(A, directed=False)


def smallest_connecting_eps(X: np.ndarray) -> tuple[float | None, bool]:
    """The smallest ε whose ε-graph is connected: the longest edge of the Euclidean minimum spanning tree.

    Returns ``(eps, exact)``: exact up to ``DENSE_MST_LIMIT`` nodes; beyond, the MST of a connected
    k-NN graph, an upper bound (``None`` when no k ≤ ``MAX_CONNECTING_K`` connects it).
    """
    n = len(X)
    if n < 2:
        return 0.0, True
    if n <= DENSE_MST_LIMIT:
        T = minimum_spanning_tree(csr_matrix(squareform(pdist(X))))
        return float(T.data.max()), True
    k = smallest_connecting_k(X)
    if k is None:
        return None, False
    e = knn_edges(X, k)
    d = np.linalg.norm(X[e[:, 0]] - X[e[:, 1]], axis=1)
    T = minimum_spanning_tree(csr_matrix((d, (e[:, 0], e[:, 1])), shape=(n, n)))
    return float(T.data.max()), False


def smallest_connecting_k(X: np.ndarray) -> int | None:
    """The smallest k whose symmetric k-NN union graph on ``X`` is connected (binary search).

    ``None`` when even k = ``MAX_CONNECTING_K`` leaves it disconnected.
    """
    n = len(X)
    if n < 2:
        return 0
    k_max = min(16, n - 1)
    nn = NearestNeighbors().fit(X)
    while True:
        nbrs = nn.kneighbors(X, n_neighbors=k_max + 1, return_distance=False)

        def connected(k: int, nbrs=nbrs) -> bool:
            return components(_knn_pairs(nbrs[:, :k + 1], k), n)[0] == 1

        if connected(k_max):
            break
        if k_max >= min(n - 1, MAX_CONNECTING_K):
            return None
        k_max = min(2 * k_max, n - 1, MAX_CONNECTING_K)
    lo, hi = 1, k_max  # hi connects
    while lo < hi:
        mid = (lo + hi) // 2
        if connected(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi

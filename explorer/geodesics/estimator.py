"""``GenerativeGeodesics``: the λ-metric d_{Ψ,λ} on a neighbourhood graph with a cached density (DESIGN.md §3).

c(x) = (p0 + λ)/(p_Ψ(x) + λ); edge weight w_ij = ‖x_j − x_i‖ Σ_q ω_q c(x_i + t_q (x_j − x_i)) with
Gauss–Legendre nodes t_q; shortest paths by Dijkstra. log p at every node and quadrature point does not
depend on λ: ``fit`` evaluates it once, ``set_lam`` re-weights from the cache (no density calls) and only
replaces the CSR ``data``. With ``relative=True``, λ and p0 are in units of p_ref (the median training
density, ``log_p_ref``): λ_abs = λ·p_ref, p0_abs = p0·p_ref, an exact reparametrization.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy.sparse.csgraph import dijkstra

from explorer.density.analytic import as_points
from explorer.errors import UserError, require_memory
from explorer.geodesics import baselines
from explorer.geodesics.graph import (
    CSRLayout,
    components,
    default_k,
    epsilon_edges,
    knn_edges,
    merge_duplicates,
    smallest_connecting_eps,
    smallest_connecting_k,
)
from explorer.geodesics.metric import edge_weights, log_conformal_factor
from explorer.geodesics.quadrature import gauss_legendre_01

LogDensity = Callable[[np.ndarray], np.ndarray]


def _positive(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number; got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    return value


def _count(value, name: str, lo: int = 1) -> int:
    """``value`` as an int ≥ ``lo`` (integral floats allowed); a one-sentence UserError otherwise."""
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    if not ok or not float(value).is_integer() or value < lo:
        raise UserError(f"{name} must be an integer >= {lo}; got {value!r}")
    return int(value)


def _quadrature_bytes(n: int) -> float:
    """Memory of the n-point Gauss–Legendre rule (NumPy solves an n × n eigenproblem)."""
    return 3.0 * 8 * n * n


def evaluate_log_density(log_density: LogDensity, P: np.ndarray, batch_size: int) -> np.ndarray:
    """log p at the rows of ``P``, in consecutive batches of ``batch_size`` rows; checked for shape and NaN."""
    out = np.empty(len(P))
    for s in range(0, len(P), batch_size):
        chunk = P[s:s + batch_size]
        v = log_density(chunk)
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if v.shape != (len(chunk),):
            raise ValueError(f"log_density returned {v.shape[0]} values for {len(chunk)} points; "
                             "it must map an (M, D) array to (M,) log densities")
        if np.isnan(v).any():
            raise ValueError(f"log_density returned NaN at {int(np.isnan(v).sum())} of {len(v)} points")
        out[s:s + len(chunk)] = v
    return out


class GenerativeGeodesics:
    """Generative geodesics d_{Ψ,λ} on a k-NN (``graph="knn"``) or ε-graph (``graph="epsilon"``).

    Parameters: ``lam`` (λ > 0), ``p0`` (> 0), ``relative`` (λ, p0 in units of p_ref = exp(``log_p_ref``),
    which is then required, e.g. a model's ``log_p_ref``), ``k`` / ``eps`` (graph; ``k=None``: ``default_k`` of the
    number of distinct points, max(10, round(1.5 ln N))), ``n_quad`` (Gauss–Legendre nodes per edge), ``n_straight``
    (≥ 64 nodes for the straight-segment comparison), ``batch_size`` (points per ``log_density`` call),
    ``max_matrix_points`` (largest N for ``distance_matrix``).

    Fitted attributes: ``graph_`` (CSR, symmetric, weights w_ij), ``n_components_``, ``labels_`` (component of
    each input point), ``n_density_evals_`` (points handed to ``log_density``: N_nodes + E·n_quad after ``fit``,
    plus n_straight per new pair in ``compare_with_straight``), ``nodes_``, ``node_of_``, ``representative_``,
    ``n_duplicates_``, ``k_`` (the k used; None for an ε-graph), ``edges_``, ``edge_lengths_``, ``log_p_nodes_``,
    ``log_p_quad_``, ``weights_``, ``log_p_ref_`` (0 when ``relative=False``), ``connectivity_``.
    """

    def __init__(self, lam: float = 1.0, p0: float = 1.0, relative: bool = False, log_p_ref: float | None = None,
                 graph: str = "knn", k: int | None = 10, eps: float | None = None, n_quad: int = 3,
                 n_straight: int = 64, batch_size: int = 65536, max_matrix_points: int = 10000):
        self.lam = lam
        self.p0 = p0
        self.relative = relative
        self.log_p_ref = log_p_ref
        self.graph = graph
        self.k = k
        self.eps = eps
        self.n_quad = n_quad
        self.n_straight = n_straight
        self.batch_size = batch_size
        self.max_matrix_points = max_matrix_points

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        """Every parameter, with one sentence naming it when it is wrong (called by ``fit``)."""
        _positive(self.lam, "lam")
        _positive(self.p0, "p0")
        if not isinstance(self.relative, bool | np.bool_):
            raise UserError(f"relative must be True or False; got {self.relative!r}")
        if self.graph not in ("knn", "epsilon"):
            raise ValueError(f"graph must be 'knn' or 'epsilon'; got {self.graph!r}")
        if self.graph == "knn" and self.k is not None:
            _count(self.k, "k")
        if self.graph == "epsilon":
            if self.eps is None:
                raise ValueError("eps is required when graph='epsilon'")
            _positive(self.eps, "eps")
        elif self.eps is not None:
            _positive(self.eps, "eps")
        _count(self.n_quad, "n_quad")
        _count(self.n_straight, "n_straight", 64)
        _count(self.batch_size, "batch_size")
        _count(self.max_matrix_points, "max_matrix_points", 2)
        for n, name in ((self.n_quad, "n_quad"), (self.n_straight, "n_straight")):
            require_memory(_quadrature_bytes(int(n)), f"a {int(n)}-node Gauss–Legendre rule ({name})",
                           f"lower {name}")
        if self.log_p_ref is not None:
            try:
                finite = math.isfinite(float(self.log_p_ref))
            except (TypeError, ValueError):
                finite = False
            if not finite:
                raise UserError(f"log_p_ref must be a finite number; got {self.log_p_ref!r}")
        elif self.relative:
            raise ValueError("relative=True needs log_p_ref (log of the reference density p_ref, e.g. the "
                             "model's log_p_ref: the median log p of its training data)")

    def fit(self, X, log_density: LogDensity) -> GenerativeGeodesics:
        """Build the graph on ``X`` (``(N, D)``), evaluate and cache log p at nodes and quadrature points."""
        self._check_params()
        if not callable(log_density):
            raise ValueError("log_density must be a callable from an (M, D) array to (M,) log densities")
        X = as_points(X, name="X")
        if len(X) < 2:
            raise ValueError(f"X must hold at least 2 points; got {len(X)}")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinite coordinates")
        self.X_ = X
        self.nodes_, self.node_of_, self.representative_ = merge_duplicates(X)
        self.n_duplicates_ = len(X) - len(self.nodes_)
        n = len(self.nodes_)
        if n < 2:
            raise ValueError("X holds fewer than 2 distinct points")
        self.k_ = None if self.graph != "knn" else default_k(n) if self.k is None else int(self.k)
        self.edges_ = knn_edges(self.nodes_, self.k_) if self.graph == "knn" else epsilon_edges(self.nodes_, self.eps)
        E, D, nq = len(self.edges_), X.shape[1], int(self.n_quad)
        require_memory(8.0 * (2 * E * nq * (D + 1) + 2 * E * D) + _quadrature_bytes(nq),
                       f"log p at {E} edges × {nq} quadrature nodes in {D} dimensions", "lower n_quad or k")
        A, B = self.nodes_[self.edges_[:, 0]], self.nodes_[self.edges_[:, 1]]
        self.edge_lengths_ = np.linalg.norm(B - A, axis=1)
        self._t_quad, self._w_quad = gauss_legendre_01(nq)
        Q = (A[:, None, :] + self._t_quad[None, :, None] * (B - A)[:, None, :]).reshape(-1, X.shape[1])
        log_p = evaluate_log_density(log_density, np.concatenate([self.nodes_, Q]), int(self.batch_size))
        self.log_density_ = log_density
        self.n_density_evals_ = len(log_p)
        self.log_p_nodes_ = log_p[:n]
        self.log_p_quad_ = log_p[n:].reshape(E, nq)
        self.log_p_ref_ = float(self.log_p_ref) if self.relative else 0.0
        self._layout = CSRLayout.from_edges(self.edges_, n)
        self._unit_graph = self._layout.matrix(self.edge_lengths_)
        self.graph_ = self._layout.matrix(np.zeros(len(self.edges_)))
        self.n_components_, node_labels = components(self.edges_, n)
        self._node_labels = node_labels
        self.labels_ = node_labels[self.node_of_]
        self.connectivity_ = self._connectivity()
        self._straight_cache: dict[tuple[int, int], np.ndarray] = {}
        self._reweight()
        return self

    def _connectivity(self) -> dict:
        sizes = np.bincount(self._node_labels)
        report = {"n_components": int(self.n_components_), "sizes": sorted(sizes.tolist(), reverse=True)}
        if self.n_components_ > 1:
            if self.graph == "knn":
                k = report["smallest_k"] = smallest_connecting_k(self.nodes_)
                fix = f"use k >= {k}" if k is not None else "no k <= 1024 connects it"
            else:
                eps, exact = smallest_connecting_eps(self.nodes_)
                report["smallest_eps"], report["smallest_eps_exact"] = eps, exact
                fix = ("no k-NN graph with k <= 1024 connects it" if eps is None
                       else f"use eps >= {eps:.4g}" + ("" if exact else " (an upper bound)"))
            report["fix"] = fix + ", or add background points (explorer.geodesics.add_background_points)"
            shown = ", ".join(map(str, report["sizes"][:10])) + (", ..." if len(sizes) > 10 else "")
            warnings.warn(f"the {self.graph} graph has {self.n_components_} connected components (sizes {shown}); "
                          f"distances between them are inf. Fix: {report['fix']}", RuntimeWarning, stacklevel=3)
        return report

    # ------------------------------------------------------------------ λ
    @property
    def log_lam_(self) -> float:
        """log of λ in absolute density units (λ·p_ref when ``relative``)."""
        return math.log(_positive(self.lam, "lam")) + self.log_p_ref_

    @property
    def log_p0_(self) -> float:
        """log of p0 in absolute density units (p0·p_ref when ``relative``)."""
        return math.log(_positive(self.p0, "p0")) + self.log_p_ref_

    @property
    def lam_quantile_(self) -> float:
        """Fraction of the cached log p (nodes and quadrature points) at or below log λ: where λ sits."""
        n = self.log_p_nodes_.size + self.log_p_quad_.size
        lam = self.log_lam_
        below = np.count_nonzero(self.log_p_nodes_ <= lam) + np.count_nonzero(self.log_p_quad_ <= lam)
        return below / n

    def _reweight(self) -> None:
        self.weights_ = edge_weights(self.edge_lengths_, self.log_p_quad_, self._w_quad, self.log_lam_, self.log_p0_)
        np.take(self.weights_, self._layout.edge_of_entry, out=self.graph_.data)
        self._sssp = None

    def set_lam(self, lam: float, p0: float | None = None) -> GenerativeGeodesics:
        """Change λ (and p0) and re-weight the edges from the cached densities; no call of ``log_density``."""
        self._check_fitted()
        lam = _positive(lam, "lam")
        p0 = self.p0 if p0 is None else _positive(p0, "p0")
        self.lam, self.p0 = lam, p0
        self._reweight()
        return self

    # ------------------------------------------------------------------ queries
    def _check_fitted(self) -> None:
        if not hasattr(self, "graph_"):
            raise RuntimeError("this GenerativeGeodesics is not fitted yet; call fit(X, log_density) first")

    def _nodes_of(self, idx, name: str) -> tuple[np.ndarray, bool]:
        self._check_fitted()
        arr = np.asarray(idx)
        scalar = arr.ndim == 0
        arr = arr.reshape(-1)
        if arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be point indices (integers); got {idx!r}")
        N = len(self.X_)
        if arr.min() < 0 or arr.max() >= N:
            raise ValueError(f"{name} must be indices in [0, {N}); got {idx!r}")
        return self.node_of_[arr], scalar

    def _single_source(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        if self._sssp is None or self._sssp[0] != node:
            dist, pred = dijkstra(self.graph_, directed=True, indices=node, return_predecessors=True)
            self._sssp = (node, dist, pred)
        return self._sssp[1], self._sssp[2]

    def distances(self, sources) -> np.ndarray:
        """d_{Ψ,λ} from each source (input indices) to every input point: ``(S, N)`` (``(N,)`` for one source)."""
        nodes, scalar = self._nodes_of(sources, "sources")
        if len(nodes) == 1:
            D = self._single_source(int(nodes[0]))[0][None]
        else:
            D = dijkstra(self.graph_, directed=True, indices=nodes)
        D = D[:, self.node_of_]
        return D[0] if scalar else D

    def graph_distances(self, sources) -> np.ndarray:
        """Baseline: the same graph with c ≡ 1 (Euclidean edge lengths); shape as ``distances``."""
        nodes, scalar = self._nodes_of(sources, "sources")
        D = baselines.unit_graph_distances(self._unit_graph, nodes)[:, self.node_of_]
        return D[0] if scalar else D

    def euclidean_distances(self, sources) -> np.ndarray:
        """Baseline: the straight-line distance ‖x_s − x_n‖; shape as ``distances``."""
        self._nodes_of(sources, "sources")
        idx = np.asarray(sources)
        D = baselines.straight_line_distances(self.X_, idx.reshape(-1))
        return D[0] if idx.ndim == 0 else D

    def path(self, i: int, j: int, return_length: bool = False):
        """Input indices of the discrete geodesic from point ``i`` to point ``j`` (both included).

        Raises ValueError naming both components when ``i`` and ``j`` are not connected.
        """
        (ni,), _ = self._nodes_of(i, "i")
        (nj,), _ = self._nodes_of(j, "j")
        dist, pred = self._single_source(int(ni))
        if not np.isfinite(dist[nj]):
            ci, cj = self._node_labels[ni], self._node_labels[nj]
            sizes = np.bincount(self._node_labels)
            raise ValueError(f"points {i} and {j} are not connected: {i} lies in component {ci} ({sizes[ci]} nodes), "
                             f"{j} in component {cj} ({sizes[cj]} nodes) of {self.n_components_}. "
                             f"Fix: {self.connectivity_.get('fix', '')}")
        chain = [int(nj)]
        while chain[-1] != ni:
            chain.append(int(pred[chain[-1]]))
        out = self.representative_[np.array(chain[::-1])]
        out[0], out[-1] = int(i), int(j)
        if ni == nj and int(i) != int(j):
            out = np.array([int(i), int(j)])
        return (out, float(dist[nj])) if return_length else out

    def affinity(self, i=None, sigma: float | None = None) -> np.ndarray:
        """exp(−d²/2σ²) from point(s) ``i`` (all pairs when None); σ = the median finite positive distance.

        Unreachable points (d = inf) get affinity 0.
        """
        D = self.distance_matrix() if i is None else self.distances(i)
        return affinity_from_distances(D, sigma)

    def distance_matrix(self, kind: str = "geodesic", chunk_size: int = 256) -> np.ndarray:
        """All-pairs ``(N, N)`` distances: ``kind`` = ``geodesic`` (d_{Ψ,λ}), ``graph`` (c ≡ 1) or ``euclidean``.

        Computed in chunks of sources; refuses N > ``max_matrix_points`` with a clear error.
        """
        self._check_fitted()
        N = len(self.X_)
        if N > self.max_matrix_points:
            raise ValueError(f"distance_matrix for N = {N} points needs {N * N * 8 / 1e9:.1f} GB; the limit is "
                             f"max_matrix_points = {self.max_matrix_points}. Use distances(sources) for a subset, "
                             "or raise max_matrix_points")
        if kind == "euclidean":
            return baselines.straight_line_distances(self.X_, np.arange(N))
        if kind not in ("geodesic", "graph"):
            raise ValueError(f"kind must be 'geodesic', 'graph' or 'euclidean'; got {kind!r}")
        G = self.graph_ if kind == "geodesic" else self._unit_graph
        n = len(self.nodes_)
        Dn = np.empty((n, n))
        for s in range(0, n, chunk_size):
            Dn[s:s + chunk_size] = dijkstra(G, directed=True, indices=np.arange(s, min(s + chunk_size, n)))
        return Dn[np.ix_(self.node_of_, self.node_of_)]

    # ------------------------------------------------------------------ straight segment
    def straight_length(self, i: int, j: int) -> float:
        """Metric length of the straight segment x_i → x_j by ``n_straight``-point Gauss–Legendre.

        log p at its nodes is cached per pair (λ-independent), so a new λ costs no density call.
        """
        (ni,), _ = self._nodes_of(i, "i")
        (nj,), _ = self._nodes_of(j, "j")
        if ni == nj:
            return 0.0
        key = (int(min(ni, nj)), int(max(ni, nj)))
        t, w = gauss_legendre_01(self.n_straight)
        a, b = self.nodes_[key[0]], self.nodes_[key[1]]
        if key not in self._straight_cache:
            P = a[None] + t[:, None] * (b - a)[None]
            self._straight_cache[key] = evaluate_log_density(self.log_density_, P, int(self.batch_size))
            self.n_density_evals_ += len(P)
        log_c = log_conformal_factor(self._straight_cache[key], self.log_lam_, self.log_p0_)
        return float(np.linalg.norm(b - a) * np.exp(np.logaddexp.reduce(log_c + np.log(w))))

    def compare_with_straight(self, i: int, j: int) -> dict:
        """Graph geodesic vs straight segment between points ``i`` and ``j``, with both baselines.

        Warns when the graph path is longer than the straight segment's metric length (the graph is too
        coarse there: more points or k, background points, or ``refine_path``).
        """
        path, geo = self.path(i, j, return_length=True)
        straight = self.straight_length(i, j)
        longer = geo > straight * (1 + 1e-9)
        if longer:
            warnings.warn(f"the graph path from {i} to {j} (length {geo:.6g}) is longer than the straight segment "
                          f"({straight:.6g}): the graph is too coarse there; add points or background points, raise "
                          "k, or refine the path (explorer.geodesics.refine_path)", RuntimeWarning, stacklevel=2)
        return {"geodesic": geo, "straight_metric": straight, "graph_c1": float(self.graph_distances(i)[j]),
                "euclidean": float(np.linalg.norm(self.X_[i] - self.X_[j])),
                "path_longer_than_straight": bool(longer), "path": path}


def affinity_from_distances(D: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """exp(−d²/2σ²) elementwise; σ defaults to the median finite positive entry of ``D``; inf → 0."""
    D = np.asarray(D, dtype=np.float64)
    if sigma is None:
        finite = D[np.isfinite(D) & (D > 0)]
        if finite.size == 0:
            raise ValueError("no finite positive distance to set sigma from; pass sigma explicitly")
        sigma = float(np.median(finite))
    sigma = _positive(sigma, "sigma")
    with np.errstate(over="ignore"):
        return np.exp(-np.square(D) / (2.0 * sigma * sigma))

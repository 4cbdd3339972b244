"""Applications of a distance matrix: spectral clustering, ARI/NMI scores, UMAP, Procrustes alignment.

Works on any ``(N, N)`` distance matrix: d_{Ψ,λ} from ``GenerativeGeodesics.distance_matrix()``, the c ≡ 1 graph
distance or the Euclidean one. Infinite distances (a disconnected graph) are never passed on silently:
affinities send them to 0, and UMAP replaces them by ``inf_factor`` × the largest finite distance and
reports how many it replaced.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import SpectralClustering
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from explorer.geodesics.estimator import affinity_from_distances

__all__ = ["affinity_from_distances", "align_sequence", "cluster_scores", "compare_clusterings", "finite_distances",
           "procrustes_align", "spectral_clustering", "umap_embedding"]


def _square(D, name: str) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"{name} must be a square (N, N) matrix; got shape {D.shape}")
    return D


def spectral_clustering(affinity, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Cluster labels from a precomputed affinity (sklearn ``SpectralClustering(affinity="precomputed")``)."""
    A = _square(affinity, "affinity")
    if n_clusters < 1 or n_clusters > len(A):
        raise ValueError(f"n_clusters must be in [1, {len(A)}]; got {n_clusters}")
    if not np.isfinite(A).all() or (A < 0).any():
        raise ValueError("affinity must be finite and non-negative")
    A = 0.5 * (A + A.T)
    model = SpectralClustering(n_clusters=n_clusters, affinity="precomputed", random_state=seed,
                               assign_labels="cluster_qr")
    return model.fit_predict(A)


def cluster_scores(labels_true, labels_pred) -> dict:
    """``{"ari": adjusted Rand index, "nmi": normalized mutual information}`` against the true labels."""
    return {"ari": float(adjusted_rand_score(labels_true, labels_pred)),
            "nmi": float(normalized_mutual_info_score(labels_true, labels_pred))}


def compare_clusterings(distances: dict, labels=None, n_clusters: int | None = None, sigma: float | None = None,
                        seed: int = 0) -> list[dict]:
    """Spectral clustering on exp(−d²/2σ²) of each named distance matrix, scored against ``labels``.

    Returns rows ``{"distance": name, "ari", "nmi", "n_clusters", "labels"}`` (scores NaN without labels).
    """
    if n_clusters is None:
        if labels is None:
            raise ValueError("pass n_clusters when there are no labels to count clusters from")
        n_clusters = len(np.unique(labels))
    rows = []
    for name, D in distances.items():
        pred = spectral_clustering(affinity_from_distances(_square(D, name), sigma), n_clusters, seed)
        scores = cluster_scores(labels, pred) if labels is not None else {"ari": float("nan"), "nmi": float("nan")}
        rows.append({"distance": name, **scores, "n_clusters": int(n_clusters), "labels": pred})
    return rows


def finite_distances(D, inf_factor: float = 2.0) -> tuple[np.ndarray, int]:
    """Replace infinite entries by ``inf_factor`` × the largest finite one; returns ``(matrix, n_replaced)``."""
    D = _square(D, "D").copy()
    if np.isnan(D).any():
        raise ValueError("D contains NaN")
    bad = ~np.isfinite(D)
    n_bad = int(bad.sum())
    if n_bad:
        finite = D[~bad]
        D[bad] = inf_factor * (finite.max() if finite.size and finite.max() > 0 else 1.0)
    return D, n_bad


def umap_embedding(D, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0,
                   inf_factor: float = 2.0) -> tuple[np.ndarray, dict]:
    """2-D UMAP of a precomputed distance matrix (``metric="precomputed"``).

    Policy for infinite distances: replaced by ``inf_factor`` × the largest finite distance, so separate
    components stay far apart; ``info["n_inf_replaced"]`` says how many entries were replaced.
    """
    try:
        import umap
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("UMAP embeddings need umap-learn: pip install umap-learn") from err
    Df, n_bad = finite_distances(D, inf_factor)
    n = len(Df)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 points; got {n}")
    reducer = umap.UMAP(n_components=2, metric="precomputed", n_neighbors=min(n_neighbors, n - 1),
                        min_dist=min_dist, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*precomputed.*")
        warnings.filterwarnings("ignore", message=".*n_jobs.*")
        Y = reducer.fit_transform(Df)
    return np.asarray(Y, dtype=np.float64), {"n_inf_replaced": n_bad, "inf_factor": inf_factor}


def procrustes_align(Y, Y_ref, scale: bool = True) -> np.ndarray:
    """``Y`` rotated (reflections allowed), translated and (``scale``) scaled to best match ``Y_ref`` in least squares.

    Keeps successive embeddings of a λ grid visually comparable.
    """
    Y, R = np.asarray(Y, dtype=np.float64), np.asarray(Y_ref, dtype=np.float64)
    if Y.shape != R.shape or Y.ndim != 2:
        raise ValueError(f"Y and Y_ref must have the same (N, d) shape; got {Y.shape} and {R.shape}")
    mu_y, mu_r = Y.mean(0), R.mean(0)
    A, B = Y - mu_y, R - mu_r
    U, S, Vt = np.linalg.svd(A.T @ B)
    Q = U @ Vt
    s = S.sum() / (A ** 2).sum() if scale and (A ** 2).sum() > 0 else 1.0
    return s * A @ Q + mu_r


def align_sequence(embeddings: list, scale: bool = True) -> list[np.ndarray]:
    """Align each embedding of a sequence (e.g. a λ grid) onto the previous, already aligned one."""
    out: list[np.ndarray] = []
    for Y in embeddings:
        out.append(np.asarray(Y, dtype=np.float64) if not out else procrustes_align(Y, out[-1], scale=scale))
    return out

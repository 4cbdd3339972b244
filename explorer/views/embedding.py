"""The Embedding view's computations (Streamlit-free, disk-cached): UMAPs of geodesic distances over a λ grid next
to the straight-line and c ≡ 1 graph baselines, spectral clusterings and their scores against the true labels.
"""

from __future__ import annotations

import time

import numpy as np

from explorer import cache
from explorer.density.cached import Density
from explorer.views.geodesics import fit_geodesics, geodesic_points
from explorer.views.sizes import default_condition, sizes_for


def embedding_n(model, n: int, points: str = "data") -> int:
    """The number of points an embedding of ``n`` uses: at most the training set's size (``points="data"``)."""
    if points == "samples":
        return max(2, int(n))
    return max(2, min(int(n), len(model.training_set)))


def _embedding_params(model, density, n, lams, k, n_quad, n_background, seed, n_neighbors, points="data",
                      condition=None, steps=None) -> dict:
    params = {"n": embedding_n(model, n, points), "lams": [float(x) for x in lams], "k": int(k),
              "n_quad": int(n_quad), "n_background": int(n_background), "seed": int(seed),
              "n_neighbors": int(n_neighbors), "density": density.info, "model": model.name}
    if points != "data":
        params.update(points=points, steps=int(model.default_steps if steps is None else steps))
        condition = model.canonical_condition(condition)
        if condition:
            params["condition"] = condition
    return params


def embedding_is_cached(model, density: Density, n: int, lams, k: int = 10, n_quad: int = 3, n_background: int = 0,
                        seed: int = 0, n_neighbors: int = 15, points: str = "data", condition: dict | None = None,
                        steps: int | None = None) -> bool:
    """Whether ``embedding_grid`` with these arguments would read the disk cache (no confirm needed)."""
    return cache.exists("embedding", _embedding_params(model, density, n, lams, k, n_quad, n_background, seed,
                                                       n_neighbors, points, condition, steps), density.weights_hash)


def embedding_grid(model, density: Density, n: int, lams, k: int = 10, n_quad: int = 3, n_background: int = 0,
                   seed: int = 0, n_neighbors: int = 15, progress=None, points: str = "data",
                   condition: dict | None = None, steps: int | None = None) -> tuple[dict, dict]:
    """UMAPs of geodesic distances over a λ grid (each Procrustes-aligned onto the previous one), of the
    straight-line and c ≡ 1 graph baselines, spectral clusterings of each and ARI / NMI (disk-cached), on ``n``
    training points (at most all of them: ``embedding_n``), or with ``points="samples"`` on the x_0 of ``n`` samples
    (``steps``, ``condition``; a pipeline without a training set), in the space the density is over.

    Arrays: ``X``, ``labels``, ``lams``, ``Y_geodesic`` (L, n, 2), ``clusters_geodesic`` (L, n), ``Y_euclidean``,
    ``Y_graph``, ``clusters_euclidean``, ``clusters_graph``, ``scores`` (rows: [ARI, NMI] for euclidean, graph,
    then each λ), ``n_components``.
    """
    from explorer.embedding import cluster_scores, procrustes_align, spectral_clustering, umap_embedding
    from explorer.geodesics import affinity_from_distances

    lams = [float(x) for x in lams]
    n = embedding_n(model, n, points)
    params = _embedding_params(model, density, n, lams, k, n_quad, n_background, seed, n_neighbors, points,
                               condition, steps)
    step = [0]
    total = 2 + 2 * len(lams) + 1

    def tick(what: str):
        step[0] += 1
        if progress:
            progress(min(step[0] / total, 1.0), what)

    def compute():
        X, is_bg, labels = geodesic_points(model, points, n, n_background, seed, steps=params.get("steps"),
                                           condition=params.get("condition"))
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


def embedding_defaults(model, preset: str = "default") -> dict:
    """The Embedding view's default settings for ``model``: a KDE of the training points (the model's likelihood is
    an option); for a model without a training set, its own samples (``points``, ``steps``, ``condition``) with the
    model's density under the same condition."""
    P = sizes_for(model, preset)
    out = {"n": int(P["embed_n"]), "k": int(P["k"]), "n_quad": int(P["embed_nq"]), "n_neighbors": 15,
           "lams": [float(x) for x in P["embed_lams"]], "source": "kde", "points": "data", "condition": {},
           "steps": None}
    if model.training_set is None:
        out.update(source="model", points="samples", condition=default_condition(model), steps=int(P["steps"]))
    return out


def warm_umap() -> float:
    """Run UMAP once on a tiny matrix so numba's JIT is paid once per process; returns seconds."""
    from explorer.embedding import umap_embedding

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    P = rng.normal(size=(30, 2))
    umap_embedding(np.linalg.norm(P[:, None] - P[None], axis=-1), n_neighbors=5)
    return time.perf_counter() - start

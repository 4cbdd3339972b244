"""Clustering, scores, UMAP and Procrustes on geodesic and baseline distances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import special_ortho_group

from explorer.density import KernelDensity
from explorer.embedding import (
    align_sequence,
    cluster_scores,
    compare_clusterings,
    finite_distances,
    procrustes_align,
    spectral_clustering,
    umap_embedding,
)
from explorer.geodesics import GenerativeGeodesics, add_background_points


def two_moons_like(n=150, seed=0):
    """Two interleaved arcs: Euclidean affinity mixes them, density geodesics do not."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, size=n)
    a = np.c_[np.cos(t), np.sin(t)]
    b = np.c_[1 - np.cos(t), 0.5 - np.sin(t)]
    X = np.r_[a, b] + rng.normal(scale=0.05, size=(2 * n, 2))
    return X, np.r_[np.zeros(n, int), np.ones(n, int)]


def test_two_blobs_geodesic_affinity_gives_ari_one():
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(size=(80, 2)) * 0.3, rng.normal(size=(80, 2)) * 0.3 + [3.0, 0.0]]
    y = np.r_[np.zeros(80, int), np.ones(80, int)]
    P, is_bg = add_background_points(X, 100, seed=0)  # background nodes connect the blobs
    g = GenerativeGeodesics(lam=0.01, k=10).fit(P, KernelDensity(X))
    assert g.n_components_ == 1
    D = g.distance_matrix()[np.ix_(~is_bg, ~is_bg)]
    assert np.isfinite(D).all()
    rows = compare_clusterings({"geodesic": D}, y)
    assert rows[0]["ari"] == pytest.approx(1.0) and rows[0]["nmi"] == pytest.approx(1.0)


def test_moons_density_adds_beyond_graph_and_euclidean():
    X, y = two_moons_like()
    g = GenerativeGeodesics(lam=0.01, k=20).fit(X, KernelDensity(X, bandwidth=0.1))
    assert g.n_components_ == 1  # a connected graph: the density, not a disconnection, separates the arcs
    mats = {kind: g.distance_matrix(kind) for kind in ("geodesic", "graph", "euclidean")}
    rows = {r["distance"]: r for r in compare_clusterings(mats, y)}
    assert rows["geodesic"]["ari"] > 0.95
    assert rows["graph"]["ari"] < 0.7 and rows["euclidean"]["ari"] < 0.6


def test_scores_match_definitions():
    y = np.array([0, 0, 1, 1])
    assert cluster_scores(y, [1, 1, 0, 0]) == {"ari": 1.0, "nmi": 1.0}
    assert cluster_scores(y, [0, 1, 0, 1])["ari"] < 0
    with pytest.raises(ValueError, match="n_clusters"):
        spectral_clustering(np.eye(3), 5)


def test_finite_distance_policy():
    D = np.array([[0.0, 1.0, np.inf], [1.0, 0.0, np.inf], [np.inf, np.inf, 0.0]])
    Df, n = finite_distances(D, inf_factor=3.0)
    assert n == 4 and Df[0, 2] == 3.0 and Df[0, 1] == 1.0
    assert finite_distances(np.zeros((2, 2)))[1] == 0


def test_procrustes_recovers_similarity_transform():
    rng = np.random.default_rng(2)
    Y_ref = rng.normal(size=(50, 2))
    R = special_ortho_group.rvs(2, random_state=3) @ np.diag([1.0, -1.0])  # with a reflection
    Y = 2.5 * Y_ref @ R + [4.0, -1.0]
    np.testing.assert_allclose(procrustes_align(Y, Y_ref), Y_ref, atol=1e-10)
    unscaled = procrustes_align(Y, Y_ref, scale=False)
    np.testing.assert_allclose(cdist(unscaled, unscaled), cdist(Y, Y), atol=1e-10)  # rigid
    seq = align_sequence([Y_ref, Y, -Y])
    np.testing.assert_allclose(seq[1], Y_ref, atol=1e-10)
    np.testing.assert_allclose(seq[2], Y_ref, atol=1e-10)


def test_umap_of_geodesic_distances_separates_components():
    rng = np.random.default_rng(4)
    X = np.r_[rng.normal(size=(40, 2)) * 0.2, rng.normal(size=(40, 2)) * 0.2 + [4.0, 0.0]]
    with pytest.warns(RuntimeWarning, match="components"):
        g = GenerativeGeodesics(lam=0.1, k=8).fit(X, KernelDensity(X))
    Y, info = umap_embedding(g.distance_matrix(), n_neighbors=10)
    assert Y.shape == (80, 2) and info["n_inf_replaced"] == 2 * 40 * 40
    # each point's nearest embedded neighbour is in its own component
    D = cdist(Y, Y) + np.diag(np.full(80, np.inf))
    assert (g.labels_[D.argmin(1)] == g.labels_).all()

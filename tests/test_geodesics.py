"""GenerativeGeodesics and its parts against independent oracles (networkx, scipy.integrate, closed forms)."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.spatial.distance import cdist

from explorer.density import GaussianMixtureDensity
from explorer.geodesics import (
    GenerativeGeodesics,
    add_background_points,
    edge_weights,
    gauss_legendre_01,
    trapezoid_01,
)
from explorer.geodesics.graph import knn_edges


class Counting:
    """Wraps a log density; counts calls and points handed to it."""

    def __init__(self, f):
        self.f, self.calls, self.points = f, 0, 0

    def __call__(self, X):
        self.calls += 1
        self.points += len(X)
        return self.f(X)


def constant(log_p):
    return lambda X: np.full(len(X), float(log_p))


def ring():
    ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    return GaussianMixtureDensity(np.c_[np.cos(ang), np.sin(ang)], 0.2)


@pytest.fixture(scope="module")
def square():
    return np.random.default_rng(0).uniform(0, 1, size=(600, 2))


def test_large_lambda_gives_graph_and_euclidean_distances(square):
    g = GenerativeGeodesics(lam=1e9, k=10).fit(square, ring())
    d, d_graph, d_eucl = g.distances(0), g.graph_distances(0), g.euclidean_distances(0)
    # c = (p0+λ)/(p+λ) = 1 + O(1e-9): exactly the c ≡ 1 graph up to that
    np.testing.assert_allclose(d, d_graph, rtol=1e-8)
    # ... and Euclidean within the k-NN graph's own error on a convex cloud (600 points, k = 10):
    # never shorter, at most 25 % longer, 6 % in the median
    far = d_eucl > 0.2
    ratio = d[far] / d_eucl[far]
    assert ratio.min() >= 1 - 1e-12 and ratio.max() < 1.25 and np.median(ratio) < 1.06


def test_constant_density_scales_graph_distance(square):
    p, p0, lam = 0.3, 2.0, 0.05
    g = GenerativeGeodesics(lam=lam, p0=p0, k=8).fit(square, constant(np.log(p)))
    src = [0, 5, 17]
    np.testing.assert_allclose(g.distances(src), (p0 + lam) / (p + lam) * g.graph_distances(src), rtol=1e-12)


def test_common_scale_of_p_p0_lambda_changes_nothing(square):
    f = ring()
    base = GenerativeGeodesics(lam=0.02, p0=1.0, k=8).fit(square, f)
    C = 1e6
    scaled = GenerativeGeodesics(lam=0.02 * C, p0=C, k=8).fit(square, lambda X: f(X) + np.log(C))
    np.testing.assert_allclose(scaled.distances(3), base.distances(3), rtol=1e-10)
    for j in (100, 250, 599):
        np.testing.assert_array_equal(scaled.path(3, j), base.path(3, j))


def test_relative_mode_is_exact_reparametrization(square):
    f, L = ring(), 2.5
    rel = GenerativeGeodesics(lam=0.1, p0=3.0, relative=True, log_p_ref=L, k=8).fit(square, f)
    ab = GenerativeGeodesics(lam=0.1 * np.exp(L), p0=3.0 * np.exp(L), k=8).fit(square, f)
    np.testing.assert_allclose(rel.distances(7), ab.distances(7), rtol=1e-12)
    assert rel.log_p_ref_ == L and ab.log_p_ref_ == 0.0
    cached = np.r_[rel.log_p_nodes_, rel.log_p_quad_.ravel()]
    assert rel.lam_quantile_ == pytest.approx(np.mean(cached <= np.log(0.1) + L))
    with pytest.raises(ValueError, match="log_p_ref"):
        GenerativeGeodesics(relative=True).fit(square, f)


def test_quadrature_rates_on_one_edge():
    f = GaussianMixtureDensity(np.array([[0.3, 0.2]]), 0.25)
    a, b = np.array([0.0, 0.0]), np.array([1.0, 0.5])
    lam, p0 = 0.1, 1.0

    def c_of_t(t):
        return (p0 + lam) / (np.exp(f(a + np.atleast_1d(t)[:, None] * (b - a))) + lam)

    exact = np.linalg.norm(b - a) * quad(lambda t: c_of_t(t)[0], 0, 1, epsabs=1e-13, epsrel=1e-13, limit=200)[0]

    def rule_error(t, w):
        weights = edge_weights(np.array([np.linalg.norm(b - a)]), f(a + t[:, None] * (b - a))[None],
                               w, np.log(lam), np.log(p0))
        return abs(weights[0] - exact)

    trap = np.array([rule_error(*trapezoid_01(m)) for m in (16, 32, 64, 128)])
    rates = np.log2(trap[:-1] / trap[1:])
    np.testing.assert_allclose(rates, 2.0, atol=0.15)  # error ∝ m^-2
    gl = [rule_error(*gauss_legendre_01(n)) for n in (4, 8, 16, 24)]
    assert gl[2] < 1e-3 * trap[-1] and gl[3] < 1e-11 * exact  # spectral: far below trapezoid at 129 nodes
    assert gl[1] < gl[0]


def test_shortest_paths_match_networkx():
    f = ring()
    lam, p0 = 0.05, 1.0
    for seed in range(3):
        X = np.random.default_rng(seed).uniform(-1.5, 1.5, size=(40, 2))
        g = GenerativeGeodesics(lam=lam, p0=p0, k=3, n_quad=4).fit(X, f)
        # independent weights: 4-point Gauss–Legendre by numpy's leggauss, c in linear space
        t, w = np.polynomial.legendre.leggauss(4)
        t, w = (t + 1) / 2, w / 2
        G = nx.Graph()
        G.add_nodes_from(range(40))
        for i, j in knn_edges(X, 3):
            pts = X[i] + t[:, None] * (X[j] - X[i])
            c = (p0 + lam) / (np.exp(f(pts)) + lam)
            G.add_edge(int(i), int(j), weight=np.linalg.norm(X[j] - X[i]) * (w @ c))
        lengths = nx.single_source_dijkstra_path_length(G, 0)
        d = g.distances(0)
        for n in range(40):
            assert d[n] == pytest.approx(lengths[n], rel=1e-12) if n in lengths else np.isinf(d[n])
        target = max(lengths, key=lengths.get)
        p, length = g.path(0, target, return_length=True)
        assert length == pytest.approx(nx.dijkstra_path_length(G, 0, target), rel=1e-12)
        assert sum(G[u][v]["weight"] for u, v in zip(p[:-1], p[1:], strict=True)) == pytest.approx(length, rel=1e-12)


def test_ring_small_lambda_follows_ring_large_lambda_cuts_through():
    X = np.r_[[[1.0, 0.0], [-1.0, 0.0]], np.random.default_rng(1).uniform(-1.5, 1.5, size=(1500, 2))]
    g = GenerativeGeodesics(lam=1e-3, k=10).fit(X, ring())
    r_small = np.linalg.norm(X[g.path(0, 1)], axis=1)
    assert r_small.min() > 0.6  # stays on the ring (radius 1)
    g.set_lam(100.0)
    r_large = np.linalg.norm(X[g.path(0, 1)], axis=1)
    assert r_large.min() < 0.15  # crosses the middle
    assert g.distances(0)[1] < 1.1 * 2.0 * (1 + 100) / 100  # nearly the straight segment


def test_fit_counts_density_points_and_set_lam_makes_no_calls(square):
    X = np.r_[square[:200], square[:5]]  # 5 duplicates
    f = Counting(ring())
    g = GenerativeGeodesics(lam=1.0, k=6, n_quad=3, batch_size=1000).fit(X, f)
    assert g.n_duplicates_ == 5 and len(g.nodes_) == 200
    assert g.n_density_evals_ == 200 + 3 * len(g.edges_) == f.points
    assert f.calls == -(-f.points // 1000)  # consecutive batches of batch_size
    d1, calls = g.distances(0), f.calls
    g.set_lam(0.01, p0=2.0)
    d2 = g.distances(0)
    g.path(0, 150)
    assert f.calls == calls and not np.allclose(d1, d2)
    assert g.lam == 0.01 and g.p0 == 2.0


def test_disconnected_graph_gives_inf_and_clear_errors():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(60, 2)) * 0.1, rng.normal(size=(40, 2)) * 0.1 + [5.0, 0.0]]
    with pytest.warns(RuntimeWarning, match=r"2 connected components \(sizes 60, 40\).*k >= "):
        g = GenerativeGeodesics(k=5).fit(X, constant(0.0))
    assert g.n_components_ == 2 and np.isinf(g.distances(0)[70]) and np.isfinite(g.distances(0)[30])
    with pytest.raises(ValueError, match=r"points 0 and 70 are not connected.*component 0 \(60 nodes\).*"
                                         r"component 1 \(40 nodes\)"):
        g.path(0, 70)
    k = g.connectivity_["smallest_k"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert GenerativeGeodesics(k=k).fit(X, constant(0.0)).n_components_ == 1
    with pytest.warns(RuntimeWarning):
        assert GenerativeGeodesics(k=k - 1).fit(X, constant(0.0)).n_components_ == 2
    # ε-graph: the smallest connecting ε is the gap between the blobs (min cross-blob distance)
    gap = cdist(X[:60], X[60:]).min()
    with pytest.warns(RuntimeWarning, match="eps >= "):
        ge = GenerativeGeodesics(graph="epsilon", eps=1.0).fit(X, constant(0.0))
    assert ge.connectivity_["smallest_eps"] == pytest.approx(gap) and ge.connectivity_["smallest_eps_exact"]
    assert GenerativeGeodesics(graph="epsilon", eps=gap * 1.0001).fit(X, constant(0.0)).n_components_ == 1


def test_duplicated_point_is_merged_and_indices_still_work(square):
    X = np.r_[square[:100], square[10:11]]  # point 100 duplicates point 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no disconnection warning
        g = GenerativeGeodesics(k=5).fit(X, ring())
    assert g.n_components_ == 1 and g.n_duplicates_ == 1
    d = g.distances([10, 100])
    np.testing.assert_array_equal(d[0], d[1])
    assert d[0, 100] == 0.0 and d.shape == (2, 101)
    p = g.path(100, 50)
    assert p[0] == 100 and p[-1] == 50 and np.array_equal(p[1:], g.path(10, 50)[1:])


def test_extreme_log_densities_do_not_overflow(square):
    def extreme(X):
        return np.where(X[:, 0] < 0.5, 700.0, -700.0)

    with pytest.warns(RuntimeWarning, match="clamped"):
        g = GenerativeGeodesics(lam=1.0, k=8).fit(square, extreme)  # c ≈ 2e-304 on the left half
    assert np.all(np.isfinite(g.weights_)) and np.all(g.weights_ > 0)
    assert g.n_components_ == 1 and np.isfinite(g.distances(0)).all()
    # relative units make the same densities harmless: λ = p_ref = e^700
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = GenerativeGeodesics(lam=1.0, p0=1.0, relative=True, log_p_ref=700.0, k=8).fit(square, extreme)
    left = square[:, 0] < 0.5
    e = r.edges_
    both_left = left[e[:, 0]] & left[e[:, 1]]
    np.testing.assert_allclose(r.weights_[both_left], r.edge_lengths_[both_left], rtol=1e-12)  # c = 2/2
    both_right = ~left[e[:, 0]] & ~left[e[:, 1]]
    np.testing.assert_allclose(r.weights_[both_right], 2 * r.edge_lengths_[both_right], rtol=1e-12)  # c = 2/1


def test_straight_segment_length_and_flag():
    X = np.random.default_rng(5).uniform(0, 1, size=(300, 2))
    p, lam = 0.5, 0.5
    f = Counting(constant(np.log(p)))
    g = GenerativeGeodesics(lam=lam, k=6).fit(X, f)
    factor = (1 + lam) / (p + lam)
    n0 = g.n_density_evals_
    assert g.straight_length(0, 1) == pytest.approx(factor * np.linalg.norm(X[0] - X[1]), rel=1e-12)
    assert g.n_density_evals_ == n0 + 64 == f.points
    g.set_lam(2.0)
    g.straight_length(1, 0)  # cached per pair, λ-independent
    assert g.n_density_evals_ == n0 + 64
    far = int(np.argmax(np.linalg.norm(X - X[0], axis=1)))
    with pytest.warns(RuntimeWarning, match="longer than the straight segment"):
        out = g.compare_with_straight(0, far)
    assert out["path_longer_than_straight"] and out["geodesic"] > out["straight_metric"]
    j = int(g.edges_[g.edges_[:, 0] == 0][0, 1])  # a neighbour: the path is the edge itself
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not g.compare_with_straight(0, j)["path_longer_than_straight"]


def test_distance_matrix_affinity_and_size_limit(square):
    X = square[:80]
    g = GenerativeGeodesics(lam=0.3, k=6).fit(X, ring())
    D = g.distance_matrix(chunk_size=7)
    np.testing.assert_allclose(D, g.distances(np.arange(80)), rtol=1e-12)
    np.testing.assert_allclose(D, D.T, rtol=1e-12)
    np.testing.assert_allclose(g.distance_matrix("euclidean"), cdist(X, X), atol=1e-12)
    np.testing.assert_allclose(g.distance_matrix("graph"), g.graph_distances(np.arange(80)), rtol=1e-12)
    d = g.distances(4)
    sigma = np.median(d[d > 0])
    np.testing.assert_allclose(g.affinity(4), np.exp(-d ** 2 / (2 * sigma ** 2)), rtol=1e-12)
    small = GenerativeGeodesics(k=6, max_matrix_points=50).fit(X, ring())
    with pytest.raises(ValueError, match="max_matrix_points = 50"):
        small.distance_matrix()


def test_parameter_validation_names_argument(square):
    with pytest.raises(ValueError, match="lam"):
        GenerativeGeodesics(lam=-1).fit(square, ring())
    with pytest.raises(ValueError, match="eps"):
        GenerativeGeodesics(graph="epsilon").fit(square, ring())
    with pytest.raises(ValueError, match="log_density returned 3 values"):
        GenerativeGeodesics().fit(square, lambda X: np.zeros(3))
    g = GenerativeGeodesics(k=4).fit(square[:30], ring())
    for bad in (30, -1, 1.5):
        with pytest.raises(ValueError, match="sources"):
            g.distances(bad)
    assert np.array_equal(g.path(3, 3), [3]) and g.path(3, 3, return_length=True)[1] == 0.0
    with pytest.raises(ValueError, match="lam"):
        g.set_lam(0.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        GenerativeGeodesics().set_lam(1.0)


def test_background_points_cover_bounding_box():
    X = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, 3.0]])
    P, mask = add_background_points(X, 500, margin=0.1, seed=3)
    assert P.shape == (503, 2) and mask.sum() == 500 and not mask[:3].any()
    np.testing.assert_array_equal(P[:3], X)
    B = P[mask]
    assert (B.min(0) >= [-0.2, -0.3]).all() and (B.max(0) <= [2.2, 3.3]).all()
    assert B[:, 0].min() < 0 and B[:, 0].max() > 2  # the margin is used
    np.testing.assert_array_equal(add_background_points(X, 500, margin=0.1, seed=3)[0], P)


def test_default_k_grows_with_log_n(square):
    from explorer.geodesics.graph import default_k

    assert [default_k(n) for n in (2, 100, 800, 2500, 10000, 10 ** 6)] == [10, 10, 10, 12, 14, 21]
    g = GenerativeGeodesics(k=None).fit(square, ring())  # 600 points: k = 10
    assert g.k_ == 10 and np.array_equal(g.edges_, knn_edges(square, 10))
    big = np.random.default_rng(1).uniform(0, 1, size=(3000, 2))
    assert GenerativeGeodesics(k=None).fit(big, constant(0.0)).k_ == 12
    assert GenerativeGeodesics(graph="epsilon", eps=0.2).fit(square, ring()).k_ is None

"""Geodesics on image models: slerp, the score-differentiable density, the three-path comparison, image strips.

Oracle: a DDPM whose denoiser is the exact ε-predictor of Gaussian data N(0, s²I), ε*(x_t, t) =
sqrt(1 − ᾱ_t) x_t / (ᾱ_t s² + 1 − ᾱ_t) (the skip of MLPDenoiser with every weight zero): its score, its
likelihood and its straight-line limit are known in closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.density.score import model_score, score_log_density_torch, score_timestep
from explorer.geodesics import discrete_length
from explorer.geodesics.three_paths import compare_paths, latent_slerp_path, slerp
from explorer.images import image_strip
from explorer.models.denoisers import MLPDenoiser
from explorer.models.diffusion import DiffusionModel
from explorer.models.training import DEFAULT_SCHEDULE

S = 0.8  # the oracle data's standard deviation
D = 16


def gaussian_model(d: int = D, s: float = S) -> DiffusionModel:
    den = MLPDenoiser(dim=d, hidden=4, depth=1, time_dim=4, skip_timesteps=1000)
    for p in den.parameters():
        torch.nn.init.zeros_(p)
    model = DiffusionModel("gauss", den, DEFAULT_SCHEDULE, (d,), np.zeros((2, d), np.float32),
                           meta={"image_shape": [4, d // 4]}, default_steps=20)
    den.set_skip(model.schedule.alphas_cumprod, s)
    return model


def log_gauss(x, var):
    x = np.asarray(x, dtype=np.float64)
    return -0.5 * (x ** 2).sum(1) / var - 0.5 * x.shape[1] * math.log(2 * math.pi * var)


def test_slerp_is_the_great_circle():
    a, b = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    P = slerp(a, b, 5)
    np.testing.assert_allclose(P[[0, -1]], [a, b], atol=1e-12)
    angles = np.arctan2(P[:, 1], P[:, 0])
    np.testing.assert_allclose(np.diff(angles), np.pi / 8, atol=1e-12)  # even in angle
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1.0, atol=1e-12)  # on the sphere
    np.testing.assert_allclose(slerp(a, 3 * a, 3)[1], 2 * a, atol=1e-12)  # parallel: linear
    with pytest.raises(ValueError):
        slerp(a, b[:2], 3)


def test_score_is_the_smoothed_gaussian_score():
    model = gaussian_model()
    t = score_timestep(model, 0.1)
    a = float(model.schedule.alphas_cumprod[t])
    sigma2 = (1 - a) / a
    a_prev = float(model.schedule.alphas_cumprod[t - 1])
    assert sigma2 >= 0.01 and (1 - a_prev) / a_prev < 0.01
    x = torch.randn(5, D, dtype=torch.float64)
    torch.testing.assert_close(model_score(model, x, t), -x / (S ** 2 + sigma2))
    # the autograd path: values from the density, gradients from the score
    fn = score_log_density_torch(model, lambda P: log_gauss(P, S ** 2))
    xr = x.clone().requires_grad_(True)
    out = fn(xr)
    np.testing.assert_allclose(out.detach().numpy(), log_gauss(x.numpy(), S ** 2))
    out.sum().backward()
    torch.testing.assert_close(xr.grad, -x / (S ** 2 + sigma2))


def test_ode_likelihood_of_the_gaussian_model():  # the image models' likelihood against the closed form
    model = gaussian_model()
    x = np.random.default_rng(0).normal(0, S, (64, D))
    exact = model.log_prob(x, method="ode", n_steps=50, exact_max_dim=D, dtype=torch.float64)
    np.testing.assert_allclose(exact, log_gauss(x, S ** 2), atol=0.05)
    # the Jacobian is a multiple of I, so Rademacher probes give the exact trace: no variance, same value
    hutch, std = model.log_prob(x, method="ode", n_steps=50, n_probes=2, dtype=torch.float64, return_std=True)
    np.testing.assert_allclose(hutch, exact, atol=1e-9)
    assert np.all(std == 0)


def test_latent_slerp_path_ends_at_the_endpoints():
    model = gaussian_model()
    x = model.sample(2, seed=3).astype(np.float64)
    P = latent_slerp_path(model, x[0], x[1], n=5)
    np.testing.assert_allclose(P[[0, -1]], x, atol=1e-5)


def test_three_paths_large_lambda_is_straight_and_small_lambda_bends_to_the_data():
    model = gaussian_model()
    a, b = np.zeros(D), np.zeros(D)
    a[0], b[1] = 2.5, 2.5
    graph = np.stack([a, 0.5 * (a + b) + 0.3, b])  # a kinked graph path
    dens = lambda P: log_gauss(P, S ** 2)  # noqa: E731
    torch_dens = score_log_density_torch(model, dens, sigma=1e-3)
    far = compare_paths(model, graph, dens, torch_dens, lam=1e8, n_points=6, max_iter=50)
    eu = float(np.linalg.norm(a - b))
    assert far["geodesic"]["metric_length"] == pytest.approx(eu, rel=1e-3)  # λ → ∞: the Euclidean segment
    assert far["straight"]["metric_length"] == pytest.approx(eu, rel=1e-6)
    near = compare_paths(model, graph, dens, torch_dens, lam=1e-12, n_points=6, max_iter=50)
    geo, line = near["geodesic"]["points"], near["straight"]["points"]
    assert np.linalg.norm(geo[len(geo) // 2]) < np.linalg.norm(line[len(line) // 2]) - 0.1  # towards the mode
    L = lambda P: discrete_length(P, dens, lam=1e-12)  # noqa: E731
    assert L(geo) < L(line)
    g = near["geodesic"]  # never longer than the graph path, and every length is the one measure's
    M = lambda P: discrete_length(P, dens, lam=1e-12, max_step=g["max_step"])  # noqa: E731
    assert g["metric_length"] <= g["length_graph"] and g["length_graph"] == pytest.approx(M(graph), rel=1e-9)
    assert g["metric_length"] == pytest.approx(M(g["refined_points"]), rel=1e-9)
    assert near["straight"]["metric_length"] == pytest.approx(M(np.stack([a, b])), rel=1e-9)


def assert_geodesic_is_shortest(out, log_density, lam, log_p_ref=0.0, n_quad=3):
    """The three paths of ``compare_paths`` share their endpoints, and under the one measure (re-computed here
    from the measured polylines) the geodesic is never longer than the straight line or the slerp."""
    g, line, sl = out["geodesic"], out["straight"], out["slerp"]
    a, b = g["graph_points"][0], g["graph_points"][-1]
    for P in (g["refined_points"], sl["measured_points"]):
        np.testing.assert_array_equal(P[[0, -1]], [a, b])
    np.testing.assert_array_equal(line["points"][[0, -1]], [a, b])

    def M(P):
        return discrete_length(P, log_density, lam=lam, log_p_ref=log_p_ref, n_quad=n_quad, max_step=g["max_step"])

    lengths = {"geodesic": M(g["refined_points"]), "straight": M(np.stack([a, b])), "slerp": M(sl["measured_points"])}
    for name in lengths:
        assert out[name]["metric_length"] == pytest.approx(lengths[name], rel=1e-9)
    assert lengths["geodesic"] <= lengths["straight"] and lengths["geodesic"] <= lengths["slerp"]
    assert lengths["geodesic"] <= M(g["graph_points"])
    return lengths


def test_geodesic_never_longer_than_line_or_slerp_on_the_gaussian_oracle():
    """The oracle model (G linear, so its inversion is exact and the slerp is a circle arc in data space), at a λ
    far below p along the paths (c ≈ 1/p: the geodesic dives towards the mode), at λ ≈ p at the endpoints and at
    λ → ∞ (the straight line)."""
    model = gaussian_model()
    a, b = np.zeros(D), np.zeros(D)
    a[0], b[0], b[1] = 2.5, -0.5, 1.8
    graph = np.stack([a, 0.5 * (a + b) + 0.3, b])
    dens = lambda P: log_gauss(P, S ** 2)  # noqa: E731
    torch_dens = score_log_density_torch(model, dens, sigma=1e-3)
    p_a = math.exp(float(dens(a[None])[0]))
    for lam in (1e-12, p_a, 1e8):
        out = compare_paths(model, graph, dens, torch_dens, lam=lam, n_points=5, max_iter=30)
        lengths = assert_geodesic_is_shortest(out, dens, lam)
        assert max(out["slerp"]["reconstruction_error"]) < 1e-4
        if lam == 1e-12:  # the refinement does real work: far shorter than either
            assert lengths["geodesic"] < 0.9 * min(lengths["straight"], lengths["slerp"])
        if lam == 1e8:
            assert lengths["geodesic"] == pytest.approx(np.linalg.norm(b - a) * (1 + 1 / lam), rel=1e-6)


@pytest.mark.slow
def test_geodesic_never_longer_than_line_or_slerp_on_the_ring(ring):
    """toy2d/ring (exact density, exact inversion, central-difference gradient) at λ = 0.05: between (2, 0) and
    (0, 2) the slerp follows the ring and is the shortest candidate, and the chord through the empty inside is far
    longer (about 40 s on 2 cores: every log p is a Newton inversion)."""
    import warnings

    from explorer.geodesics import GenerativeGeodesics, add_background_points
    from explorer.geodesics.interpolation import finite_difference_torch

    X = add_background_points(np.asarray(ring.training_data(), dtype=np.float64)[:200], 100)[0]  # connected
    f = lambda P: ring.log_prob(P, method="discrete")  # noqa: E731
    i, j = int(np.argmin(np.linalg.norm(X - [2, 0], axis=1))), int(np.argmin(np.linalg.norm(X - [0, 2], axis=1)))
    lam = 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = GenerativeGeodesics(lam=lam, relative=True, log_p_ref=ring.log_p_ref, k=8).fit(X, f)
    out = compare_paths(ring, X[g.path(i, j)], f, finite_difference_torch(f, 0.03), lam=lam,
                        log_p_ref=ring.log_p_ref, n_points=5, max_iter=10)
    lengths = assert_geodesic_is_shortest(out, f, lam, ring.log_p_ref)
    assert max(out["slerp"]["reconstruction_error"]) < 1e-4  # the toy's inversion is exact
    assert out["geodesic"]["start"] == "slerp" and lengths["geodesic"] < 0.7 * lengths["straight"]


@pytest.mark.slow
def test_geodesic_never_longer_than_line_or_slerp_on_digits():
    """digits/full: ODE log p (Hutchinson, shared probes), refinement by the model's score, approximate inversion
    (the slerp ends on G(z) ≠ x); a small graph and a coarse measure keep it to a few hundred density calls."""
    from explorer.geodesics import GenerativeGeodesics
    from explorer.models import load_model

    model = load_model("digits/full")
    X = np.asarray(model.training_data(), dtype=np.float64).reshape(-1, 64)[:30]
    f = model.log_density()
    g = GenerativeGeodesics(lam=1.0, relative=True, log_p_ref=model.log_p_ref, k=6, n_quad=1).fit(X, f)
    path = g.path(0, int(np.argmax(g.distances(0)[np.isfinite(g.distances(0))])))
    a, b = X[path[0]], X[path[-1]]
    out = compare_paths(model, X[path], f, score_log_density_torch(model, f), lam=1.0, log_p_ref=model.log_p_ref,
                        n_points=4, n_quad=1, max_iter=3, max_step=float(np.linalg.norm(b - a)) / 8, n_slerp=8)
    assert_geodesic_is_shortest(out, f, 1.0, model.log_p_ref, n_quad=1)
    assert min(out["slerp"]["reconstruction_error"]) > 0  # approximate inversion: the bridges are needed


def test_image_strip_layout():
    x = np.stack([np.full(4, -1.0), np.full(4, 1.0), np.array([-1.0, 1.0, 0.0, 3.0])])
    out = image_strip(x, (2, 2), scale=3, gap=1)
    assert out.shape == (6, 3 * 6 + 2) and out.dtype == np.uint8
    assert out[:, :6].max() == 0 and out[:, 7:13].min() == 255 and out[0, 6] == 255  # black, gap, white
    np.testing.assert_array_equal(out[:3, 14:17], 0)  # top-left pixel of the third image, upscaled
    assert out[3, 17] == 255 and out[3, 14] == 128  # 3.0 clips to white, 0.0 is mid-grey
    grid = image_strip(x, (2, 2), scale=1, gap=0, columns=2)
    assert grid.shape == (4, 4)


def test_inversion_exact_and_approximate():
    from explorer.models.inversion import ddim_inversion, invert

    model = gaussian_model()
    z = model.latents(4, seed=5).double()
    x = model.sample(4, seed=5).astype(np.float64)
    zi, exact, err = invert(model, x)
    assert exact.all() and err.max() < 1e-4
    np.testing.assert_allclose(zi, z.numpy(), atol=1e-4)
    # DDIM inversion is approximate: close, not exact, and G of it comes back near x
    za = ddim_inversion(model, x, steps=50)
    G = model.at("cpu", torch.float64).generator("sampler", 50)
    with torch.no_grad():
        back = G(torch.from_numpy(za)).numpy()
    rel = np.linalg.norm(back - x, axis=1) / np.linalg.norm(x, axis=1)
    assert rel.max() < 0.05


@pytest.mark.slow
def test_geodesics_cli_on_digits_compares_three_paths(tmp_path):  # a few minutes: ODE log p along three paths
    import json

    from explorer.cli import main

    out = tmp_path / "digits.npz"
    assert main(["geodesics", "--model", "digits/full", "--n", "30", "--k", "6", "--n-quad", "1", "--lam", "1",
                 "--relative", "--compare", "4", "--source", "0", "--target", "1", "--out", str(out)]) == 0
    arrays = np.load(out)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["summary"]["n_background"] == 0
    assert record["density"]["source"] == "model" and record["density"]["method"] == "ode"
    for name in ("geodesic", "straight", "slerp"):
        assert arrays[f"{name}_points"].shape == (4, 64) and np.isfinite(arrays[f"{name}_log_p"]).all()
    np.testing.assert_allclose(arrays["straight_points"][[0, -1]], arrays["X"][[0, 1]])
    np.testing.assert_allclose(arrays["geodesic_points"][[0, -1]], arrays["X"][[0, 1]])


def test_exact_knn_breaks_ties_by_index():  # integer pixel levels make exact distance ties common
    from explorer.geodesics.graph import exact_knn, knn_edges

    X = np.random.default_rng(1).integers(0, 3, size=(60, 20)).astype(np.float64)
    got = exact_knn(X, 6, chunk=7)
    for i in range(len(X)):
        d2 = ((X - X[i]) ** 2).sum(1)
        want = sorted(range(len(X)), key=lambda j: (d2[j], j))[:6]
        assert got[i].tolist() == want
    e1 = knn_edges(X, 5)
    e2 = knn_edges(X[::-1].copy()[::-1], 5)  # same values, another memory layout: the same graph
    np.testing.assert_array_equal(e1, e2)

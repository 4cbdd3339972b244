"""Built-in digit models: interface, quality and memorization gates, Jacobians and likelihoods against oracles."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from explorer.descriptors import local_descriptors
from explorer.memorization import MemorizationScore
from explorer.models import ASSETS, DIGITS_MODELS, load_model
from explorer.models.denoisers import MLPDenoiser
from explorer.models.digits import (
    IMAGE_SHAPE,
    N_MEMORIZED,
    classifier_report,
    digit_classifier,
    digit_images,
    split_indices,
    to_pixels,
    train_digits,
    training_indices,
)

N_GATE = 256


@pytest.fixture(scope="module")
def full():
    return load_model("digits/full")


@pytest.fixture(scope="module")
def memorized():
    return load_model("digits/memorized")


@pytest.fixture(scope="module")
def classifier():
    return digit_classifier()


def test_records_and_interface(full, memorized):
    for spec, model in zip(DIGITS_MODELS, (full, memorized), strict=True):
        record = json.loads((ASSETS / f"{spec}.json").read_text())
        assert record["train"]["seed"] == 0 and record["image_shape"] == [8, 8]
        assert (ASSETS / f"{spec}.safetensors").stat().st_size <= 10 * 2 ** 20
        assert model.image_shape == IMAGE_SHAPE and model.latent_shape == (64,) and model.default_steps == 20
        assert model.default_likelihood["method"] == "ode"
    X, y = digit_images()
    np.testing.assert_array_equal(full.training_data(), X[training_indices("full")])
    np.testing.assert_array_equal(memorized.training_labels(), y[training_indices("memorized")])
    assert len(memorized.training_data()) == N_MEMORIZED
    train, held = split_indices()
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == len(X)
    x = full.sample(3, seed=4)
    np.testing.assert_array_equal(x, full.sample(3, seed=4))
    assert x.shape == (3, 64) and to_pixels(x).shape == (3, 8, 8)
    assert to_pixels(np.full((1, 64), -1.0)).max() == 0.0 and to_pixels(np.full((1, 64), 1.0)).min() == 1.0


def test_classifier_recognises_real_digits(classifier):  # the gate's own instrument is sound
    assert classifier.heldout_accuracy_ >= 0.95 and classifier.heldout_confident_ >= 0.9


def test_full_model_makes_recognisable_digits(full, classifier):
    q = classifier_report(full.sample(N_GATE, seed=2024), classifier)
    assert q["confident_fraction"] >= 0.8, q
    assert min(q["class_counts"]) >= 0.02 * N_GATE, q  # every class appears: no collapse onto a few digits


def test_the_gate_can_fail(classifier):  # blurred noise is not recognised as digits
    noise = np.random.default_rng(0).normal(0, 0.5, (N_GATE, 64)) - 0.5
    assert classifier_report(noise, classifier)["confident_fraction"] < 0.5


def test_memorization_gates(full, memorized):
    for model, want_memorized in ((full, False), (memorized, True)):
        x = model.sample(N_GATE, seed=2024)
        scores = MemorizationScore().fit(model.training_data()).score(x)
        frac = float(scores["memorized"].mean())
        assert (frac >= 0.8) if want_memorized else (frac <= 0.2), (model.name, frac)
        # the nearest training image against a brute-force search
        d = np.linalg.norm(x[:32, None, :].astype(np.float64) - model.training_data()[None].astype(np.float64), axis=2)
        np.testing.assert_array_equal(scores["nearest_index"].to_numpy()[:32], d.argmin(1))
        np.testing.assert_allclose(scores["d_nearest"].to_numpy()[:32], d.min(1), rtol=1e-9)


def test_full_jacobian_matches_autograd(full):
    G = full.generator("sampler")
    z = full.latents(2, seed=9)
    for i in range(2):
        J = torch.autograd.functional.jacobian(lambda v: G(v[None])[0], z[i])
        s = torch.linalg.svdvals(J.double())
        psi = float(torch.log(s).sum())
        ours = local_descriptors(G, z[i:i + 1])
        assert ours.n_directions == 64
        assert abs(float(ours.psi[0]) - psi) < 1e-3 * max(1.0, abs(psi)), (float(ours.psi[0]), psi)
        np.testing.assert_allclose(ours.singular_values[0], s.numpy(), rtol=2e-3, atol=1e-6)


def test_ode_likelihood_is_the_change_of_variables_of_psi(full):
    """At x = G(z) through the full sampler (S = T = 1000, every timestep), log p_ODE(x) = log N(z) − ψ(z):
    paper 1's ψ is the log-volume change and the ODE is DDIM's continuous-time limit. Measured gaps: 0.1 and
    0.6 nats on log p ≈ 65 (with S = 200 they are 3.6 and 0.3: the identity holds only for the full sampler).
    Exact divergence, float64, ψ from the full 64-direction Jacobian."""
    z = full.latents(2, seed=11).double()
    G = full.at("cpu", torch.float64).generator("sampler", 1000)
    with torch.no_grad():
        x = G(z)
    psi = local_descriptors(G, z, psi_floor=0).psi
    log_nz = (-0.5 * (z ** 2).sum(1) - 32 * math.log(2 * math.pi)).numpy()
    ode = full.log_prob(x, method="ode", n_steps=200, dtype=torch.float64, exact_max_dim=64)
    assert np.all(np.abs(ode - (log_nz - psi)) < 1.5), (ode, log_nz - psi)


def test_skip_denoiser_fast_jacobian_equals_autograd():
    den = MLPDenoiser(dim=6, hidden=16, depth=3, time_dim=8, time_every_layer=True, skip_timesteps=1000).double()
    den.set_skip(torch.linspace(0.9999, 0.01, 1000, dtype=torch.float64), sigma_data=0.7)
    for p in den.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(4, 6, dtype=torch.float64)
    for t in (0, 17, 500.5, 999):
        eps, J = den.eps_and_jacobian(x, t)
        torch.testing.assert_close(eps, den(x, t))
        for i in range(len(x)):
            ref = torch.autograd.functional.jacobian(lambda v, t=t: den(v[None], t)[0], x[i])
            torch.testing.assert_close(J[i], ref, rtol=1e-12, atol=1e-12)
    a = torch.linspace(0.9999, 0.01, 1000, dtype=torch.float64)
    for t in (0, 999):  # c(t) = sqrt(1 − ᾱ_t)/(ᾱ_t σ_d² + 1 − ᾱ_t): ≈ 1 at pure noise, ≈ sqrt(1 − ᾱ)/σ_d² at t = 0
        assert float(den.skip(t, x)) == pytest.approx(float((1 - a[t]).sqrt() / (a[t] * 0.49 + 1 - a[t])))
    assert float(den.skip(499.5, x)) == pytest.approx(0.5 * float(den.skip(499, x) + den.skip(500, x)))


def test_training_is_reproducible():
    a = train_digits("memorized", iterations=20, seed=1).denoiser.state_dict()
    b = train_digits("memorized", iterations=20, seed=1).denoiser.state_dict()
    c = train_digits("memorized", iterations=20, seed=2).denoiser.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_shared_probes_make_the_ode_likelihood_smooth(full):
    """The geodesics integrate log p along segments and refine paths on it: with the same Hutchinson probes for
    every point it is close to a smooth function of x (what is left are the ReLU net's kinks crossed by the RK4
    stages); per-point probes re-draw the estimate's noise at every point. Measured medians over 16 images for
    a 1e-4 step: 0.05 vs 5.4 nats."""
    x = full.training_data()[:16].astype(np.float64)
    step = 1e-4 * np.random.default_rng(0).normal(size=x.shape)
    kw = {"method": "ode", "n_steps": 20, "n_probes": 2}
    shared = [full.log_prob(p, **kw, shared_probes=True) for p in (x, x + step)]
    per_point = [full.log_prob(p, **kw) for p in (x, x + step)]
    assert np.median(np.abs(shared[1] - shared[0])) < 0.3
    assert np.median(np.abs(per_point[1] - per_point[0])) > 1.5
    assert full.default_likelihood.get("shared_probes") is True

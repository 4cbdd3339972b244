"""The probability-flow ODE likelihood of pixel-space pipelines (``ode_log_prob`` over the adapter's ``eps_model``,
``schedule`` and ``diffusion_shape``): two Gaussian cases with closed forms, and Hutchinson's divergence against
the exact one on a tiny random UNet."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.models import load_model
from tests.tiny_pipelines import make_pipeline, tiny_folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _zero_output_pipeline(tmp_path, prediction_type: str):
    """A tiny attention-free DDPM whose UNet outputs exactly 0 (its last convolution zeroed)."""
    pipe = make_pipeline("ddpm", prediction_type=prediction_type, block_out_channels=(4, 8), norm_num_groups=2,
                         down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2)
    torch.nn.init.zeros_(pipe.unet.conv_out.weight)
    torch.nn.init.zeros_(pipe.unet.conv_out.bias)
    folder = tmp_path / prediction_type
    pipe.save_pretrained(folder, safe_serialization=True)
    return load_model(str(folder), cache=False)


def _log_normal(x: np.ndarray, var: float) -> np.ndarray:
    x = x.reshape(len(x), -1)
    return -0.5 * (x ** 2).sum(1) / var - 0.5 * x.shape[1] * math.log(2 * math.pi * var)


def test_epsilon_zero_is_the_gaussian_of_variance_one_over_alpha_T(tmp_path):
    """ε ≡ 0: the flow is x̄ = const, so x ~ N(0, I/ᾱ_T) exactly (the DDIM sampler maps z to z/sqrt(ᾱ_T))."""
    m = _zero_output_pipeline(tmp_path, "epsilon")
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8)) * 30
    a_T = float(m.schedule.alphas_cumprod[-1])
    lp = m.log_prob(x, n_steps=2, dtype=torch.float64)
    np.testing.assert_allclose(lp, _log_normal(x, 1 / a_T), rtol=1e-12)
    with torch.no_grad():
        z = m.latents(2).double()
        np.testing.assert_allclose(m.at("cpu", torch.float64).generator("sampler", steps=5)(z).numpy(),
                                   (z / math.sqrt(a_T)).numpy(), rtol=1e-10)


@pytest.mark.filterwarnings("ignore:var\\(\\)")  # one probe has no spread to report
def test_v_zero_is_the_standard_gaussian(tmp_path):
    """v ≡ 0 means ε = sqrt(1 − ᾱ_t)·x_t, x̂_0 = sqrt(ᾱ_t)·x_t: the data N(0, I) is left unchanged by the
    diffusion, so log p(x) = log N(x; 0, I); the ODE integrates a non-zero divergence D·σ/(1 + σ²) to get it."""
    m = _zero_output_pipeline(tmp_path, "v_prediction")
    x = np.random.default_rng(1).normal(size=(3, 1, 8, 8))
    lp = m.log_prob(x, n_steps=20, dtype=torch.float64, n_probes=1)
    np.testing.assert_allclose(lp, _log_normal(x, 1.0), rtol=2e-3)  # RK4's error; measured 7e-4 (4e-5 at 40 steps)
    # Rademacher probes are exact on a multiple of the identity: Hutchinson's estimate is the exact divergence
    est, std = m.log_prob(x, n_steps=2, dtype=torch.float64, n_probes=2, return_std=True)
    exact = m.log_prob(x, n_steps=2, dtype=torch.float64, exact_max_dim=64)
    np.testing.assert_allclose(est, exact, rtol=1e-12)
    assert np.all(std < 1e-9)


def test_hutchinson_agrees_with_the_exact_divergence_on_a_tiny_unet():
    m = load_model(str(tiny_folder("ddpm")))
    x = np.random.default_rng(2).normal(size=(2, 1, 8, 8)) * 0.5
    exact = m.log_prob(x, n_steps=1, dtype=torch.float64, exact_max_dim=64)
    est, std = m.log_prob(x, n_steps=1, dtype=torch.float64, n_probes=16, return_std=True)
    assert np.isfinite(exact).all() and (std > 0).all()
    assert np.all(np.abs(est - exact) < 5 * std), (est, exact, std)


def test_every_pipeline_declares_the_ode_in_its_diffusion_space():
    for kind in ("ddpm", "dit", "sd"):
        m = load_model(str(tiny_folder(kind)))
        assert m.capabilities.likelihoods == ("ode",)
        assert m.default_likelihood == {"method": "ode", "n_steps": 20, "n_probes": 2, "shared_probes": True}
        assert np.isfinite(m.log_prob(np.zeros((1, *m.diffusion_shape)), n_steps=2)).all()
    with pytest.raises(ValueError, match="unknown likelihood method 'discrete'"):
        load_model(str(tiny_folder("ddpm"))).log_prob(np.zeros((1, 1, 8, 8)), method="discrete")


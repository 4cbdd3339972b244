"""The space the diffusion runs in, for pipelines: ``encode`` / ``decode`` / ``sample_x0`` / ``x0_generator`` /
``to_display`` of latent points, the ODE likelihood there (conditional, at guidance scale 1), p_ref's rule, DDIM
inversion of latents, canonical conditioning and DiT's class names. Oracles: the pipeline's own VAE called
directly, a Gaussian closed form (ε ≡ 0), the exact divergence, and the round trip G(G⁻¹(x)) = x."""

from __future__ import annotations

import json
import math
import shutil

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


def _vae(kind):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(str(tiny_folder(kind)), subfolder="vae").eval()


@pytest.mark.parametrize("kind", ["dit", "sd"])
def test_encode_and_decode_are_the_pipelines_vae(kind):
    m = load_model(str(tiny_folder(kind)))
    vae = _vae(kind)
    images = np.random.default_rng(0).uniform(-1, 1, size=(3, *m.sample_shape)).astype(np.float32)
    with torch.no_grad():
        want = vae.encode(torch.from_numpy(images)).latent_dist.mean * vae.config.scaling_factor
    got = m.encode(images)
    assert got.shape == (3, *m.diffusion_shape) and got.dtype == np.float32
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.encode(images.reshape(3, -1)), got, rtol=1e-6)  # flat images too
    with torch.no_grad():
        back = vae.decode(torch.from_numpy(got) / vae.config.scaling_factor).sample.numpy()
    np.testing.assert_allclose(m.decode(got), back, rtol=1e-5, atol=1e-6)
    # latents are shown as their decoded images
    np.testing.assert_array_equal(m.to_display(got), m.to_display(m.decode(got)))
    assert m.to_display(got).shape == (3, *m.image_shape, 3)
    with pytest.raises(ValueError, match="images must be"):
        m.encode(np.zeros((2, 5)))


@pytest.mark.parametrize("kind", ["ddpm", "dit", "sd"])
def test_sample_x0_is_the_sampler_before_its_decoder(kind):
    m = load_model(str(tiny_folder(kind)))
    x0 = m.sample_x0(2, seed=3, steps=2)
    assert x0.shape == (2, *m.diffusion_shape)
    np.testing.assert_allclose(m.decode(x0), m.sample(2, seed=3, steps=2), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        direct = m.x0_generator(2)(m.latents(2, 3)).numpy()
    np.testing.assert_allclose(x0, direct, rtol=1e-5, atol=1e-6)
    if kind == "ddpm":  # pixel space: encode is the identity, x_0 is the sample
        np.testing.assert_array_equal(m.encode(x0), x0)


def _zero_sd(tmp_path):
    pipe = make_pipeline("sd")
    torch.nn.init.zeros_(pipe.unet.conv_out.weight)
    torch.nn.init.zeros_(pipe.unet.conv_out.bias)
    pipe.save_pretrained(tmp_path / "zero-sd", safe_serialization=True)
    return load_model(str(tmp_path / "zero-sd"), cache=False)


def test_latent_ode_is_the_gaussian_when_epsilon_is_zero(tmp_path):
    """ε ≡ 0 for every prompt: x̄ is constant along the flow, so x_0 ~ N(0, I/ᾱ_T) in the VAE latent, exactly."""
    m = _zero_sd(tmp_path)
    x = np.random.default_rng(1).normal(size=(3, *m.diffusion_shape)) * 20
    a_T = float(m.schedule.alphas_cumprod[-1])
    want = -0.5 * a_T * (x.reshape(3, -1) ** 2).sum(1) - 0.5 * x[0].size * math.log(2 * math.pi / a_T)
    for prompt in ("", "a red tree"):
        lp = m.log_prob(x, n_steps=2, dtype=torch.float64, prompt=prompt)
        np.testing.assert_allclose(lp, want, rtol=1e-12)


@pytest.mark.parametrize("kind, condition", [("dit", {"class_label": 7}), ("sd", {"prompt": "a photo of dog"})])
def test_latent_hutchinson_agrees_with_the_exact_divergence(kind, condition):
    m = load_model(str(tiny_folder(kind)))
    x = m.sample_x0(2, seed=1, steps=2, **condition).astype(np.float64)
    exact = m.log_prob(x, n_steps=1, dtype=torch.float64, exact_max_dim=64, **condition)
    est, std = m.log_prob(x, n_steps=1, dtype=torch.float64, n_probes=16, return_std=True, **condition)
    assert np.isfinite(exact).all() and (std > 0).all()
    assert np.all(np.abs(est - exact) < 5 * std), (est, exact, std)
    # the condition is the density's: another class or prompt is another density
    other = {"class_label": 8} if kind == "dit" else {"prompt": "blue painting"}
    assert not np.allclose(exact, m.log_prob(x, n_steps=1, dtype=torch.float64, exact_max_dim=64, **other))


def test_latent_likelihood_refuses_guidance_and_images():
    m = load_model(str(tiny_folder("sd")))
    x = m.sample_x0(1, steps=2)
    with pytest.raises(ValueError, match="guidance_scale 1"):
        m.log_prob(x, prompt="cat", guidance_scale=3)
    with pytest.raises(ValueError, match="model.encode"):
        m.log_prob(m.decode(x))
    np.testing.assert_allclose(m.log_prob(x, n_steps=2, prompt="cat", guidance_scale=1),
                               m.log_prob(x, n_steps=2, prompt="cat"))


def test_p_ref_without_a_training_set_is_the_median_over_the_models_own_samples(isolated_cache):
    from explorer.density.cached import make_density

    m = load_model(str(tiny_folder("dit")), cache=False)
    m.ref_points = 3
    dens = make_density(m, "model", condition={"class_label": "2"})
    assert dens.condition == {"class_label": 2} and dens.ident["condition"] == {"class_label": 2}
    z = torch.stack([m.latent_of_seed(s) for s in range(3)])
    with torch.no_grad():
        x0 = m.x0_generator(class_label=2)(z).numpy()
    want = np.median(m.log_prob(x0, **m.default_likelihood, class_label=2))
    assert dens.log_p_ref == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="guidance_scale 1"):
        make_density(m, "model", condition={"class_label": 2, "guidance_scale": 4})


def test_a_stored_log_p_ref_is_read_from_the_record(tmp_path):
    folder = tmp_path / "ddpm"
    shutil.copytree(tiny_folder("ddpm"), folder)
    (folder / "explorer_record.json").write_text(json.dumps({"log_p_ref": -123.5}))
    m = load_model(str(folder), cache=False)
    assert m.log_p_ref == -123.5 and m.capabilities.likelihoods == ("ode",)
    assert load_model(str(tiny_folder("ddpm"))).log_p_ref is None


@pytest.mark.parametrize("kind, condition", [("ddpm", {}), ("sd", {"prompt": "a cat"})])
def test_inversion_round_trips_points_of_the_diffusion_space(kind, condition):
    from explorer.models.inversion import invert

    m = load_model(str(tiny_folder(kind)))
    z0 = m.latents(2, seed=5).double()
    with torch.no_grad():
        x0 = m.at("cpu", torch.float64).x0_generator(3, **condition)(z0).numpy()
    z, exact, err = invert(m, x0, steps=3, condition=condition)
    assert exact.all() and np.all(err < 1e-6), err
    np.testing.assert_allclose(z, z0.reshape(2, -1).numpy(), atol=1e-6)
    # the approximate inversion (what a real pipeline's large latents get) reports its error
    z, exact, err = invert(m, x0, steps=3, condition=condition, exact_max_dim=0)
    assert not exact.any() and np.isfinite(err).all()


def test_canonical_condition_and_class_names(tmp_path):
    dit = load_model(str(tiny_folder("dit")))
    assert dit.canonical_condition({"class_label": "3", "guidance_scale": 1}) == {"class_label": 3}
    assert dit.canonical_condition({"class_label": 3, "guidance_scale": 2}) == {"class_label": 3,
                                                                                "guidance_scale": 2.0}
    assert dit.class_names[:3] == ["0", "1", "2"] and len(dit.class_names) == dit.n_classes == 1000
    folder = tmp_path / "dit"
    shutil.copytree(tiny_folder("dit"), folder)
    (folder / "labels.json").write_text(json.dumps({"0": "tench, Tinca tinca", "1": "goldfish"}))
    named = load_model(str(folder), cache=False)
    assert named.class_names[:3] == ["tench, Tinca tinca", "goldfish", "2"]
    assert named.canonical_condition({"class_label": "goldfish"}) == {"class_label": 1}
    sd = load_model(str(tiny_folder("sd")))
    assert sd.canonical_condition({"prompt": "", "negative_prompt": "", "guidance_scale": 1.0}) == {}
    with pytest.raises(ValueError, match="takes no conditioning"):
        sd.canonical_condition({"class_label": 1})

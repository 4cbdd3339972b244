"""Each map of each pipeline kind against a DDIM loop written here from the pipeline's own components and
``DDIMScheduler.step`` (float64, to 1e-10), and against the pipeline's own ``__call__`` with a DDIM scheduler of
the pinned conventions (float32, to 1e-5); conditioning, labels, prompt embeddings and views."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from explorer.models import ASSETS, load_model
from tests.tiny_pipelines import save_pipeline, tiny_folder

CONVENTIONS = {"clip_sample": False, "timestep_spacing": "trailing", "set_alpha_to_one": True}
STEPS = 3
T_MID = 666  # a timestep of the 3-step trailing schedule (999, 666, 333)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _pipe(kind: str, folder=None, dtype=torch.float64):
    """The diffusers pipeline of a folder, its components in ``dtype``, with a DDIM scheduler of the conventions."""
    from diffusers import DDPMPipeline, DiTPipeline, StableDiffusionPipeline

    cls = {"ddpm": DDPMPipeline, "dit": DiTPipeline, "sd": StableDiffusionPipeline}[kind]
    kw = {"safety_checker": None, "requires_safety_checker": False} if kind == "sd" else {}
    pipe = cls.from_pretrained(folder or tiny_folder(kind), use_safetensors=True, **kw)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, **CONVENTIONS)
    for name in ("unet", "transformer", "vae", "text_encoder"):
        if getattr(pipe, name, None) is not None:
            torch.nn.Module.to(getattr(pipe, name), dtype)
    return pipe


def _ddim(scheduler, prediction_type="epsilon", steps=STEPS):
    """A DDIMScheduler of the conventions whose ᾱ are float64 (diffusers keeps float32 ones, so that its step's
    coefficients would be rounded to float32 where the comparison is in float64)."""
    sched = DDIMScheduler.from_config(scheduler.config, **CONVENTIONS, prediction_type=prediction_type)
    sched.alphas_cumprod = sched.alphas_cumprod.double()
    sched.final_alpha_cumprod = sched.final_alpha_cumprod.double()
    sched.set_timesteps(steps)
    return sched


def _ddim_loop(eps_fn, scheduler, x, t_start=None, steps=STEPS, prediction_type="epsilon"):
    """x_T (or x_t) → x_0 by DDIMScheduler.step (eta = 0); ``eps_fn(x, t)`` is the network's output."""
    sched = _ddim(scheduler, prediction_type, steps)
    for t in sched.timesteps:
        if t_start is not None and int(t) > t_start:
            continue
        x = sched.step(eps_fn(x, t), t, x, eta=0.0).prev_sample
    return x


def _denoised(eps_fn, scheduler, x, t, prediction_type="epsilon"):
    sched = _ddim(scheduler, prediction_type)
    return sched.step(eps_fn(x, torch.tensor(t)), torch.tensor(t), x, eta=0.0).pred_original_sample


def _check_all_maps(m, eps_fn, scheduler, decode=None, prediction_type="epsilon", **condition):
    m64 = m.at("cpu", torch.float64)
    z = m.latents(3, seed=11).double()
    decode = decode or (lambda x: x)
    with torch.no_grad():
        refs = {
            "sampler": decode(_ddim_loop(eps_fn, scheduler, z, prediction_type=prediction_type)),
            "from_t": decode(_ddim_loop(eps_fn, scheduler, z, T_MID, prediction_type=prediction_type)),
            "denoiser": decode(_denoised(eps_fn, scheduler, z, T_MID, prediction_type)),
        }
        if "decoder" in m.capabilities.maps:
            refs["decoder"] = decode(z)
        assert set(refs) == set(m.capabilities.maps)
        for name, ref in refs.items():
            out = m64.generator(name, steps=STEPS, t=T_MID, **condition)(z)
            np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-10, atol=1e-10, err_msg=name)


# ---------------------------------------------------------------------------- pixel DDPMs
@pytest.mark.parametrize("variant", ["epsilon", "v_prediction", "learned_variance", "ddim_pipeline"])
def test_ddpm_maps_equal_the_ddim_loop(tmp_path, variant):
    kw = {"prediction_type": "v_prediction"} if variant == "v_prediction" else {}
    kw = {"learned_variance": True} if variant == "learned_variance" else kw
    kind = "ddim" if variant == "ddim_pipeline" else "ddpm"
    folder = save_pipeline(kind, tmp_path / variant, **kw)
    m = load_model(str(folder), cache=False)
    from diffusers import DDIMPipeline, DDPMPipeline

    pipe = (DDIMPipeline if kind == "ddim" else DDPMPipeline).from_pretrained(folder, use_safetensors=True)
    unet = pipe.unet.double()

    def eps(x, t):
        return unet(x, t).sample[:, :1]  # the learned variance, when there is one, is the second channel

    _check_all_maps(m, eps, pipe.scheduler, prediction_type=kw.get("prediction_type", "epsilon"))


def test_the_shipped_digits_unet_equals_its_own_pipeline():
    """DDPMPipeline's own __call__ with our DDIM scheduler, from the same noise, against the sampler map."""
    folder = ASSETS / "pipelines" / "digits-unet"
    m = load_model(str(folder))
    pipe = _pipe("ddpm", folder, torch.float32)
    images = pipe(batch_size=4, generator=torch.Generator().manual_seed(3), num_inference_steps=STEPS,
                  output_type="np").images
    z = torch.randn((4, *m.latent_shape), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = m.generator("sampler", steps=STEPS)(z).numpy().transpose(0, 2, 3, 1)
    assert 0.05 < images.mean() < 0.95  # the comparison is not all clipped pixels
    np.testing.assert_allclose(np.clip(ours / 2 + 0.5, 0, 1), images, atol=2e-5)


# ---------------------------------------------------------------------------- DiT
def _dit_eps(pipe, label: int, scale: float = 1.0):
    tr, C = pipe.transformer, pipe.transformer.config.in_channels

    def eps(x, t):
        tt = torch.as_tensor(t).reshape(-1).expand(len(x))
        if scale <= 1:
            return tr(x, timestep=tt, class_labels=torch.full((len(x),), label)).sample[:, :C]
        cond = tr(x, timestep=tt, class_labels=torch.full((len(x),), label)).sample[:, :C]
        uncond = tr(x, timestep=tt, class_labels=torch.full((len(x),), 1000)).sample[:, :C]
        return uncond + scale * (cond - uncond)
    return eps


def _decoder(pipe):
    return lambda x: pipe.vae.decode(x / pipe.vae.config.scaling_factor).sample


@pytest.mark.parametrize("label, scale", [(3, 1.0), (7, 4.0)])
def test_dit_maps_equal_the_ddim_loop(label, scale):
    m = load_model(str(tiny_folder("dit")))
    pipe = _pipe("dit")
    _check_all_maps(m, _dit_eps(pipe, label, scale), pipe.scheduler, _decoder(pipe), class_label=label,
                    guidance_scale=scale)


def test_dit_unconditional_is_the_null_class():
    m = load_model(str(tiny_folder("dit")))
    z = m.latents(2, seed=1)
    with torch.no_grad():
        a = m.generator("denoiser", t=500)(z)
        b = m.generator("denoiser", t=500, class_label=m.null_class)(z)
    assert m.null_class == 1000
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_dit_equals_its_own_pipeline(scale):
    m = load_model(str(tiny_folder("dit")))
    pipe = _pipe("dit", dtype=torch.float32)
    images = pipe(class_labels=[5, 5], guidance_scale=scale, generator=torch.Generator().manual_seed(9),
                  num_inference_steps=STEPS, output_type="np").images
    z = torch.randn((2, *m.latent_shape), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ours = m.generator("sampler", steps=STEPS, class_label=5, guidance_scale=scale)(z).numpy()
    np.testing.assert_allclose(np.clip(ours.transpose(0, 2, 3, 1) / 2 + 0.5, 0, 1), images, atol=1e-5)


def test_dit_labels_from_id2label_a_labels_file_or_numbers(tmp_path):
    m = load_model(str(tiny_folder("dit")))
    assert m.labels is None and m.class_id("12") == 12 and m.class_id(3) == 3
    with pytest.raises(ValueError, match="not a label of"):
        m.class_id("tench")
    folder = shutil.copytree(tiny_folder("dit"), tmp_path / "id2label")
    index = json.loads((folder / "model_index.json").read_text())
    index["id2label"] = {"0": "tench, Tinca tinca", "5": "goldfish"}
    (folder / "model_index.json").write_text(json.dumps(index))
    m = load_model(str(folder), cache=False)
    assert m.class_id("Tinca tinca") == 0 and m.class_id("goldfish") == 5 and m.labels[0] == "tench, Tinca tinca"
    folder = shutil.copytree(tiny_folder("dit"), tmp_path / "labels-file")
    (folder / "labels.txt").write_text("apple\nbanana\ncherry\n")
    m = load_model(str(folder), cache=False)
    assert m.class_id("banana") == 1 and m.meta["labels"]["2"] == "cherry"
    z = m.latents(1, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(m.generator("denoiser", t=400, class_label="banana")(z),
                                   m.generator("denoiser", t=400, class_label=1)(z), rtol=0, atol=0)


def test_dit_conditioning_errors():
    m = load_model(str(tiny_folder("dit")))
    with pytest.raises(ValueError, match="takes no conditioning prompt; it takes: class_label, guidance_scale"):
        m.generator("sampler", prompt="a cat")
    with pytest.raises(ValueError, match=r"class_label must be in \[0, 1000\)"):
        m.generator("sampler", class_label=1001)
    with pytest.raises(ValueError, match="needs a class_label"):
        m.generator("sampler", guidance_scale=3.0)
    with pytest.raises(ValueError, match="guidance_scale must be a finite number ≥ 1"):
        m.generator("sampler", class_label=1, guidance_scale=0.5)


# ---------------------------------------------------------------------------- Stable Diffusion
def _sd_eps(pipe, prompt: str, negative: str = "", scale: float = 1.0):
    cond, uncond = pipe.encode_prompt(prompt, "cpu", 1, True, negative)

    def eps(x, t):
        n = len(x)
        if scale <= 1:
            return pipe.unet(x, t, encoder_hidden_states=cond.expand(n, -1, -1)).sample
        out = pipe.unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat(
            [uncond.expand(n, -1, -1), cond.expand(n, -1, -1)])).sample
        u, c = out.chunk(2)
        return u + scale * (c - u)
    return eps


@pytest.mark.parametrize("prompt, negative, scale", [("", "", 1.0), ("a photo of cat", "", 7.5),
                                                     ("a red dog", "blue painting", 3.0)])
def test_sd_maps_equal_the_ddim_loop(prompt, negative, scale):
    m = load_model(str(tiny_folder("sd")))
    pipe = _pipe("sd")
    _check_all_maps(m, _sd_eps(pipe, prompt, negative, scale), pipe.scheduler, _decoder(pipe), prompt=prompt,
                    negative_prompt=negative, guidance_scale=scale)


@pytest.mark.parametrize("scale", [1.0, 7.5])
def test_sd_equals_its_own_pipeline(scale):
    """StableDiffusionPipeline's own __call__ from the same latents (guidance_scale 1 turns its guidance off)."""
    m = load_model(str(tiny_folder("sd")))
    pipe = _pipe("sd", dtype=torch.float32)
    z = m.latents(2, seed=6)
    images = pipe(prompt=["a photo of dog"] * 2, negative_prompt=["red"] * 2, guidance_scale=scale, latents=z.clone(),
                  num_inference_steps=STEPS, output_type="np").images
    with torch.no_grad():
        ours = m.generator("sampler", steps=STEPS, prompt="a photo of dog", negative_prompt="red",
                           guidance_scale=scale)(z).numpy()
    np.testing.assert_allclose(np.clip(ours.transpose(0, 2, 3, 1) / 2 + 0.5, 0, 1), images, atol=1e-5)


def test_sd_prompt_embeddings_are_computed_once():
    m = load_model(str(tiny_folder("sd"))).at("cpu", torch.float64)
    calls = []
    handle = m.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        G = m.generator("sampler", steps=2, prompt="a blue tree", guidance_scale=2.0)
        assert len(calls) == 2  # the prompt and the negative prompt
        m.generator("denoiser", t=300, prompt="a blue tree", guidance_scale=2.0)
        with torch.no_grad():
            G(m.latents(2).double())
        assert len(calls) == 2, "the generator holds the embeddings; it never runs the text encoder"
        assert all(not isinstance(mod, type(m.text_encoder)) for mod in G.modules())
    finally:
        handle.remove()
    with pytest.raises(ValueError, match="prompt must be a string"):
        m.generator("sampler", prompt=3)
    with pytest.raises(ValueError, match="takes no conditioning class_label"):
        m.generator("sampler", class_label=3)


def test_decoder_map_of_a_pixel_model_is_refused_clearly():
    m = load_model(str(tiny_folder("ddpm")))
    with pytest.raises(ValueError, match="map 'decoder' is the VAE decoder of a latent diffusion model, but .* pixel"):
        m.generator("decoder")


def test_bf16_views_follow_float32():
    m = load_model(str(tiny_folder("sd")))
    z = m.latents(2, seed=1)
    with torch.no_grad():
        ref = m.generator("sampler", steps=2, prompt="a cat")(z)
        view = m.at("cpu", torch.bfloat16)
        out = view.generator("sampler", steps=2, prompt="a cat")(z.bfloat16()).float()
    assert view.text_encoder is not m.text_encoder and next(m.unet.parameters()).dtype == torch.float32
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()

"""Opening diffusers pipelines offline: folders and Hugging Face cache ids, the resolution order, and each refusal
(one sentence, naming what was expected and found), all checked before any component is loaded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from explorer.models import ASSETS, load_model
from explorer.models.pipelines import SUPPORTED_PIPELINES, PipelineError, hf_cache_dir, inspect_folder
from explorer.models.registry import kinds
from tests.tiny_pipelines import save_pipeline, tiny_folder

SHIPPED = ASSETS / "pipelines" / "digits-unet"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _copy(kind: str, dest) -> object:
    return shutil.copytree(tiny_folder(kind), dest)


def _index(folder) -> dict:
    return json.loads((folder / "model_index.json").read_text())


def _write_index(folder, index: dict) -> None:
    (folder / "model_index.json").write_text(json.dumps(index))


def test_kinds_are_registered_in_the_resolution_order():
    names = [k.name for k in kinds()]
    assert names.index("builtin") < names.index("trained") < names.index("diffusers-folder") < names.index("module")
    assert names[-1] == "diffusers-cache"


@pytest.mark.parametrize("kind, cls, latent, sample, maps", [
    ("ddpm", "PixelDDPM", (1, 8, 8), (1, 8, 8), ("sampler", "from_t", "denoiser")),
    ("ddim", "PixelDDPM", (1, 8, 8), (1, 8, 8), ("sampler", "from_t", "denoiser")),
    ("dit", "DiTModel", (4, 4, 4), (3, 8, 8), ("sampler", "from_t", "denoiser", "decoder")),
    ("sd", "StableDiffusionModel", (4, 4, 4), (3, 8, 8), ("sampler", "from_t", "denoiser", "decoder")),
])
def test_each_supported_class_opens_from_its_folder(kind, cls, latent, sample, maps):
    folder = tiny_folder(kind)
    m = load_model(str(folder), cache=False)
    assert type(m).__name__ == cls and m.name == str(folder)
    assert m.latent_shape == m.diffusion_shape == latent and m.sample_shape == sample
    assert m.capabilities.maps == maps and m.capabilities.diffusion
    assert m.image_shape == sample[1:] and m.channels == sample[0]
    assert (m.decode_module() is None) == (kind in ("ddpm", "ddim"))
    assert m.meta["kind"] == "diffusers" and m.meta["pipeline"] == _index(folder)["_class_name"]
    sched = m.meta["scheduler"]
    assert (sched["clip_sample"], sched["timestep_spacing"], sched["set_alpha_to_one"]) == (False, "trailing", True)
    ddim = m.schedule.scheduler
    assert (ddim.config.clip_sample, ddim.config.timestep_spacing, ddim.config.set_alpha_to_one) == (
        False, "trailing", True)
    json.dumps(m.meta)  # the record is plain JSON
    # the same folder gives the same identity; another seed's weights another
    assert load_model(str(folder), cache=False).weights_hash == m.weights_hash


def test_weights_hash_follows_the_weights(tmp_path):
    a = load_model(str(save_pipeline("ddpm", tmp_path / "a", seed=1)), cache=False)
    b = load_model(str(save_pipeline("ddpm", tmp_path / "b", seed=2)), cache=False)
    assert a.weights_hash != b.weights_hash and len(a.weights_hash) == 16


def test_sd_scheduler_keeps_its_own_betas():
    """The SD tiny pipeline ships a PNDM scheduler with SD 1.x's scaled-linear betas: the DDIM maps use those."""
    from diffusers import DDIMScheduler

    m = load_model(str(tiny_folder("sd")))
    ref = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    torch.testing.assert_close(m.schedule.alphas_cumprod, ref.alphas_cumprod.double(), rtol=0, atol=0)
    assert m.meta["scheduler"]["source_class"] == "PNDMScheduler"


def test_shipped_digits_unet_opens_with_its_training_set():
    m = load_model(str(SHIPPED))
    assert m.sample_shape == (1, 8, 8) and m.image_shape == (8, 8) and m.default_steps == 20
    assert m.capabilities.likelihoods == ("ode",) and m.capabilities.training_set
    from explorer.models.digits import digit_images, training_indices

    X, y = digit_images()
    idx = training_indices("full")
    assert len(m.training_set) == len(idx) == 1500
    np.testing.assert_array_equal(m.training_set.data([0, 5]), X[idx[[0, 5]]].reshape(2, 1, 8, 8))
    np.testing.assert_array_equal(m.training_labels(), y[idx])


# ---------------------------------------------------------------------------- the Hugging Face cache
def _cache_layout(cache, repo_id: str, source, rev: str = "0123456789abcdef0123456789abcdef01234567"):
    """A hand-made hub cache entry: files as blobs, the snapshot as links to them, refs/main naming it."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / rev
    for f in sorted(p for p in source.rglob("*") if p.is_file()):
        import hashlib

        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, blob)
        link = snap / f.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)
    return snap


def test_a_cache_id_opens_from_the_local_cache_only(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    _cache_layout(cache, "tiny-org/tiny-sd", tiny_folder("sd"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))  # read at the call, after the import
    assert hf_cache_dir() == cache
    m = load_model("tiny-org/tiny-sd", cache=False)
    assert m.name == "tiny-org/tiny-sd" and m.meta["folder"].startswith(str(cache))
    ref = load_model(str(tiny_folder("sd")), cache=False)
    z = m.latents(2, seed=4)
    with torch.no_grad():
        np.testing.assert_array_equal(m.generator("sampler", steps=2)(z).numpy(),
                                      ref.generator("sampler", steps=2)(z).numpy())
    # HF_HOME/hub when HF_HUB_CACHE is unset
    monkeypatch.delenv("HF_HUB_CACHE")
    home = tmp_path / "home"
    _cache_layout(home / "hub", "tiny-org/tiny-ddpm", tiny_folder("ddpm"))
    monkeypatch.setenv("HF_HOME", str(home))
    assert load_model("tiny-org/tiny-ddpm", cache=False).sample_shape == (1, 8, 8)


def test_cached_pipelines_lists_the_supported_pipelines_in_the_cache(tmp_path, monkeypatch):
    from explorer.models.pipelines import cached_pipelines

    cache = tmp_path / "hub"
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert cached_pipelines() == []  # no cache folder at all
    _cache_layout(cache, "tiny-org/tiny-sd", tiny_folder("sd"))
    _cache_layout(cache, "b-org/tiny-dit", tiny_folder("dit"))
    # not pipelines: a text model, a pipeline of an unsupported class, a repository without its snapshot
    text = tmp_path / "text"
    text.mkdir()
    (text / "config.json").write_text("{}")
    _cache_layout(cache, "org/a-text-model", text)
    other = tmp_path / "other"
    shutil.copytree(tiny_folder("ddpm"), other)
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "KarrasVePipeline"}))
    _cache_layout(cache, "org/unsupported", other)
    (cache / "models--org--partial" / "refs").mkdir(parents=True)
    assert cached_pipelines() == ["b-org/tiny-dit", "tiny-org/tiny-sd"]
    assert cached_pipelines(tmp_path / "nowhere") == []
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # HF_HOME/hub, read at the call
    assert cached_pipelines() == ["b-org/tiny-dit", "tiny-org/tiny-sd"]


def test_a_cache_id_not_in_the_cache_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(ValueError, match=r"nor a pipeline in the local Hugging Face cache .*empty-hub") as err:
        load_model("someone/missing-model", cache=False)
    assert "models--someone--missing-model" in str(err.value) and "toy2d/ring" in str(err.value)


def test_a_cache_entry_without_its_snapshot_is_refused(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--o--n"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ValueError, match="names snapshot abc in refs/main, but .* is missing"):
        load_model("o/n", cache=False)


# ---------------------------------------------------------------------------- refusals
def test_no_such_folder(tmp_path):
    with pytest.raises(ValueError, match="no such folder .*nowhere: expected a diffusers pipeline folder"):
        load_model(str(tmp_path / "nowhere"), cache=False)
    with pytest.raises(ValueError, match="no such folder"):
        load_model("./not/a/folder/here", cache=False)


def test_a_folder_that_is_not_a_pipeline(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(ValueError, match="is a folder but not a diffusers pipeline: it has no model_index.json"):
        load_model(str(tmp_path / "stuff"), cache=False)
    (tmp_path / "stuff" / "model_index.json").write_text("{not json")
    with pytest.raises(ValueError, match="model_index.json .* is not readable JSON"):
        load_model(str(tmp_path / "stuff"), cache=False)


def test_an_unsupported_class_is_refused_by_name_before_loading(tmp_path):
    folder = _copy("sd", tmp_path / "xl")
    index = _index(folder)
    index["_class_name"] = "StableDiffusionXLPipeline"
    _write_index(folder, index)
    shutil.rmtree(folder / "unet")  # nothing is loaded: the class is refused first
    with pytest.raises(ValueError, match="unsupported pipeline class 'StableDiffusionXLPipeline'") as err:
        load_model(str(folder), cache=False)
    assert all(name in str(err.value) for name in SUPPORTED_PIPELINES)


def test_a_component_of_the_wrong_class_is_refused(tmp_path):
    folder = _copy("dit", tmp_path / "dit")
    index = _index(folder)
    index["transformer"] = ["diffusers", "UNet2DModel"]
    _write_index(folder, index)
    with pytest.raises(ValueError, match="needs component 'transformer' of class DiTTransformer2DModel"):
        load_model(str(folder), cache=False)


@pytest.mark.parametrize("how", ["class-list", "python-file", "foreign-library", "auto-map"])
def test_custom_pipelines_that_need_remote_code_are_refused(tmp_path, how):
    folder = _copy("ddpm", tmp_path / "custom")
    index = _index(folder)
    if how == "class-list":
        index["_class_name"] = ["pipeline_mine", "MyPipeline"]
    elif how == "python-file":
        (folder / "pipeline.py").write_text("raise SystemExit('must never run')\n")
    elif how == "foreign-library":
        index["unet"] = ["my_unets", "MyUNet"]
    else:
        cfg = json.loads((folder / "unet" / "config.json").read_text())
        cfg["auto_map"] = {"AutoModel": "modeling_mine.MyUNet"}
        (folder / "unet" / "config.json").write_text(json.dumps(cfg))
    _write_index(folder, index)
    with pytest.raises(ValueError, match="custom pipeline that needs remote code .* trust_remote_code stays off"):
        load_model(str(folder), cache=False)


def test_pickled_weights_alone_are_refused(tmp_path):
    folder = _copy("ddpm", tmp_path / "pickled")
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_pretrained(folder / "unet")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    unet.save_pretrained(folder / "unet", safe_serialization=False)
    assert (folder / "unet" / "diffusion_pytorch_model.bin").exists()
    with pytest.raises(ValueError, match=r"pickled \(diffusion_pytorch_model.bin\).* only .safetensors is accepted"):
        load_model(str(folder), cache=False)


def test_missing_and_corrupt_weights(tmp_path):
    folder = _copy("sd", tmp_path / "missing")
    (folder / "text_encoder" / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="the weights of 'text_encoder' are missing"):
        load_model(str(folder), cache=False)
    folder = _copy("sd", tmp_path / "nofolder")
    shutil.rmtree(folder / "vae")
    with pytest.raises(ValueError, match="component 'vae' is missing"):
        load_model(str(folder), cache=False)
    folder = _copy("sd", tmp_path / "corrupt")
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="could not load component 'unet' .* truncated or corrupt") as err:
        load_model(str(folder), cache=False)
    assert "\n" not in str(err.value)


def test_prediction_types(tmp_path):
    m = load_model(str(save_pipeline("ddpm", tmp_path / "v", prediction_type="v_prediction")), cache=False)
    assert m.meta["scheduler"]["prediction_type"] == "v_prediction"
    folder = save_pipeline("ddpm", tmp_path / "sample", prediction_type="sample")
    with pytest.raises(ValueError, match="prediction_type 'sample'; supported: epsilon, v_prediction"):
        load_model(str(folder), cache=False)


def test_inspect_checks_files_only(tmp_path):
    info = inspect_folder(tiny_folder("sd"))
    assert info.class_name == "StableDiffusionPipeline" and set(info.weights) == {"unet", "vae", "text_encoder"}
    assert all(p.suffix == ".safetensors" for _, files in info.weights.values() for p in files)
    with pytest.raises(PipelineError, match="is a file, not a diffusers pipeline folder"):
        inspect_folder(tiny_folder("sd") / "model_index.json")


def test_builtin_names_and_unknown_specs_keep_their_messages():
    with pytest.raises(ValueError, match="toy2d/ring"):
        load_model("toy2d/nope", cache=False)
    with pytest.raises(ValueError, match="unknown model 'nope'.*diffusers pipeline folder"):
        load_model("nope", cache=False)

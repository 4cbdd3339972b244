"""Every page on each tiny diffusers pipeline (DDPM in pixels, class-conditional DiT, text-to-image SD) under
``AppTest`` with the test size profile: the pipelines reach the app through ``EXPLORER_MODELS`` (folders) and the
local Hugging Face cache (an ``org/name``), images are drawn in RGB, DiT gets a class picker and SD prompt fields,
and the conditioning chosen reaches the views' cache keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from explorer import cache
from tests.tiny_pipelines import tiny_folder

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("app_pages/local_geometry.py", "app_pages/geodesics.py", "app_pages/embedding.py",
         "app_pages/memorization.py")
CACHE_ID = "tiny-org/tiny-sd"


@pytest.fixture(scope="module", autouse=True)
def pipelines(app_test_profile, tmp_path_factory):
    """EXPLORER_MODELS naming the tiny DDPM and DiT folders, the tiny SD as a cache id of a private hub cache, no
    shipped cache (these tests compute), one torch thread."""
    from tests.test_pipeline_loading import _cache_layout

    hub = tmp_path_factory.mktemp("hub")
    _cache_layout(hub, CACHE_ID, tiny_folder("sd"))
    old = {k: os.environ.get(k) for k in ("EXPLORER_MODELS", "HF_HUB_CACHE", "HF_HUB_OFFLINE")}
    os.environ["EXPLORER_MODELS"] = ",".join(str(tiny_folder(k)) for k in ("ddpm", "dit"))
    os.environ["HF_HUB_CACHE"], os.environ["HF_HUB_OFFLINE"] = str(hub), "1"
    old_assets, cache.ASSETS_CACHE = cache.ASSETS_CACHE, tmp_path_factory.mktemp("no-shipped-cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    specs = {"ddpm": str(tiny_folder("ddpm")), "dit": str(tiny_folder("dit")), "sd": CACHE_ID}
    # the process's shared instances (what the app's get_model returns), with a cheaper likelihood while these tests
    # run: 4 RK4 steps instead of 20 and p_ref over 4 samples (the density's key names both)
    from explorer.models import load_model

    saved = {}
    for spec in specs.values():
        m = load_model(spec)
        saved[spec] = (m.ref_points, dict(m.meta["likelihood"]))
        m.ref_points, m.meta["likelihood"] = 4, {**m.meta["likelihood"], "n_steps": 4}
    yield specs
    for spec, (ref, lik) in saved.items():
        m = load_model(spec)
        m.ref_points, m.meta["likelihood"] = ref, lik
    torch.set_num_threads(threads)
    cache.ASSETS_CACHE = old_assets
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def run_page(page: str, model: str, state: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params["model"] = model
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    if page != PAGES[0]:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["model"] == model
    return at


def _texts(at) -> str:
    return " ".join(str(e.value) for kind in ("caption", "markdown", "info", "warning") for e in at.get(kind))


def _images(at) -> list:
    return [*at.get("imgs"), *at.get("image")]


@pytest.mark.parametrize("kind", ["ddpm", "dit", "sd"])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_each_pipeline(pipelines, kind, page):
    at = run_page(page, pipelines[kind])
    assert at.get("plotly_chart") or _images(at) or at.get("dataframe"), f"{page} drew nothing on {kind}"
    if kind == "dit":
        assert any(s.label.startswith("Class") for s in at.selectbox), [s.label for s in at.selectbox]
    if kind == "sd":
        labels = [t.label for t in at.text_input]
        assert any(lab.startswith("Prompt") for lab in labels), labels
        if page in (PAGES[0], PAGES[3]):  # sampling pages; a density is the model's at guidance scale 1
            assert any(lab.startswith("Negative prompt") for lab in labels), labels


def test_the_sidebar_lists_the_cached_pipeline_and_the_folders(pipelines):
    at = run_page(PAGES[0], pipelines["ddpm"])
    options = at.sidebar.selectbox[0].options
    assert CACHE_ID in options and pipelines["dit"] in options and pipelines["ddpm"] in options
    assert "pipelines/digits-unet" in options


def test_a_chosen_class_and_prompt_reach_the_views(pipelines):
    at = run_page(PAGES[0], pipelines["dit"])
    picker = next(s for s in at.selectbox if s.label.startswith("Class"))
    picker.set_value(picker.options[1]).run()
    assert not at.exception and not at.error
    assert at.session_state["cond_class"] == 1
    at = run_page(PAGES[0], pipelines["sd"])
    next(t for t in at.text_input if t.label.startswith("Prompt")).input("a red dog").run()
    assert not at.exception and not at.error
    assert at.session_state["cond_prompt"] == "a red dog"
    assert "a red dog" in _texts(at)


def test_colour_galleries_and_strips_use_the_models_display():
    """RGB samples are drawn through ``to_display``; a latent model's latents are decoded first; grey models keep
    their grey values."""
    import numpy as np

    from explorer.models import load_model
    from webui import galleries, widgets

    sd = load_model(CACHE_ID)
    x = sd.sample(3, seed=0, steps=2)
    display = galleries.display_of(sd)
    assert display is not None and galleries.display_of(load_model("digits/full")) is None
    pix = galleries.pixels(x, sd.image_shape, display)
    assert pix.shape == (3, 8, 8, 3)
    np.testing.assert_allclose(pix, sd.to_display(x) / 255.0)
    latents = sd.encode(x)  # points of the diffusion's space: shown decoded
    np.testing.assert_array_equal(galleries.pixels(latents, sd.image_shape, display) * 255,
                                  sd.to_display(sd.decode(latents)))
    m = galleries.mosaic(pix, ncols=2)
    assert m["z"].shape == (17, 17, 3) and np.isnan(m["z"][8]).all()
    np.testing.assert_allclose(m["z"][9:17, :8], pix[2])
    s = galleries.strip(x, sd.image_shape, 2, display, gap=1)
    assert s.shape == (16, 3 * 16 + 2, 3) and s.dtype == np.uint8
    np.testing.assert_array_equal(s[::2, :16:2], sd.to_display(x)[0])
    fig = widgets.gallery_figure(x, sd.image_shape, [0, 1, 2], display=display)
    assert fig.data[0].type == "image" and fig.data[1].type == "scatter"

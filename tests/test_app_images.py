"""The app on an image model (``digits/full``, 8×8 digits) under ``AppTest`` with the test size profile: images
where the 2-D models show points; and the glue behind it (sizes per kind, mosaics, the model density, the shipped
cache of the default views)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from explorer import cache
from explorer.density.cached import likelihood_seconds_per_point, make_density
from explorer.jobs import default_registry
from explorer.views import geodesics as geov
from explorer.views import local_geometry as lgv
from explorer.views import sizes
from explorer.views.precompute import precompute_default_views
from webui import catalog, costs, galleries, profiles

ROOT = Path(__file__).resolve().parents[1]
MODEL = "digits/full"
LOCAL, EMBEDDING = "app_pages/local_geometry.py", "app_pages/embedding.py"


@pytest.fixture(scope="module", autouse=True)
def test_profile(app_test_profile, tmp_path_factory):
    """The test profile and a private cache (conftest), and no shipped cache: these tests compute."""
    old_assets, cache.ASSETS_CACHE = cache.ASSETS_CACHE, tmp_path_factory.mktemp("no-shipped-cache")
    yield
    cache.ASSETS_CACHE = old_assets


@pytest.fixture(scope="module")
def digits():
    from explorer.models import load_model

    if not catalog.model_status(MODEL)[0]:
        pytest.skip(f"{MODEL}: weights not in assets/")
    return load_model(MODEL)


def run_page(page: str, state: dict | None = None, query: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update({"model": MODEL, **(query or {})})
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    if page != LOCAL:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["model"] == MODEL
    return at


def traces(at) -> dict[str, dict]:
    """Every named trace of every chart, by name."""
    out = {}
    for c in at.get("plotly_chart"):
        for tr in json.loads(c.proto.spec)["data"]:
            if tr.get("name"):
                out[tr["name"]] = tr
    return out


def values(v) -> list:
    """A chart spec's array: a list, or Plotly's base64 typed array {"dtype", "bdata"}."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


# ---------------------------------------------------------------------------- pages
def test_local_geometry_shows_images(digits):
    at = run_page(LOCAL)
    tr = traces(at)
    assert tr["pool images"]["type"] == "heatmap", "the latent pool is a gallery of images"
    pool = tr["pool images (select)"]
    assert pool["text"] == [f"seed {s}" for s in range(profiles.profile("image")["n_pool"])]
    assert at.session_state["lg_seeds"] == [0, 1, 2], "three anchor seeds by default: a plane in 64-D needs them"
    samples = [t for name, t in tr.items() if name.startswith("samples (") and t["type"] == "heatmap"]
    assert samples, "the samples are images sorted by a descriptor, not a 2-D scatter"
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]
    assert "training data" not in tr and not any("Latents z" in t for t in titles)
    assert any(m.value.startswith("**ψ") for m in at.markdown) and any("samples by ψ" in t for t in titles)
    assert len(at.get("component_instance")) == 4, "the four maps are clickable images"
    assert "P = 64 of d = 64" in captions(at) and "Not available for this model" in captions(at)
    assert not any(b.key == "lg_on_run" for b in at.button), "no on-/off-manifold grid in 64-D"
    offered = at.session_state["_downloads"]
    maps = offered["dl_lg_maps"]["params"]
    assert maps["map"] == "sampler" and maps["steps"] == 3 and maps["n_directions"] == 64 and maps["seeds"] == [0, 1, 2]
    assert offered["dl_lg_samples"]["params"]["n_directions"] == 64
    assert at.query_params["dirs"] == "64"


def test_a_clicked_cell_shows_its_image_and_a_sketch_is_recorded(digits):
    at = run_page(LOCAL, state={"lg_cell": [1, 2]})
    images = [im for im in at.get("image") if "G(z)" in im.proto.imgs[0].caption]
    assert len(images) == 1, "the clicked cell's generated image (the others are the maps' colour bars)"
    assert any("Cell" in m.value for m in at.markdown)
    assert "Singular values of J" in str([c.proto.spec for c in at.get("plotly_chart")])
    at.selectbox(key="w_lg_dirs").set_value(16).run()
    assert not at.exception and not at.error
    assert "P = 16 of d = 64" in captions(at) and "sketch" in captions(at)
    assert at.session_state["_downloads"]["dl_lg_maps"]["params"]["n_directions"] == 16
    assert at.query_params["dirs"] == "16"


def test_fewer_than_three_anchors_ask_for_three(digits):
    at = run_page(LOCAL, query={"seeds": "4"})
    assert any("three anchor seeds" in i.value for i in at.info)
    assert "pool images" in traces(at), "the gallery to pick them from is still there"


def test_embedding_colours_by_digit_class_and_shows_images(digits):
    at = run_page(EMBEDDING, state={"emb_color": "labels"})
    tr = traces(at)
    assert tr["images"]["type"] == "heatmap"
    views = [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")][:3]
    n = profiles.profile("image")["embed_n"]
    labels = geov.geodesic_points(digits, "data", n, 0)[2]
    for view in views:  # one trace (and legend entry) per digit class, holding exactly that class's points
        seen = []
        for tr in view:
            assert tr["name"].startswith("label ")
            idx = values(tr["customdata"])
            assert set(labels[idx].tolist()) == {int(tr["name"].split()[1])}
            seen += idx
        assert sorted(seen) == list(range(n))
    assert set(labels.tolist()) <= set(range(10)) and len(set(labels.tolist())) > 3
    assert len(at.dataframe[0].value) == 2 + len(profiles.profile("image")["embed_lams"])
    at.session_state["emb_sel"] = [3, 5]
    at.run()
    assert not at.exception
    assert "selected images" in traces(at) and "2 points selected" in captions(at)


def test_switching_from_a_toy_to_digits_resets_the_sizes(digits):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.number_input(key="w_lg_res").set_value(9).run()
    assert at.session_state["lg_res"] == 9
    at.sidebar.selectbox(key="w_model").set_value(MODEL).run()
    assert not at.exception and not at.error
    assert at.session_state["lg_res"] == profiles.profile("image")["plane_n"], "a toy's plane size is not kept"
    assert at.session_state["lg_extent"] == profiles.profile("image")["extent"]


# ---------------------------------------------------------------------------- glue
def test_sizes_and_defaults_follow_the_kind_of_model(digits, ring):
    assert sizes.model_kind(digits) == "image" and sizes.model_kind(ring) == "points"
    assert profiles.sizes_for(digits) == profiles.profile("image")
    d = lgv.local_geometry_defaults(digits, profiles.profile_name())
    assert d["n_directions"] == 64 and d["seeds"] == [0, 1, 2] and d["steps"] == profiles.profile("image")["steps"]
    assert lgv.local_geometry_defaults(ring)["n_directions"] == 2
    from explorer.device import default_sketch_size

    assert sizes.default_directions(64) == 64 and sizes.default_directions(4096) == default_sketch_size()
    assert profiles.direction_options(64) == [4, 8, 16, 32, 64] and profiles.direction_options(2) == [2]


def test_mosaic_places_each_image_in_its_box():
    imgs = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    m = galleries.mosaic(imgs, ncols=2, gap=1)
    assert m["z"].shape == (3 * 3 - 1, 2 * 4 - 1) and (m["nrows"], m["ncols"]) == (3, 2)
    for k, (x0, y0, x1, y1) in enumerate(m["boxes"]):
        r, c = int(y0 + 0.5), int(x0 + 0.5)
        np.testing.assert_array_equal(m["z"][r:r + 2, c:c + 3], imgs[k])
        assert (x1 - x0, y1 - y0) == (3, 2) and m["x"][k] == (x0 + x1) / 2
    assert np.isnan(m["z"][2]).all() and np.isnan(m["z"][:, 3]).all(), "gaps are transparent"
    assert np.isnan(m["z"][6:, 4:]).all(), "the last row's missing image is empty"
    with pytest.raises(ValueError, match="non-empty"):
        galleries.mosaic(np.zeros((0, 2, 2)), 3)
    g = galleries.grey_images(np.array([[-1.0, 0.0, 1.0, 3.0]]), (2, 2))
    np.testing.assert_array_equal(g, [[[0.0, 0.5], [1.0, 1.0]]])
    assert galleries.sorted_by(np.array([2.0, np.nan, -1.0, 5.0])).tolist() == [2, 0, 3, 1]
    assert galleries.sorted_by(np.array([2.0, np.nan, -1.0]), ascending=False).tolist() == [0, 2, 1]


def test_model_density_uses_the_default_likelihood(digits, ring):
    dens = make_density(digits, "model")
    assert dens.ident["method"] == "ode" and dens.ident["n_steps"] == digits.default_likelihood["n_steps"]
    assert dens.ident["n_probes"] == digits.default_likelihood["n_probes"]
    assert dens.log_p_ref == pytest.approx(digits.log_p_ref)
    x = digits.training_data()[:3]
    np.testing.assert_allclose(dens(x), digits.log_prob(x, **digits.default_likelihood), rtol=1e-6)
    assert make_density(ring, "model").ident["method"] == "discrete"
    kde = make_density(digits, "kde")
    assert np.isfinite(kde(x)).all() and kde(x).shape == (3,)
    per = likelihood_seconds_per_point(digits, n=4)
    assert per > 0 and likelihood_seconds_per_point(ring) is None
    assert costs.density_fit_cost(digits, "model", 1000) == pytest.approx(1 + 1000 * per)
    X, is_bg, labels = geov.geodesic_points(digits, "data", 20, 0)
    assert X.shape == (20, 64) and not is_bg.any() and labels.shape == (20,)


def test_precomputed_default_views_are_read_from_the_shipped_folder(digits, tmp_path, monkeypatch):
    shipped = tmp_path / "assets-cache"
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(shipped))
    records = precompute_default_views(digits, preset=profiles.profile_name(), embedding=False, log=lambda *_: None,
                                       guidance=False)  # the Guidance page's shipped view: tests/test_app_guidance.py
    assert [r["what"] for r in records] == ["pool", "descriptor plane", "sample descriptors", "memorization report"]
    assert sum(p.stat().st_size for p in shipped.iterdir()) < 2e6
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "user"))
    monkeypatch.setattr(cache, "ASSETS_CACHE", shipped)
    default_registry().clear()  # results of this module's earlier pages are in memory: start as a new server
    d = lgv.local_geometry_defaults(digits, profiles.profile_name())
    assert lgv.descriptor_plane_is_cached(digits, d["map"], d["steps"], None, d["seeds"], d["n"],
                                                  d["extent"], d["n_directions"])
    at = run_page(LOCAL)
    assert "From the shipped cache" in captions(at)
    assert cache.stats()["entries"] == 0, "a first visit of the default view computes nothing"

"""The Streamlit app under ``AppTest`` (test size profile), and its Streamlit-free glue: app_state and cache."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explorer import cache
from explorer.density.cached import make_density
from explorer.models import DEFAULT_MODEL, TOY2D_MODELS
from explorer.views import geodesics as geov
from explorer.views import local_geometry as lgv
from explorer.views import sizes
from webui import catalog, charts, costs, downloads, profiles, query, selections, uploads

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["app_pages/local_geometry.py", "app_pages/geodesics.py", "app_pages/embedding.py"]
# Every page on every other 2-D model; the image models have their own tests (tests/test_app_images.py).
OTHER_MODELS = [m for m in TOY2D_MODELS if m != DEFAULT_MODEL]


pytestmark = pytest.mark.usefixtures("app_test_profile")  # test sizes, a private cache


def run_page(page: str | None = None, model: str | None = None, query: dict | None = None, timeout: float = 240):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if query:
        at.query_params.update(query)
    if model:
        at.session_state["model"] = model
    at.run()
    if page and page != PAGES[0]:
        at.switch_page(page)
        at.run()
    return at


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def chart_specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def trace(at, name_prefix: str) -> dict:
    for spec in chart_specs(at):
        for tr in spec["data"]:
            if str(tr.get("name", "")).startswith(name_prefix):
                return tr
    raise AssertionError(f"no trace named {name_prefix}...")


def model_available(spec: str) -> bool:
    return catalog.model_status(spec)[0]


# ---------------------------------------------------------------------------- pages
@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_the_default_model(page):
    at = run_page(page)
    assert_clean(at)
    assert at.session_state["model"] == DEFAULT_MODEL
    assert len(at.get("plotly_chart")) >= 3
    assert at.get("download_button"), "every page offers downloads"


@pytest.mark.parametrize("model", OTHER_MODELS)
def test_every_page_once_on_each_other_model(model):
    if not model_available(model):
        at = run_page(PAGES[1])
        assert_clean(at)
        assert any(model in c.value for c in at.sidebar.caption), "a missing model is listed as unavailable"
        pytest.skip(f"{model}: weights not in assets/ yet")
    for page in PAGES:
        at = run_page(page, query={"model": model})
        assert_clean(at)
        assert at.session_state["model"] == model
        assert at.query_params["model"] == model


def test_lambda_changes_the_geodesic():
    at = run_page(PAGES[1])
    lam = at.select_slider(key="w_geo_lam")
    lam.set_value(0.0562).run()
    assert_clean(at)
    small = trace(at, "geodesic")
    metrics_small = {m.label: m.value for m in at.metric}
    at.select_slider(key="w_geo_lam").set_value(5.62).run()
    assert_clean(at)
    large = trace(at, "geodesic")
    assert small["name"] != large["name"]
    assert metrics_small != {m.label: m.value for m in at.metric}
    assert at.query_params["lam"] == "5.62"
    offered = at.session_state["_downloads"]
    assert offered["dl_geo_path"]["params"]["lam"] == 5.62 and offered["dl_geo_path"]["params"]["relative"] is True
    assert offered["dl_geo_aff"]["params"]["lam"] == 5.62


@pytest.mark.parametrize("page", PAGES)
def test_downloads_on_each_page_carry_their_parameters(page):
    at = run_page(page)
    assert_clean(at)
    prefix = {"local_geometry": "dl_lg_", "geodesics": "dl_geo_", "embedding": "dl_emb_"}[Path(page).stem]
    offered = {k: v for k, v in at.session_state["_downloads"].items() if k.startswith(prefix)}
    assert len(offered) >= 2
    for key, item in offered.items():
        params = item["params"]
        assert params["model"] == DEFAULT_MODEL, key
        assert len(params) >= 5, (key, params)


def test_model_change_changes_the_page():
    if not model_available("toy2d/moons"):
        pytest.skip("toy2d/moons weights missing")
    at = run_page(PAGES[0])
    before = trace(at, "samples")
    at.sidebar.selectbox(key="w_model").set_value("toy2d/moons").run()
    assert_clean(at)
    assert at.session_state["model"] == "toy2d/moons"
    assert at.query_params["model"] == "toy2d/moons"
    assert trace(at, "samples")["x"] != before["x"]


def map_images(at) -> list[np.ndarray]:
    """The descriptor maps as drawn: the PNGs the clickable image components carry."""
    import base64

    from PIL import Image

    out = []
    for el in at.get("component_instance"):
        src = json.loads(el.proto.json_args)["src"]
        out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))))
    return out


def test_map_change_changes_the_maps():
    at = run_page(PAGES[0])
    before = map_images(at)
    assert len(before) == 4 and before[0].shape[2] == 3, "ψ, ν, ν_eff and δ, each a clickable RGB image"
    at.selectbox(key="w_lg_map").set_value("denoiser").run()
    assert_clean(at)
    assert at.query_params["map"] == "denoiser"
    assert not np.array_equal(map_images(at)[0], before[0])


def test_url_round_trip():
    at = run_page(PAGES[1])
    at.select_slider(key="w_geo_lam").set_value(0.178).run()
    at.number_input(key="w_geo_k").set_value(12).run()
    assert_clean(at)
    query = dict(at.query_params)
    assert query["lam"] == "0.178" and query["k"] == "12"
    again = run_page(PAGES[1], query=query)
    assert_clean(again)
    assert again.select_slider(key="w_geo_lam").value == 0.178
    assert again.number_input(key="w_geo_k").value == 12
    assert {m.label: m.value for m in again.metric} == {m.label: m.value for m in at.metric}
    assert trace(again, "geodesic")["x"] == trace(at, "geodesic")["x"]


def test_bad_link_parameters_are_reported_not_fatal():
    at = run_page(PAGES[1], query={"lam": "abc", "k": "x", "model": "toy2d/nope"})
    assert not at.exception
    assert at.session_state["model"] == DEFAULT_MODEL
    assert any("lam=" in w.value for w in at.sidebar.warning)


def test_disconnected_endpoints_give_a_message_not_a_crash():
    at = run_page(PAGES[1])
    at.number_input(key="geo_nbg").set_value(0).run()
    at.number_input(key="w_geo_k").set_value(1).run()
    assert not at.exception
    text = " ".join(str(w.value) for w in [*at.warning, *at.error])
    assert "components" in text and "k >=" in text


# ---------------------------------------------------------------------------- app_compute (what the pages call)
def test_geodesic_view_reuses_cached_densities():
    from explorer.models import load_model

    m = load_model(DEFAULT_MODEL)
    dens = make_density(m, "kde")
    X, is_bg, labels = geov.geodesic_points(m, "data", 120, 30)
    state = geov.fit_geodesics(m, dens, X, is_bg, labels)
    i, j = geov.default_endpoints(X, is_bg)
    geov.geodesic_view(state, 1.0, 1.0, i, j)
    evals = dens.n_evals
    a = geov.geodesic_view(state, 0.0562, 1.0, i, j)
    b = geov.geodesic_view(state, 5.62, 1.0, i, j)
    assert dens.n_evals == evals, "a λ change must not evaluate the density"
    assert a["ok"] and b["ok"] and a["length"] != b["length"]
    assert b["ratio"] == pytest.approx(b["length"] / b["straight_length"])


def test_geodesic_view_reports_disconnected_endpoints():
    from explorer.models import load_model

    m = load_model(DEFAULT_MODEL)
    X = np.r_[np.random.default_rng(0).normal(size=(20, 2)) * 0.1, np.random.default_rng(1).normal(size=(20, 2)) * 0.1
              + 10]
    dens = make_density(m, "kde", data=X, name="two-blobs")
    state = geov.fit_geodesics(m, dens, X, np.zeros(40, bool), None, k=3)
    view = geov.geodesic_view(state, 1.0, 1.0, 0, 39)
    assert not view["ok"] and "not connected" in view["message"] and "k >=" in view["fix"]


def test_cell_details_match_the_maps():
    from explorer.models import load_model

    m = load_model(DEFAULT_MODEL)
    assert not lgv.descriptor_plane_is_cached(m, "denoiser", 3, 170, [], 5, 2.0)
    arrays, rec = lgv.descriptor_plane(m, "denoiser", 3, 170, [], 5, 2.0)
    assert lgv.descriptor_plane_is_cached(m, "denoiser", 3, 170, [], 5, 2.0), "no confirm once on disk"
    again, rec2 = lgv.descriptor_plane(m, "denoiser", 3, 170, [], 5, 2.0)
    assert not rec["hit"] and rec2["hit"]
    d = lgv.cell_details(m, "denoiser", 3, 170, arrays, 1, 3)
    assert d["u"] == pytest.approx(arrays["u"][3]) and d["v"] == pytest.approx(arrays["v"][1])
    np.testing.assert_allclose(d["latent"], [arrays["u"][3], arrays["v"][1]], atol=1e-6)
    assert d["values"]["psi"] == pytest.approx(float(arrays["psi"][1, 3]))
    assert np.log(d["singular_values"]).sum() == pytest.approx(d["values"]["psi"], rel=1e-5, abs=1e-5)


# ---------------------------------------------------------------------------- app_state
def test_query_encode_decode_round_trip():
    state = {"model": "toy2d/moons", "geo_lam": 5.62, "geo_p0": 1.0, "geo_k": 12, "geo_ends": [3, 17],
             "geo_overlay": [0.01, 1.0, 10.0], "lg_map": "from_t", "lg_t": 170, "lg_seeds": [1, 2, 3],
             "lg_extent": 2.5, "emb_sel": [4, 5], "not_shared": 1, "lg_cell": None}
    q = query.encode_query(state)
    assert "not_shared" not in q and "cell" not in q
    assert all(isinstance(v, str) for v in q.values())
    back, problems = query.decode_query(q)
    assert problems == []
    assert back == {k: v for k, v in state.items() if k not in ("not_shared", "lg_cell")}


def test_decode_query_skips_bad_values_and_snaps_lambda():
    back, problems = query.decode_query({"lam": "4.9", "k": "ten", "ends": ["1,2"], "zzz": "1", "p0": "-1",
                                             "eps": "nan"})
    assert back == {"geo_lam": 5.62, "geo_ends": [1, 2]}
    assert sorted(problems) == sorted(["k='ten'", "p0='-1'", "eps='nan'"])


def test_selection_helpers():
    event = {"selection": {"points": [{"customdata": [3, 4], "point_index": 0},
                                      {"customdata": [9, 9]}]}}
    assert selections.cell_from_selection(event, 5) == (3, 4)
    assert selections.cell_from_selection(event, 3) is None
    assert selections.cell_from_selection(None, 5) is None
    assert selections.cell_from_selection({"selection": {"points": []}}, 5) is None
    ev2 = {"selection": {"points": [{"customdata": 7}, {"customdata": [2]}, {"customdata": 7}, {"customdata": 99}]}}
    assert selections.indices_from_selection(ev2, 10) == [7, 2]
    assert selections.add_anchor([1, 2], 3) == [1, 2, 3]
    assert selections.add_anchor([1, 2, 3], 4) == [2, 3, 4]
    assert selections.add_anchor([1, 2, 3], 2) == [1, 3]
    assert selections.update_endpoints([], 5) == [5]
    assert selections.update_endpoints([5], 8) == [5, 8]
    assert selections.update_endpoints([5, 8], 2) == [8, 2]
    assert selections.update_endpoints([5, 8], 5) == [5, 8]


def test_grid_cells_follow_the_plane_convention():
    u, v = np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0])
    values = np.arange(6).reshape(2, 3)
    g = charts.grid_cells(u, v, values)
    for x, y, val, (i, j) in zip(g["x"], g["y"], g["value"], g["customdata"], strict=True):
        assert x == u[j] and y == v[i] and val == values[i, j]
    with pytest.raises(ValueError, match="does not match"):
        charts.grid_cells(u, v, values.T)


def test_cost_estimates_and_confirm():
    small = costs.descriptor_cost(36, 3)
    big = costs.descriptor_cost(128 * 128, 50)
    assert small < 10 and big > 60
    assert costs.descriptor_cost(128 * 128, 50, "denoiser") < big
    assert costs.needs_confirm(big) and not costs.needs_confirm(small)
    assert costs.graph_cost(2500, 10, 3, model_density=True) > costs.graph_cost(2500, 10, 3, False)
    # digits: 0.19 s per latent for the full 64-direction Jacobian of the 20-step sampler; a sketch is cheaper
    full = costs.descriptor_cost(256, 20, n_directions=64)
    assert 30 < full < 120 and costs.descriptor_cost(256, 20, n_directions=16) < full / 2
    assert costs.density_cost(100, True, seconds_per_point=0.05) == pytest.approx(6.0)
    assert costs.density_cost(100, False, seconds_per_point=0.05) < 2
    assert costs.describe_seconds(30) == "about 30 s" and costs.describe_seconds(600) == "about 10 min"


def test_profiles(monkeypatch):
    assert profiles.profile()["plane_n"] == 6
    assert profiles.profile("points") == profiles.profile()
    assert profiles.profile("image")["plane_n"] <= 6 and profiles.profile("image")["n_background"] == 0
    monkeypatch.setenv("EXPLORER_CONFIRM_SECONDS", "5")
    assert profiles.profile()["confirm_seconds"] == 5.0 and profiles.profile("image")["confirm_seconds"] == 5.0
    with pytest.raises(ValueError, match="kind"):
        profiles.profile("video")
    d = sizes.PRESETS["default"]
    assert d["plane_n"] == 128 and d["steps"] == 50 and d["graph_n"] == 2000 and d["k"] == 10 and d["n_background"] > 0
    monkeypatch.setenv("EXPLORER_PROFILE", "default")
    img = profiles.profile("image")
    assert img["plane_n"] in (16, 24) and img["n_samples"] == 64 and 300 <= img["embed_n"] <= 500
    assert img["k"] == 10 and img["n_background"] == 0 and len(img["seeds"]) == 3


def test_downloads_carry_their_parameters():
    params = {"model": "toy2d/ring", "lam": 0.5, "ends": np.array([1, 2]), "n": np.int64(3)}
    csv = downloads.csv_bytes(pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}), params)
    assert downloads.read_params(csv) == {"model": "toy2d/ring", "lam": 0.5, "ends": [1, 2], "n": 3}
    df = pd.read_csv(io.BytesIO(csv), comment="#")
    assert df.shape == (2, 2)
    npz = downloads.npz_bytes({"a": np.arange(3)}, params)
    assert downloads.read_params(npz)["lam"] == 0.5
    with np.load(io.BytesIO(npz)) as f:
        np.testing.assert_array_equal(f["a"], np.arange(3))
    with pytest.raises(ValueError, match="params"):
        downloads.read_params(b"x,y\n1,2\n")


def test_parse_points_csv_validates():
    good = "x,y\n" + "\n".join(f"{i},{i * 0.5}" for i in range(20))
    assert uploads.parse_points_csv(good.encode()).shape == (20, 2)
    no_header = "\n".join(f"{i},{i}" for i in range(12))
    assert uploads.parse_points_csv(no_header.encode()).shape == (12, 2)
    cases = {"x,y,z\n" + "1,2,3\n" * 12: "two columns", "x,y\n" + "1,a\n" * 12: "number",
             "x,y\n" + "1,nan\n" * 12: "NaN", "x,y\n1,2\n": "at least 10"}
    for text, msg in cases.items():
        with pytest.raises(ValueError, match=msg):
            uploads.parse_points_csv(text.encode())
    with pytest.raises(ValueError, match="limit"):
        uploads.parse_points_csv(good.encode(), max_rows=5)


def test_nearest_option_and_parsers():
    assert query.nearest_option(0.05) == 0.0562 and query.nearest_option(5) == 5.62
    assert 1.0 in query.LAM_OPTIONS
    assert selections.parse_ints("1, 2 3") == [1, 2, 3]
    assert selections.parse_floats("0.1,1") == [0.1, 1.0]
    for bad, fn in (("1,a", selections.parse_ints), ("1,-2", selections.parse_floats)):
        with pytest.raises(ValueError):
            fn(bad)


# ---------------------------------------------------------------------------- cache
def test_cache_key_changes_with_every_parameter(monkeypatch):
    base = {"map": "sampler", "steps": 50, "t": None, "seeds": [1, 2, 3], "n": 128, "extent": 3.0}
    key = cache.cache_key("descriptor_maps", base, "abc")
    assert key == cache.cache_key("descriptor_maps", dict(reversed(list(base.items()))), "abc")
    changed = {**base}
    for name, value in {"map": "from_t", "steps": 49, "t": 170, "seeds": [1, 2, 4], "n": 64, "extent": 3.5}.items():
        changed = {**base, name: value}
        assert cache.cache_key("descriptor_maps", changed, "abc") != key, name
    assert cache.cache_key("descriptor_maps", {**base, "new": 1}, "abc") != key
    assert cache.cache_key("descriptor_maps", base, "abd") != key
    assert cache.cache_key("descriptor_maps", base, "abc", dtype="float64") != key
    assert cache.cache_key("other_kind", base, "abc") != key
    monkeypatch.setattr(cache, "CODE_VERSION", "9.9")
    assert cache.cache_key("descriptor_maps", base, "abc") != key


def test_cache_cached_hit_and_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "c"))
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(4.0), "b": np.array(2)}

    assert not cache.exists("thing", {"x": 1}, "w")
    a1, r1 = cache.cached("thing", {"x": 1}, compute, weights_hash="w")
    assert cache.exists("thing", {"x": 1}, "w") and not cache.exists("thing", {"x": 2}, "w")
    a2, r2 = cache.cached("thing", {"x": 1}, compute, weights_hash="w")
    assert len(calls) == 1 and not r1["hit"] and r2["hit"]
    np.testing.assert_array_equal(a1["a"], a2["a"])
    npz, js = cache.paths("thing", r1["key"])
    rec = json.loads(js.read_text())
    assert rec["params"] == {"x": 1} and rec["weights_hash"] == "w" and rec["code_version"] == cache.CODE_VERSION
    with np.load(npz) as f:  # a user can reload it in a notebook
        np.testing.assert_array_equal(f["a"], np.arange(4.0))
    cache.cached("other", {"x": 1}, compute, weights_hash="w")
    assert cache.stats()["entries"] == 2
    assert cache.clear("thing") == 2 and cache.stats()["entries"] == 1
    assert cache.clear() == 2 and cache.stats()["entries"] == 0
    cache.cached("thing", {"x": 1}, compute, weights_hash="w")
    assert len(calls) == 3


def test_cache_writes_are_atomic(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(".json"):
            raise KeyboardInterrupt  # interrupted between the two files
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        cache.cached("job", {"x": 1}, lambda: {"a": np.ones(3)}, weights_hash="w")
    monkeypatch.setattr(os, "replace", real_replace)
    assert not list(tmp_path.glob(".tmp-*")), "no temporary file is left behind"
    assert not list(tmp_path.glob("*.json")), "an interrupted entry is not valid"
    arrays, rec = cache.cached("job", {"x": 1}, lambda: {"a": np.zeros(3)}, weights_hash="w")
    assert not rec["hit"] and arrays["a"].sum() == 0, "the interrupted job restarts cleanly"
    npz, js = cache.paths("job", rec["key"])
    npz.write_bytes(b"torn")  # a damaged file is recomputed, never returned
    arrays, rec = cache.cached("job", {"x": 1}, lambda: {"a": np.full(3, 2.0)}, weights_hash="w")
    assert not rec["hit"] and arrays["a"].sum() == 6


def test_cache_reads_fall_back_to_the_shipped_folder(tmp_path, monkeypatch):
    shipped, user = tmp_path / "assets-cache", tmp_path / "user"
    monkeypatch.setattr(cache, "ASSETS_CACHE", shipped)
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(shipped))  # what scripts/precompute-default-views does
    _, made = cache.cached("view", {"x": 1}, lambda: {"a": np.arange(3.0)}, weights_hash="w")
    assert not made["hit"] and cache.paths("view", made["key"])[0].parent == shipped
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(user))
    files = sorted(shipped.iterdir())
    for f in [*files, shipped]:
        f.chmod(0o555 if f.is_dir() else 0o444)  # read-only, as in an installed checkout
    try:
        assert cache.exists("view", {"x": 1}, "w") and not cache.exists("view", {"x": 1}, "other-weights")

        def boom():
            raise AssertionError("a shipped entry must not be recomputed")

        arrays, rec = cache.cached("view", {"x": 1}, boom, weights_hash="w")
        assert rec["hit"] and rec["shipped"] and arrays["a"].tolist() == [0.0, 1.0, 2.0]
        _, new = cache.cached("view", {"x": 2}, lambda: {"a": np.zeros(2)}, weights_hash="w")
        assert not new["hit"] and cache.paths("view", new["key"])[0].exists()
        assert cache.paths("view", new["key"])[0].parent == user, "writes go to the user's folder"
        _, stale = cache.cached("view", {"x": 1}, lambda: {"a": np.ones(1)}, weights_hash="new-weights")
        assert not stale["hit"], "an entry made with other weights is never hit"
        assert cache.stats()["entries"] == 2 and cache.clear() == 4, "stats and clear see the user's folder only"
        assert sorted(shipped.iterdir()) == files
        _, again = cache.cached("view", {"x": 1}, boom, weights_hash="w")
        assert again["shipped"]
    finally:
        for f in [shipped, *files]:
            f.chmod(0o755 if f.is_dir() else 0o644)


def test_cache_dir_default_and_env(monkeypatch):
    monkeypatch.delenv("EXPLORER_CACHE_DIR", raising=False)
    assert cache.cache_dir() == ROOT / ".explorer-cache"
    monkeypatch.setenv("EXPLORER_CACHE_DIR", "/tmp/somewhere")
    assert cache.cache_dir() == Path("/tmp/somewhere")


def test_on_off_manifold_section_runs_and_shows_counts():
    at = run_page(PAGES[0])
    at.button(key="lg_on_run").click().run()
    assert_clean(at)
    titles = [s.get("layout", {}).get("title", {}).get("text", "") for s in chart_specs(at)]
    assert any("AUROC" in t for t in titles)
    assert any("Counts" in c.value for c in at.caption)


@pytest.fixture(scope="module")
def trained_csv_model(tmp_path_factory):
    """A model trained (briefly) on a user's CSV by the CLI, as a user would."""
    from explorer.cli import main
    from explorer.models.datasets import sample_toy2d

    folder = tmp_path_factory.mktemp("user-model")
    data, _ = sample_toy2d("spiral", 300, seed=1)
    csv = folder / "mydata.csv"
    csv.write_text("x,y\n" + "\n".join(f"{a},{b}" for a, b in data))
    assert main(["train", "toy2d", "--csv", str(csv), "--iterations", "50", "--out", str(folder),
                 "--allow-failed-gate"]) == 0  # 50 iterations do not pass the quality gate
    return str(folder / "toy2d" / "mydata.safetensors")


@pytest.mark.parametrize("page", PAGES)
def test_a_model_trained_on_a_csv_runs_on_every_page(trained_csv_model, page):
    at = run_page(PAGES[0])
    at.sidebar.text_input(key="extra_model_path").input(trained_csv_model).run()
    assert_clean(at)
    assert at.session_state["model"] == trained_csv_model
    if page != PAGES[0]:
        at.switch_page(page).run()
        assert_clean(at)
    assert at.session_state["model"] == trained_csv_model and len(at.get("plotly_chart")) >= 3


def test_extra_model_paths_from_the_environment():
    assert catalog.server_models(f"a.safetensors{os.pathsep}{os.pathsep}b.safetensors") == [
        "a.safetensors", "b.safetensors"]
    assert catalog.available_models(("missing.safetensors",)) == catalog.available_models()


def test_log_p_color_range_keeps_the_top_of_the_density():
    z = np.array([[-2e5, -3.0], [0.5, np.nan], [-np.inf, -10.0]])
    assert charts.log_p_color_range(z) == {"zmin": 0.5 - 25.0, "zmax": 0.5}
    assert charts.log_p_color_range(np.array([-1.0, -2.0])) == {"zmin": -2.0, "zmax": -1.0}
    assert charts.log_p_color_range(np.array([np.nan])) == {}


def test_every_paper_figure_draws_from_the_backend():
    """Each figure of the Paper figures page draws its chart or images, with what to look at and a live link."""
    from explorer.views.figures import figure_jobs

    at = run_page("app_pages/figures.py")
    assert_clean(at)
    choices = list(figure_jobs(profiles.profile_name()))
    assert len(at.radio(key="fig_choice").options) == len(choices)
    for choice in choices:
        at.radio(key="fig_choice").set_value(choice).run()
        assert_clean(at)
        assert at.get("plotly_chart") or at.get("image"), choice
        assert any("Explore it live" in str(p.proto) for p in at.get("page_link")), choice
def test_refine_the_path_shows_the_refined_length_beside_the_graphs():
    """"Refine the path" on the Geodesics page (KDE density: an exact gradient, seconds): the refined length next to
    the graph path's under the same measure, never longer, and the refined path drawn."""
    at = run_page(PAGES[1])
    at.selectbox(key="geo_density").set_value("kde").run()
    at.select_slider(key="w_geo_lam").set_value(0.0562).run()
    assert_clean(at)
    at.button(key="geo_refine").click().run()
    assert_clean(at)
    metrics = {m.label: float(m.value) for m in at.metric}
    assert metrics["Refined length"] <= metrics["Graph path, same measure"]
    assert metrics["Refined length"] < metrics["Geodesic length (graph)"]
    assert len(trace(at, "refined geodesic")["x"]) >= 3

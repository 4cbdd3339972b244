"""The app's side of the hostile trial (issue 11, items 10, 13–17): links are validated against each widget's range,
user text is shown as plain text, a link never opens a file nobody added, uploads are capped before they arrive,
and δ means the same on every page."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from explorer.models import load_model
from explorer.views import geodesics as geov
from explorer.views import local_geometry as lgv
from explorer.views.sizes import delta_radius
from webui import catalog, query

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("app_test_profile")


def run_app(query_params: dict, page: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update(query_params)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


# ---------------------------------------------------------------------------- 13: ranges
def test_link_values_outside_the_widget_ranges_are_dropped_and_named():
    state, problems = query.decode_query({"res": "100000", "steps": "0", "lams": "0,-1,nan", "k": "-3",
                                          "seeds": "1,2,3,4", "cell": "5", "extent": "1e9", "ends": "1,-2",
                                          "map": "bogus", "src": "-1", "mthr": "2", "sel": "1,x"})
    assert state == {}
    assert sorted(p.split("=")[0] for p in problems) == sorted(
        ["res", "steps", "lams", "k", "seeds", "cell", "extent", "ends", "map", "src", "mthr", "sel"])
    ok, problems = query.decode_query({"res": "64", "lams": "0.1,5", "ends": ["3,4", "5,6"], "lam": "0.3"})
    assert ok == {"lg_res": 64, "geo_overlay": [0.1, 5.0], "geo_ends": [5, 6], "geo_lam": 0.316} and not problems


def test_an_unknown_model_in_a_link_says_so_and_opens_the_default():
    at = run_app({"model": "nope/nothing"})
    assert not at.exception
    assert at.session_state["model"] == "toy2d/ring"
    assert any("nope/nothing" in w.value for w in at.sidebar.warning)


# ---------------------------------------------------------------------------- 14: plain text
def test_link_text_is_shown_as_plain_text_not_markdown():
    payload = "![x](http://evil.example/a.png) [click](http://evil.example) :red[fake] **bold**"
    at = run_app({"lam": payload})
    assert not at.exception
    shown = [w.value for w in at.sidebar.warning]
    assert shown and all("](" not in w and "![" not in w and ":red[" not in w and "**" not in w for w in shown)
    assert any(r"\!\[x\]\(http\://evil\.example/a\.png\)" in w for w in shown), shown
    assert query.plain("a_b*c") == r"a\_b\*c"


# ---------------------------------------------------------------------------- 15: links and paths
def test_a_link_never_opens_a_path_nobody_added(tmp_path, monkeypatch):
    monkeypatch.delenv("EXPLORER_MODELS", raising=False)
    target = ROOT / "assets" / "toy2d" / "moons.safetensors"  # a real model file, reachable by path
    assert not catalog.link_may_open(str(target))
    assert catalog.link_may_open("toy2d/moons") and catalog.link_may_open(str(target), added=[str(target)])
    at = run_app({"model": str(target)})
    assert not at.exception and at.session_state["model"] == "toy2d/ring"
    assert any("may name only" in w.value for w in at.sidebar.warning)
    monkeypatch.setenv("EXPLORER_MODELS", str(target))
    assert catalog.link_may_open(str(target)) and str(target) in catalog.server_models()


# ---------------------------------------------------------------------------- 16: uploads and tracebacks
def test_uploads_are_capped_and_tracebacks_hidden_in_the_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == 20 and config["server"]["address"] == "127.0.0.1"
    assert config["client"]["showErrorDetails"] in ("type", "none", False)
    assert "EXPLORER_DEV" in (ROOT / "scripts" / "app").read_text()


# ---------------------------------------------------------------------------- 10: isolated sources
def test_an_isolated_source_gives_a_message_not_an_exception():
    from explorer.density.cached import make_density

    m = load_model("toy2d/ring")
    X, is_bg, labels = geov.geodesic_points(m, "data", 60, 0)
    state = geov.fit_geodesics(m, make_density(m, "kde"), X, is_bg, labels, graph="epsilon", eps=0.01)
    aff = geov.affinity_view(state, 1.0, 1.0, 0)
    assert aff["message"] and "isolated" in aff["message"]
    assert aff["geodesic"][0] == 1.0 and (aff["geodesic"][1:] == 0).all()


# ---------------------------------------------------------------------------- 17: one δ
def test_delta_is_the_same_on_local_geometry_and_memorization():
    from explorer.memorization import memorization_report

    m = load_model("digits/memorized")
    r = delta_radius(m)
    assert r == pytest.approx(2 * 12.0 / 15 / 4)  # a quarter of the default 16 × 16 plane's spacing
    samples, _ = lgv.sample_descriptors(m, "sampler", 3, None, 8, r, None)
    report = memorization_report(m, n=8, seed=0, steps=3, likelihood=False, n_boot=10)
    np.testing.assert_array_equal(report.table["delta"].to_numpy(), samples["delta"])
    np.testing.assert_allclose(report.table["psi"].to_numpy(), samples["psi"], rtol=1e-6)
    assert report.params["radius"] == r

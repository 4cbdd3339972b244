"""The Guidance page under ``AppTest`` (test size profile, a private cache) and its glue, webui.guidance.

Oracles: the page's galleries are the plain sampler's samples (ρ = 0) and the guided sampler's at the chosen ρ,
computed here from the reward the page trained; its histograms and figures vs ρ are the report's numbers at that ρ."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from explorer.guidance import guided_sample
from explorer.guidance.report import reward_cached
from explorer.models import load_model
from explorer.views.guidance import guidance_defaults
from webui import commands, query
from webui import guidance as gd

ROOT = Path(__file__).resolve().parents[1]
PAGE = "app_pages/guidance.py"

pytestmark = pytest.mark.usefixtures("app_test_profile")  # test sizes, a private cache


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def run_page(model: str, query: dict | None = None, extra_models=(), timeout: float = 600):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if query:
        at.query_params.update(query)
    if extra_models:
        at.session_state["extra_models"] = list(extra_models)
    at.session_state["model"] = model
    at.switch_page(PAGE)
    at.run()
    return at


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def trace(at, name: str) -> dict:
    for spec in specs(at):
        for tr in spec["data"]:
            if tr.get("name") == name:
                return tr
    raise AssertionError(f"no trace named {name!r}; have {[t.get('name') for s in specs(at) for t in s['data']]}")


def values(v) -> np.ndarray:
    """A chart spec's array: a list, or Plotly's base64 typed array {"dtype", "bdata"}."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).astype(float)
    return np.asarray(v, float)


def points(tr: dict) -> np.ndarray:
    return np.stack([values(tr["x"]), values(tr["y"])], 1)


def rho_slider(at):
    return next(s for s in at.select_slider if s.label.startswith("Guidance strength"))


def test_the_page_on_the_ring_follows_the_rho_slider():
    at = run_page("toy2d/ring")
    assert_clean(at)
    ring = load_model("toy2d/ring")
    d = guidance_defaults(ring, "test")
    assert rho_slider(at).value == gd.default_rho(d["rhos"]) == 1.0
    plain = ring.sample(d["n"], 0, d["steps"])
    np.testing.assert_allclose(points(trace(at, "samples at ρ = 0 (plain sampler)")), plain, rtol=0, atol=1e-6)
    reward, _ = reward_cached(ring, d["reward_n"], d["reward_seed"], d["steps"], fit=d["reward_fit"],
                              states=d["reward_states"])
    guided = guided_sample(ring, d["n"], 0, d["steps"], reward, 1.0)
    assert not np.allclose(guided, plain, atol=1e-3)  # the oracle itself tells the two apart
    np.testing.assert_allclose(points(trace(at, "samples at ρ = 1")), guided, rtol=0, atol=1e-5)
    # the held-out R² shown is the reward's own
    r2 = next(m for m in at.metric if m.label == "Held-out R² of the reward")
    assert r2.value == f"{reward.record['heldout_r2']:.3f}"
    # the histograms and the chosen-ρ markers are the report's numbers at the chosen ρ
    hist_at = {tr["name"]: values(tr["x"]) for s in specs(at) for tr in s["data"] if tr.get("type") == "histogram"
               and "measured ψ" in json.dumps(s["layout"].get("xaxis", {}), ensure_ascii=False)}
    marker = trace(at, "psi_measured at chosen ρ")
    assert values(marker["x"]).tolist() == [1.0]
    means = {r: np.mean(hist_at[f"ρ = {r:g}" + (" (plain sampler)" if r == 0 else "")]) for r in (0.0, 1.0)}
    assert means[1.0] == pytest.approx(values(marker["y"])[0], rel=1e-9)
    assert means[0.0] != pytest.approx(means[1.0])
    hint = next(e for e in at.expander if e.label == "The same from the command line")
    assert "--rho=0,1" in hint.code[0].value
    # move the slider to ρ = 0: the chosen-ρ gallery, the markers and the URL follow
    rho_slider(at).set_value(0.0).run()
    assert_clean(at)
    np.testing.assert_allclose(points(trace(at, "samples at ρ = 0")), plain, rtol=0, atol=1e-6)
    assert values(trace(at, "psi_measured at chosen ρ")["x"]).tolist() == [0.0]
    assert values(trace(at, "psi_measured at chosen ρ")["y"])[0] == pytest.approx(means[0.0], rel=1e-9)
    assert at.query_params["rho"] in ("0", ["0"])


def test_a_link_opens_the_page_at_its_rho_and_a_new_reward_trains_on_demand():
    at = run_page("toy2d/ring", query={"rho": "0.2"})  # snapped to the grid's nearest value
    assert_clean(at)
    assert rho_slider(at).value == 0.0
    labels = at.selectbox(key="w_guide_reward").options
    assert labels[0].startswith("the page's default reward") and labels[-1] == "train a new reward…"
    at.selectbox(key="w_guide_reward").set_value("new").run()
    next(x for x in at.number_input if x.label == "Training latents N").set_value(40)  # not the default 32
    submit = next(b for b in at.button if b.label == "Train this reward")
    submit.click().run()
    assert_clean(at)
    chosen = at.session_state["guide_reward"]
    assert chosen not in ("default", "new")
    box = at.selectbox(key="w_guide_reward")
    assert "N = 40 latents" in box.options[box.index] and box.options[box.index].startswith("on disk")
    shown = next(m for m in at.metric if m.label == "Held-out R² of the reward")
    rows = gd.cached_rewards(load_model("toy2d/ring"), 3)
    assert any(r["key"] == chosen and f"{r['record']['heldout_r2']:.3f}" == shown.value for r in rows)


def test_the_glue():
    assert gd.default_rho([-1, -0.5, 0, 0.5, 1, 1.5, 2]) == 1.0
    assert gd.default_rho([-0.25, 0, 0.25, 0.5, 0.75]) == 0.5
    assert gd.default_rho([-2, -1]) == -2 and gd.snap_rho("x", [0, 1]) == 1.0
    assert gd.snap_rho(0.7, [0, 0.5, 1]) == 0.5 and gd.reference_rho([-1, 0.5]) == 0.5
    with pytest.raises(ValueError, match="grid"):
        gd.rho_index({"rho": np.array([0.0, 1.0])}, 0.5)
    record = {"figures": [{"rho": r, "psi_measured": {"value": v, "ci_low": v - 1, "ci_high": v + 2}}
                          for r, v in ((0.0, 1.0), (1.0, 3.0))]}
    s = gd.figure_series(record, "psi_measured")
    assert s["value"].tolist() == [1.0, 3.0] and gd.error_bars(s)["array"] == [2.0, 2.0]
    assert gd.error_bars(s)["arrayminus"] == [1.0, 1.0] and gd.figure_series(record, "log_p") is None
    assert [g["title"] for g in gd.figure_groups(record)] == ["ψ: measured and predicted"]
    grid = gd.rgb_grid(np.stack([np.full((3, 2, 2), -1.0), np.full((3, 2, 2), 1.0)]), columns=2, scale=2, gap=1)
    assert grid.shape == (4, 9, 3) and grid[0, 0].tolist() == [0, 0, 0] and grid[0, 5].tolist() == [255] * 3
    assert grid[0, 4].tolist() == [255] * 3  # the gap
    assert query.decode_query({"rho": "1.5"})[0] == {"guide_rho": 1.5}
    assert query.decode_query({"rho": "nan"})[1]


def test_the_cli_hint_is_the_pages_view():
    from explorer.cli import build_parser

    hint = commands.guidance("toy2d/ring", [-1.0, 0.0, 1.0], 16, 0, 3, 32, 1, "noised", 100, 50)
    import shlex

    args = build_parser("guidance").parse_args(shlex.split(hint)[3:])
    assert (args.rho, args.n, args.steps, args.reward_n, args.reward_states, args.reward_iterations,
            args.n_boot) == ("-1,0,1", 16, 3, 32, "noised", 100, 50)


def heatmap_z(at, name: str) -> np.ndarray:
    tr = trace(at, name)
    z = tr["z"]
    if isinstance(z, dict):  # Plotly's typed array: {"dtype", "bdata", "shape": "rows, cols"}
        return values(z).reshape([int(v) for v in str(z["shape"]).split(",")])
    return np.array([[np.nan if v is None else v for v in row] for row in z], float)


@pytest.mark.slow  # 40 s on the shared 2-core machine: the reward's ψ of 32 digit latents, inversion, figures
def test_the_page_on_digits_shows_image_galleries_and_the_image_figures():
    from webui import galleries

    at = run_page("digits/full")
    assert_clean(at)
    digits = load_model("digits/full")
    d = guidance_defaults(digits, "test")
    assert rho_slider(at).value == 1.0
    reward, _ = reward_cached(digits, d["reward_n"], d["reward_seed"], d["steps"], fit=d["reward_fit"],
                              states=d["reward_states"])
    guided = guided_sample(digits, d["n"], 0, d["steps"], reward, 1.0).reshape(d["n"], -1)
    want = galleries.mosaic(galleries.grey_images(guided, digits.image_shape), 8)["z"]
    np.testing.assert_allclose(heatmap_z(at, "samples at ρ = 1"), want, atol=1e-6)
    plain = digits.sample(d["n"], 0, d["steps"]).reshape(d["n"], -1)
    assert not np.allclose(plain, guided, atol=1e-3)
    np.testing.assert_allclose(heatmap_z(at, "samples at ρ = 0 (plain sampler)"),
                               galleries.mosaic(galleries.grey_images(plain, digits.image_shape), 8)["z"], atol=1e-6)
    titles = json.dumps([s["layout"].get("title") for s in specs(at)], ensure_ascii=False)
    assert "fraction memorized" in titles and "digit class entropy" in titles and "classifier confidence" in titles
    rho_slider(at).set_value(0.0).run()
    np.testing.assert_allclose(heatmap_z(at, "samples at ρ = 0"), heatmap_z(at, "samples at ρ = 0 (plain sampler)"))


@pytest.mark.slow  # minutes: the exact inversion differentiates the UNet by forward-mode AD
def test_the_page_on_a_tiny_diffusers_pipeline():
    from tests.tiny_pipelines import tiny_folder

    path = str(tiny_folder("ddpm"))
    at = run_page(path, extra_models=[path])
    assert_clean(at)
    model = load_model(path)
    d = guidance_defaults(model, "test")
    reward, _ = reward_cached(model, d["reward_n"], d["reward_seed"], d["steps"], fit=d["reward_fit"],
                              states=d["reward_states"])
    from webui import galleries

    for rho, name in ((0.0, "samples at ρ = 0 (plain sampler)"), (1.0, "samples at ρ = 1")):
        x = guided_sample(model, d["n"], 0, d["steps"], reward, rho).reshape(d["n"], -1)
        want = galleries.mosaic(galleries.grey_images(x, model.image_shape), 8)["z"]
        np.testing.assert_allclose(heatmap_z(at, name), want, atol=1e-5)
    assert next(m for m in at.metric if m.label == "Held-out R² of the reward").value == (
        f"{reward.record['heldout_r2']:.3f}")


def test_the_shipped_view_opens_without_computing(tmp_path, monkeypatch):
    """The Guidance default view of toy2d/ring written into a "shipped" folder (what precompute calls); a fresh server
    with an empty user cache then opens the page from it and computes nothing."""
    from explorer import cache
    from explorer.jobs import default_registry
    from explorer.views.guidance import guidance_view

    shipped = tmp_path / "assets-cache"
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(shipped))
    _, rec = guidance_view(load_model("toy2d/ring"), "test")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "user"))
    monkeypatch.setattr(cache, "ASSETS_CACHE", shipped)
    default_registry().clear()
    at = run_page("toy2d/ring")
    assert_clean(at)
    assert rho_slider(at).value == 1.0
    assert cache.stats()["entries"] == 0, "a first visit of the default view computes nothing"


@pytest.mark.slow  # a minute: every default view of the ring at test sizes
def test_precompute_includes_the_rings_guidance_view(tmp_path, monkeypatch):
    from explorer.views.precompute import precompute_default_views

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    records = precompute_default_views(load_model("toy2d/ring"), preset="test", embedding=False, log=lambda *_: None)
    assert records[-1]["what"] == "guidance report" and records[-1]["kind"] == "guidance"


@pytest.mark.slow  # a minute or more: the reward's ψ of the tiny DiT's latents, inversion, figures
def test_the_page_on_a_class_conditional_pipeline_samples_the_chosen_class():
    """The class picker and guidance scale reach the reward and every sample: the report the page computed is the
    one of that class at that scale (its cache entry exists; no other was needed), its ρ = 0 samples are the plain
    sampler's of that class, not another's, and the CLI hint carries both flags."""
    import shlex

    from explorer.cli import build_parser
    from explorer.guidance.report import guidance_is_cached, guidance_report
    from tests.tiny_pipelines import tiny_folder

    path = str(tiny_folder("dit"))
    at = run_page(path, extra_models=[path])
    assert_clean(at)
    at.selectbox(key="w_cond_class").set_value(3)
    at.number_input(key="w_cond_scale").set_value(2.0)
    at.run()
    assert_clean(at)
    model = load_model(path)
    d = guidance_defaults(model, "test")
    cond = {"class_label": 3, "guidance_scale": 2.0}
    assert guidance_is_cached(model, **d, **cond), "the page's report is the chosen class's"
    arrays, record = guidance_report(model, **d, **cond)
    assert record["hit"] and record["reward"]["condition"] == cond
    plain = model.sample(d["n"], 0, d["steps"], **cond)
    i0 = list(np.asarray(arrays["rho"], float)).index(0.0)
    np.testing.assert_allclose(arrays["samples"][i0], plain, atol=1e-5)
    assert not np.allclose(plain, model.sample(d["n"], 0, d["steps"], class_label=4, guidance_scale=2.0), atol=1e-4)
    assert next(m for m in at.metric if m.label == "Held-out R² of the reward").value == (
        f"{record['reward']['heldout_r2']:.3f}")
    hint = next(c.value for c in at.code if "python -m explorer guidance" in c.value)
    args = build_parser("guidance").parse_args(shlex.split(hint)[3:])
    assert (args.class_label, args.guidance_scale) == ("3", 2.0)

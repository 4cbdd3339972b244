"""The Memorization page under ``AppTest`` (test size profile) and its glue, explorer.app_memorization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explorer import cache
from explorer.images import to_grey, upscale
from explorer.memorization import FEATURES, THRESHOLD, memorization_report, separation_table
from explorer.models import load_model
from explorer.views import memorization as memv
from webui import memorization as mem
from webui import profiles, query

ROOT = Path(__file__).resolve().parents[1]
PAGE = "app_pages/memorization.py"


pytestmark = pytest.mark.usefixtures("app_test_profile")  # test sizes, a private cache


def run_page(model: str, query: dict | None = None, timeout: float = 240):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if query:
        at.query_params.update(query)
    at.session_state["model"] = model
    at.switch_page(PAGE)  # url_path "memorization" = the file's stem, so this works before the first run
    at.run()
    return at


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def gallery(at) -> pd.DataFrame:
    """The gallery's table (the first dataframe with a nearest-neighbour column)."""
    for d in at.dataframe:
        if "nn1_index" in d.value:
            return d.value
    raise AssertionError("no gallery table on the page")


def auroc_tables(at) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe if "AUROC [95% CI]" in d.value]


def page_report(at):
    """The report the page shows, read back from the disk cache with the page's own parameters."""
    ss = at.session_state
    return memv.report_cached(load_model(ss["model"]), ss["mem_n"], ss["mem_seed"], ss["mem_steps"],
                            ss["mem_threshold"])[0]


# ---------------------------------------------------------------------------- the page
@pytest.mark.parametrize("model", ["digits/memorized", "toy2d/ring"])
def test_page_renders_tables_and_filters(model):
    at = run_page(model)
    assert_clean(at)
    sizes = {**profiles.sizes_for(load_model(model)), **profiles.memorization_page()}
    assert at.title[0].value == "Memorization" and at.session_state["model"] == model
    rep = page_report(at)
    table = rep.table
    assert len(table) == sizes["mem_n"] == at.session_state["mem_n"]
    shown = gallery(at)
    assert len(shown) == min(sizes["page_rows"], sizes["mem_n"])
    assert shown["latent_seed"].tolist() == table.sort_values("ratio", kind="stable")["latent_seed"].tolist()[
        :len(shown)], "default order: most memorized (smallest ratio) first"
    aurocs = auroc_tables(at)
    assert aurocs and len(aurocs[0]) == len(FEATURES)
    if model.startswith("digits"):
        assert len(at.get("image")) >= 1, "image models draw the samples as images"
        assert len(aurocs) == 3, "own table and the two side by side (default comparison: digits/full)"
        assert at.session_state["mem_compare"] == "digits/full"
        assert any(m.label.startswith("digits/full") for m in at.metric)
    else:
        assert not at.get("image") and any("meant for image models" in i.value for i in at.info)
        assert at.session_state["mem_compare"] == "none"

    counts = {"all": len(table), "memorized": int(table["memorized"].sum()), "novel": int((~table["memorized"]).sum())}
    for show in ("memorized", "novel", "all"):
        at.radio(key="w_mem_show").set_value(show).run()
        assert_clean(at)
        g = gallery(at)
        assert len(g) == min(counts[show], sizes["page_rows"]), show
        if show != "all":
            assert (g["memorized"] == (show == "memorized")).all()
        if counts[show] == 0:
            assert any(f"No {show} samples" in i.value for i in at.info)
    assert at.query_params["mshow"] == "all"

    at.selectbox(key="w_mem_sort").set_value("psi").run()
    at.toggle(key="w_mem_descending").set_value(True).run()
    assert_clean(at)
    expected = table.iloc[np.argsort(-table["psi"].to_numpy(), kind="stable")]["latent_seed"].tolist()
    assert gallery(at)["latent_seed"].tolist() == expected[:sizes["page_rows"]]
    assert at.query_params["msort"] == "psi" and at.query_params["mdesc"] == "1"

    at.button(key="mem_more").click().run()
    assert_clean(at)
    assert len(gallery(at)) == min(2 * sizes["page_rows"], sizes["mem_n"])

    offered = at.session_state["_downloads"]
    for key in ("dl_mem_table", "dl_mem_auroc"):
        params = offered[key]["params"]
        assert params["model"] == model and params["n"] == sizes["mem_n"]
        assert params["threshold"] == pytest.approx(1 / 3)
        assert params["weights_hash"] == load_model(model).weights_hash


def test_clicked_sample_opens_its_plane_in_local_geometry():
    at = run_page("toy2d/ring")
    table = page_report(at).table
    seed = int(table["latent_seed"].iloc[5])
    at.session_state["mem_sel"] = seed  # what a click on the scatter sets
    at.run()
    assert_clean(at)
    assert any(f"seed {seed}" in m.value for m in at.markdown)
    assert at.query_params["msel"] == str(seed)
    at.button(key="mem_open_lg").click().run()
    assert_clean(at)
    assert at.title[0].value == "Local geometry"
    assert at.session_state["lg_seeds"] == mem.local_geometry_seeds(table, seed)
    assert at.query_params["seeds"] == ",".join(map(str, mem.local_geometry_seeds(table, seed)))


def test_threshold_relabels_and_link_parameters():
    at = run_page("toy2d/ring", query={"msort": "d_nearest", "mshow": "novel", "mthr": "0.9", "mx": "delta"})
    assert_clean(at)
    assert at.selectbox(key="w_mem_sort").value == "d_nearest" and at.radio(key="w_mem_show").value == "novel"
    assert at.selectbox(key="w_mem_scatter").value == "delta"
    table = page_report(at).table
    assert (table["memorized"] == (table["ratio"] < 0.9)).all()
    g = gallery(at)
    assert not g["memorized"].any() and (g["ratio"] >= 0.9).all()
    bad = run_page("toy2d/ring", query={"msort": "nope", "mthr": "2"})
    assert not bad.exception
    assert bad.selectbox(key="w_mem_sort").value == "ratio"
    assert sorted(w.value for w in bad.warning) == sorted(f"Ignored a link parameter: {p}"
                                                          for p in ("msort='nope'", "mthr='2'"))


def test_slow_report_waits_for_a_confirm(monkeypatch):
    monkeypatch.setenv("EXPLORER_CONFIRM_SECONDS", "0.5")  # every uncached report now "takes too long"
    at = run_page("toy2d/ring", query={"mseed": "1000"})
    assert_clean(at)
    assert not auroc_tables(at) and any("will take about" in i.value for i in at.info)
    assert not memv.report_is_cached(load_model("toy2d/ring"), 24, 1000, 3)
    confirm = [b for b in at.button if str(b.key).startswith("confirm-memorization-")]
    assert len(confirm) == 1 and confirm[0].label.startswith("Compute the memorization report of 24")
    confirm[0].click().run()
    assert_clean(at)
    assert auroc_tables(at) and gallery(at)["latent_seed"].min() >= 1000


# ---------------------------------------------------------------------------- glue: gallery
def toy_table() -> pd.DataFrame:
    return pd.DataFrame({"latent_seed": np.arange(10, 18),
                         "ratio": [0.5, 0.1, 0.9, 0.1, 0.2, 0.7, 0.3, 0.05],
                         "psi": [1.0, np.nan, 3.0, -1.0, 3.0, np.nan, 0.0, 2.0],
                         "memorized": [False, True, False, True, True, False, True, True]})


def reference_order(table, sort_by, descending, show):
    """Independent: a Python sort of (NaN last, value, row) over the kept rows."""
    rows = [i for i in range(len(table)) if show == "all" or bool(table["memorized"][i]) == (show == "memorized")]

    def key(i):
        v = float(table[sort_by][i])
        return (np.isnan(v), 0.0 if np.isnan(v) else (-v if descending else v), i)

    return sorted(rows, key=key)


@pytest.mark.parametrize("sort_by", ["ratio", "psi"])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("show", ["all", "memorized", "novel"])
def test_gallery_order_sorts_and_filters(sort_by, descending, show):
    t = toy_table()
    assert mem.gallery_order(t, sort_by, descending, show).tolist() == reference_order(t, sort_by, descending, show)


def test_gallery_order_examples_and_errors():
    t = toy_table()
    assert mem.gallery_order(t).tolist() == [7, 1, 3, 4, 6, 0, 5, 2]  # ratio ascending, ties in table order
    assert mem.gallery_order(t, "psi", True, "memorized").tolist() == [4, 7, 6, 3, 1]  # NaN (row 1) last
    assert mem.page_slice(mem.gallery_order(t), 3).tolist() == [7, 1, 3]
    with pytest.raises(ValueError, match="cannot sort by 'zzz'"):
        mem.gallery_order(t, "zzz")
    with pytest.raises(ValueError, match="show must be"):
        mem.gallery_order(t, show="copies")


def test_neighbours_equal_brute_force():
    model = load_model("digits/memorized")
    train = model.training_data()
    rng = np.random.default_rng(0)
    samples = np.clip(train[rng.integers(0, len(train), 7)] + rng.normal(0, 0.3, (7, 64)), -1, 1)
    samples[2] = train[11]  # a copy
    d, i = mem.neighbours(train, samples, 3)
    brute = np.sqrt(((samples[:, None, :].astype(np.float64) - train[None].astype(np.float64)) ** 2).sum(-1))
    ref = np.argsort(brute, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(i, ref)
    np.testing.assert_allclose(d, np.take_along_axis(brute, ref, 1), rtol=1e-10)
    assert i[2, 0] == 11 and d[2, 0] == 0.0
    assert mem.neighbours(train, samples[:0], 3)[1].shape == (0, 3)


def test_images_are_upscaled_without_smoothing():
    from explorer.models.digits import to_pixels

    x = np.random.default_rng(1).uniform(-1.2, 1.2, (3, 64)).astype(np.float32)
    np.testing.assert_allclose(to_grey(x, (8, 8)), to_pixels(x))
    strip = mem.image_strip(x, (8, 8), scale=4, gap=2)
    assert strip.dtype == np.uint8 and strip.shape == (32, 3 * 32 + 6 + 2, 3)
    first = strip[:, :32, 0]
    for r in range(8):
        for c in range(8):
            block = first[4 * r:4 * r + 4, 4 * c:4 * c + 4]
            assert (block == round(float(to_pixels(x[0])[r, c]) * 255)).all()
    np.testing.assert_array_equal(strip[:, 38:70, 0], upscale(to_pixels(x[1]), 4))  # after the wide gap
    with pytest.raises(ValueError, match="image_shape 8×8 needs 64"):
        to_grey(np.zeros((1, 10)), (8, 8))


def test_caption_and_gallery_table():
    t = toy_table()
    row = t.iloc[1]
    text = mem.describe_sample(row, [0.5, 1.25], [4, 9], labels=np.arange(10) % 3)
    assert text == "seed 11 · ratio 0.100 (memorized) · nearest: #4 (d 0.5, label 1), #9 (d 1.25, label 0)"
    g = mem.gallery_table(t, np.array([3, 0]), np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([[5, 6], [7, 8]]))
    assert g["latent_seed"].tolist() == [13, 10] and g["nn2_index"].tolist() == [6, 8]
    assert g["nn1_distance"].tolist() == [0.1, 0.3]


# ---------------------------------------------------------------------------- glue: Local geometry seeds, clicks
def test_local_geometry_seeds():
    t = toy_table()  # memorized: F T F T T F T T (seeds 10..17)
    assert mem.local_geometry_seeds(t, 11) == [11, 12, 13]  # next novel, next memorized
    assert mem.local_geometry_seeds(t, 15) == [15, 16, 10]  # next memorized, next novel (wrapping)
    assert mem.local_geometry_seeds(t, 17) == [17, 10, 11]  # wraps around
    all_novel = t.assign(memorized=False)
    assert mem.local_geometry_seeds(all_novel, 12) == [12, 13, 14]  # no memorized one: next novel, then seed + 1…
    assert mem.local_geometry_seeds(t.iloc[:1], 10) == [10, 11, 12]
    assert mem.local_geometry_seeds(t, 99) == [99, 100, 101]
    for s in t["latent_seed"]:
        seeds = mem.local_geometry_seeds(t, s)
        assert len(set(seeds)) == 3 and seeds[0] == s
        is_mem = dict(zip(t["latent_seed"], t["memorized"], strict=True))
        assert is_mem[seeds[1]] != is_mem[s] and is_mem[seeds[2]] == is_mem[s]


def test_describe_anchors():
    t = toy_table()
    assert mem.describe_anchors(t, mem.local_geometry_seeds(t, 11)) == (
        "The latent plane through seeds 11 (this sample, memorized), 12 (novel), 13 (memorized).")
    assert mem.describe_anchors(t, [17, 18, 19]).endswith("18 (not among these samples), 19 (not among these samples).")


def test_selected_seed_from_clicks():
    t = toy_table()
    assert mem.selected_seed([99, [12], 13], t) == 12
    assert mem.selected_seed(["x", None, []], t) is None
    assert mem.row_of_seed(t, 14) == 4 and mem.row_of_seed(t, 3) is None


# ---------------------------------------------------------------------------- glue: cached report
def test_report_cached_round_trip_matches_the_library(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    ring = load_model("toy2d/ring")
    assert not memv.report_is_cached(ring, 24, 3, 4)
    seen = []
    rep, rec = memv.report_cached(ring, 24, 3, 4, progress=lambda f, m: seen.append(f), n_boot=50)
    assert not rec["hit"] and seen and seen[-1] == 1.0
    assert memv.report_is_cached(ring, 24, 3, 4)
    again, rec2 = memv.report_cached(ring, 24, 3, 4, progress=lambda f, m: seen.append(("again", f)), n_boot=50)
    assert rec2["hit"] and not any(isinstance(s, tuple) for s in seen), "a hit computes nothing"
    pd.testing.assert_frame_equal(rep.table, again.table)
    pd.testing.assert_frame_equal(rep.auroc, again.auroc)
    np.testing.assert_array_equal(rep.samples, again.samples)
    assert rep.params == again.params and rep.params["steps"] == 4 and rep.params["threshold"] == THRESHOLD

    direct = memorization_report(ring, n=24, seed=3, steps=4, n_boot=50)  # independent: the library itself
    pd.testing.assert_frame_equal(again.table, direct.table)
    pd.testing.assert_frame_equal(again.auroc, direct.auroc)
    np.testing.assert_allclose(again.samples, direct.samples, rtol=0, atol=0)

    # a threshold change re-labels the cached samples: no new samples, a new AUROC entry
    moved, rec3 = memv.report_cached(ring, 24, 3, 4, threshold=0.95, n_boot=50)
    assert not rec3["hit"] and rec3["key"] == rec["key"]
    assert (moved.table["memorized"] == (direct.table["ratio"] < 0.95)).all() and moved.table["memorized"].any()
    ref = separation_table({f: direct.table[f].to_numpy() for f in FEATURES}, moved.table["memorized"].to_numpy(),
                           n_boot=50, seed=3)
    pd.testing.assert_frame_equal(moved.auroc, ref)
    assert moved.params["threshold"] == 0.95
    assert memv.report_cached(ring, 24, 3, 4, threshold=0.95, n_boot=50)[1]["hit"]
    kinds = sorted(p.name.split("-")[0] for p in cache.entries())
    assert kinds == ["memorization", "memorization_auroc", "memorization_auroc"]
    assert memv.report_cached(ring, 24, 3, None, n_boot=50)[1]["key"] != rec["key"], "steps resolve to the default"
    with pytest.raises(ValueError, match="threshold"):
        memv.report_cached(ring, 24, 3, 4, threshold=0.0)


def test_sizes_cost_and_defaults(monkeypatch):
    from explorer.views.sizes import sizes_for

    ring, digits = load_model("toy2d/ring"), load_model("digits/full")
    assert sizes_for(digits, "default")["mem_n"] == 512 and profiles.sizes_for(digits)["mem_n"] == 24
    with pytest.raises(ValueError, match="preset"):
        sizes_for(ring, "huge")
    assert sizes_for(ring, "default")["mem_steps"] is None and sizes_for(ring, "test")["mem_steps"] == 3
    assert memv.report_cost(digits, 512, None) > 60 > memv.report_cost(ring, 24, 3)  # 512 digits ask for a confirm
    assert memv.report_cost(digits, 512, 20) > memv.report_cost(ring, 512, 20)


# ---------------------------------------------------------------------------- glue: comparison, tables, URL
def fake_report(memorized, auroc):
    from explorer.memorization import MemorizationReport

    table = pd.DataFrame({"memorized": memorized, "log_p": np.zeros(len(memorized))})
    return MemorizationReport(np.zeros((len(memorized), 2)), table, auroc, {})


def test_comparison_and_auroc_tables():
    assert mem.default_compare("digits/memorized", ["toy2d/ring", "digits/full"]) == "digits/full"
    assert mem.default_compare("digits/full", ["digits/full"]) is None
    assert mem.default_compare("toy2d/ring", ["digits/full", "toy2d/ring"]) is None
    assert mem.compare_options("toy2d/ring", ["toy2d/ring", "digits/full"]) == [None, "digits/full"]
    x = np.r_[np.linspace(0, 1, 30), np.linspace(0.5, 1.5, 40)]
    memorized = np.r_[np.ones(30, bool), np.zeros(40, bool)]
    good = separation_table({"psi": -x, "nu": np.r_[np.full(11, np.nan), x[11:]]}, memorized, n_boot=100)
    a, b = fake_report(memorized, good), fake_report(np.zeros(70, bool), good)
    both = mem.comparison_table({"A": a, "B": b})
    assert both["model"].tolist() == ["A", "A", "B", "B"]
    assert both["memorized_fraction"].tolist() == pytest.approx([30 / 70] * 2 + [0.0] * 2)
    shown = mem.auroc_display(good)
    assert shown["AUROC [95% CI]"][0] == f"{good['auroc'][0]:.3f} [{good['ci_low'][0]:.3f}, {good['ci_high'][0]:.3f}]"
    assert shown["AUROC [95% CI]"][1] == "n/a" and shown["memorized"].tolist() == [30, 19]
    assert mem.na_note(good).startswith("AUROC is n/a for nu: n/a (n_memorized=19")
    assert mem.na_note(good.iloc[:1]) is None


def test_query_round_trip_and_bad_values():
    state = {"mem_n": 128, "mem_seed": 7, "mem_steps": 10, "mem_threshold": 0.25, "mem_sort": "psi",
             "mem_descending": True, "mem_show": "novel", "mem_compare": "digits/full", "mem_scatter": "delta",
             "mem_sel": 42, "lg_seeds": [1, 2, 3], "mem_shown": 48}
    q = query.encode_query(state)
    assert set(q) == {"mn", "mseed", "msteps", "mthr", "msort", "mdesc", "mshow", "mvs", "mx", "msel", "seeds"}
    back, problems = query.decode_query(q)
    assert problems == [] and back == {k: v for k, v in state.items() if k != "mem_shown"}
    back, problems = query.decode_query({"mn": "0", "mthr": "1.5", "msort": "x", "mshow": "novel", "seeds": "1",
                                         "msel": ["3", "4"]})
    assert back == {"mem_show": "novel", "mem_sel": 4, "lg_seeds": [1]}
    assert sorted(problems) == ["mn='0'", "msort='x'", "mthr='1.5'"]
    assert query.encode_query({"model": "digits/full", "mem_sort": "nu", "mem_sel": None}) == {"model": "digits/full",
                                                                                            "msort": "nu"}

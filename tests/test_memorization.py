"""Memorization score (nearest / second-nearest distinct training image), AUROC tables, the report and its CLI."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from explorer.cli import main
from explorer.descriptors import local_descriptors
from explorer.memorization import MemorizationScore, memorization_report, nearest_training, separation_table

SCORE_COLUMNS = ["nearest_index", "second_index", "d_nearest", "d_second", "ratio", "memorized"]


def brute_force_knn(x: np.ndarray, t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.empty((len(x), len(t)))
    for i in range(len(x)):
        for j in range(len(t)):
            d[i, j] = np.sqrt(np.sum((x[i] - t[j]) ** 2))
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


@pytest.mark.parametrize("batch_size", [7, 1000])
def test_nearest_training_equals_brute_force(batch_size):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 2, 3)) * 10 + 1e4  # far from the origin: the matmul expansion alone loses digits
    samples = rng.normal(size=(25, 6)) * 10 + 1e4
    samples[3] = train[17].reshape(-1)  # an exact copy: distance exactly 0
    d, i = nearest_training(samples, train, k=3, batch_size=batch_size)
    d_ref, i_ref = brute_force_knn(samples, train.reshape(60, -1), 3)
    np.testing.assert_array_equal(i, i_ref)
    np.testing.assert_allclose(d, d_ref, rtol=1e-12)
    assert d[3, 0] == 0.0 and i[3, 0] == 17
    assert d.dtype == np.float64 and d.shape == i.shape == (25, 3)
    with pytest.raises(ValueError, match="D = 6"):
        nearest_training(samples, train[:, :1], k=2)
    with pytest.raises(ValueError, match="k must be"):
        nearest_training(samples, train, k=61)


def square() -> np.ndarray:
    """Four training images at the corners of a 10 × 10 square (median NN distance 10)."""
    return np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])


def test_copy_is_memorized_and_midpoint_is_novel():
    score = MemorizationScore().fit(square())
    assert score.duplicate_tol_ == pytest.approx(10 / 3) and score.n_groups_ == 4 and score.duplicate_groups_ == []
    table = score.score(np.array([[10.0, 0.0], [5.0, 0.0], [1.0, 0.0], [4.0, 0.0]]))
    assert list(table.columns) == SCORE_COLUMNS
    assert table["ratio"][0] == 0.0 and table["memorized"][0] and table["nearest_index"][0] == 1
    assert table["ratio"][1] == pytest.approx(1.0) and not table["memorized"][1]
    assert table["ratio"][2] == pytest.approx(1 / 9) and table["memorized"][2]  # 1 / 9 < 1/3
    assert table["ratio"][3] == pytest.approx(4 / 6) and not table["memorized"][3]
    assert table["memorized"].dtype == bool


def test_near_twin_copy_is_memorized_only_thanks_to_the_duplicate_rule():
    train = np.vstack([square(), [[10.0, 0.5]]])  # image 4 is a near-twin of image 1 (distance 0.5)
    sample = np.array([[10.2, 0.0]])  # copies image 1 up to 0.2, as close to the twin as to the original
    with_rule = MemorizationScore().fit(train)
    assert with_rule.duplicate_tol_ == pytest.approx(9.5 / 3)  # NN distances 10, 0.5, 10, 9.5, 0.5: median 9.5
    assert with_rule.group_[1] == with_rule.group_[4] and len(with_rule.duplicate_groups_) == 1
    np.testing.assert_array_equal(with_rule.duplicate_groups_[0], [1, 4])
    row = with_rule.score(sample).iloc[0]
    assert row["nearest_index"] == 1 and row["second_index"] == 3
    assert row["d_second"] == pytest.approx(np.hypot(0.2, 10.0)) and row["ratio"] == pytest.approx(0.2 / 10.002, 1e-4)
    assert row["memorized"]
    without = MemorizationScore(duplicate_tol=0).fit(train).score(sample).iloc[0]
    assert without["second_index"] == 4 and without["ratio"] == pytest.approx(0.2 / np.hypot(0.2, 0.5))
    assert not without["memorized"]


def test_exact_duplicate_training_images():
    train = np.vstack([square(), square()[:1], square()[:1]])  # image 0 three times
    for tol in (None, 0.0):
        score = MemorizationScore(duplicate_tol=tol).fit(train)
        np.testing.assert_array_equal(score.duplicate_groups_[0], [0, 4, 5])
        table = score.score(np.array([[0.0, 0.0], [0.5, 0.0], [10.0, 10.0]]))
        assert np.isfinite(table["ratio"]).all() and (table["d_second"] > 0).all()
        assert table["nearest_index"][0] == 0 and table["second_index"][0] in (1, 2)
        assert table["ratio"][0] == 0.0 and table["memorized"][0]
        assert table["ratio"][1] == pytest.approx(0.5 / 9.5) and table["memorized"][1]
        assert table["ratio"][2] == 0.0
    with pytest.raises(ValueError, match="two distinct images"):
        MemorizationScore().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="not fitted"):
        MemorizationScore().score(square())


def test_score_is_generic_over_sample_shape():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(40, 8, 8)).astype(np.float32)
    samples = np.concatenate([train[:5] + 0.01, rng.normal(size=(5, 8, 8))])
    table = MemorizationScore().fit(train).score(torch.from_numpy(samples))
    np.testing.assert_array_equal(table["nearest_index"][:5], np.arange(5))
    assert table["memorized"][:5].all() and not table["memorized"][5:].any()


def two_classes(n_pos: int, n_neg: int, shift: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(shift, 1, n_pos), rng.normal(0, 1, n_neg)])
    return x, np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]


def test_separation_table_auroc_and_bootstrap():
    x, mem = two_classes(60, 200, 1.0)
    ties = np.round(x)  # many ties: they count 1/2
    table = separation_table({"x": x, "neg": -x, "ties": ties}, mem)
    assert list(table.columns) == ["feature", "auroc", "ci_low", "ci_high", "n_memorized", "n_novel", "note"]
    row = table.set_index("feature")
    assert row.loc["x", "auroc"] == pytest.approx(roc_auc_score(mem, x), abs=1e-12)
    assert row.loc["neg", "auroc"] == pytest.approx(1 - roc_auc_score(mem, x), abs=1e-12)
    assert row.loc["ties", "auroc"] == pytest.approx(roc_auc_score(mem, ties), abs=1e-12)
    assert (row["ci_low"] < row["auroc"]).all() and (row["auroc"] < row["ci_high"]).all()
    assert (row["note"] == "").all() and (row["n_memorized"] == 60).all() and (row["n_novel"] == 200).all()
    big_x, big_mem = two_classes(600, 2000, 1.0, seed=1)
    big = separation_table({"x": big_x}, big_mem).iloc[0]
    assert big["ci_high"] - big["ci_low"] < 0.5 * (row.loc["x", "ci_high"] - row.loc["x", "ci_low"])
    x512, mem512 = two_classes(256, 256, 0.5, seed=2)
    t0 = time.perf_counter()
    r = separation_table({"x": x512}, mem512, n_boot=1000).iloc[0]
    assert time.perf_counter() - t0 < 1.0
    # both classes are resampled: the width matches Hanley & McNeil's standard error (1982)
    a, n1, n2 = r["auroc"], 256, 256
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
    assert r["ci_high"] - r["ci_low"] == pytest.approx(2 * 1.96 * se, rel=0.15)
    again = separation_table({"x": x, "neg": -x, "ties": ties}, mem)
    pd.testing.assert_frame_equal(table, again)  # seeded


def test_separation_table_small_counts_and_nan():
    x, mem = two_classes(25, 100, 1.0)
    with_nan = x.copy()
    with_nan[:6] = np.nan  # 6 memorized values undefined → 19 left < 20
    with_nan[30:40] = np.nan
    table = separation_table({"x": x, "nan": with_nan, "all_nan": np.full_like(x, np.nan)}, mem).set_index("feature")
    assert np.isfinite(table.loc["x", ["auroc", "ci_low", "ci_high"]].to_numpy(float)).all()
    assert table.loc["nan", "n_memorized"] == 19 and table.loc["nan", "n_novel"] == 90
    assert np.isnan(table.loc["nan", ["auroc", "ci_low", "ci_high"]].to_numpy(float)).all()
    assert table.loc["nan", "note"] == "n/a (n_memorized=19, n_novel=90; need ≥ 20 each)"
    assert table.loc["all_nan", "n_memorized"] == 0 and table.loc["all_nan", "note"].startswith("n/a")
    relaxed = separation_table({"nan": with_nan}, mem, min_count=10).iloc[0]
    ok = ~np.isnan(with_nan)
    assert relaxed["auroc"] == pytest.approx(roc_auc_score(mem[ok], with_nan[ok]), abs=1e-12)
    with pytest.raises(ValueError, match="has 3 values"):
        separation_table({"x": [1.0, 2.0, 3.0]}, mem)


def test_memorization_report_on_ring(ring):
    seen = []
    rep = memorization_report(ring, n=48, seed=5, steps=10, batch_size=20, progress=lambda f, m: seen.append(f))
    cols = ["latent_seed", "psi", "nu", "nu_eff", "delta", "log_p", *SCORE_COLUMNS, "nearest_label"]
    assert list(rep.table.columns) == cols and len(rep.table) == 48 and rep.samples.shape == (48, 2)
    np.testing.assert_array_equal(rep.table["latent_seed"], np.arange(5, 53))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 6
    assert rep.params["P"] == 2 and rep.params["steps"] == 10 and rep.params["map"] == "sampler"
    assert rep.params["weights_hash"] == ring.weights_hash and rep.params["radius"] > 0
    assert np.isfinite(rep.table["log_p"]).mean() > 0.8
    assert list(rep.auroc["feature"]) == ["psi", "nu", "nu_eff", "delta", "log_p", "d_nearest"]

    G = ring.generator("sampler", steps=10)
    train = ring.training_data()
    for i in (0, 27, 47):
        z = ring.latent_of_seed(5 + i)[None]
        with torch.no_grad():
            x = G(z).numpy().reshape(-1)
        np.testing.assert_allclose(rep.samples[i], x, rtol=0, atol=1e-6)
        d = np.sqrt(((train.astype(np.float64) - rep.samples[i]) ** 2).sum(1))
        row = rep.table.iloc[i]
        assert row["d_nearest"] == pytest.approx(d.min(), rel=1e-12) and row["nearest_index"] == d.argmin()
        assert row["nearest_label"] == ring.training_labels()[d.argmin()]
        assert row["psi"] == pytest.approx(local_descriptors(G, z).psi[0], abs=1e-4)
    assert ((rep.table["ratio"] < 1 / 3) == rep.table["memorized"]).all()
    # log p by the change of variables log N(z) − ψ(z) equals the Newton-inverted exact likelihood
    assert rep.params["log_p_method"].startswith("change of variables")
    ref = ring.log_prob(rep.samples, steps=10, dtype=torch.float64)
    ok = np.isfinite(ref)
    assert ok.mean() > 0.8
    # (a float32 sample can invert into a neighbouring linear region of the CPWL sampler: allow a few)
    assert np.mean(np.abs(rep.table["log_p"].to_numpy()[ok] - ref[ok]) < 2e-3) >= 0.9
    sketched = memorization_report(ring, n=4, seed=5, steps=10, n_directions=1)
    assert sketched.params["log_p_method"] == "model.default_likelihood"

    no_lp = memorization_report(ring, n=8, seed=5, steps=10, likelihood=False)
    assert no_lp.table["log_p"].isna().all() and no_lp.auroc.set_index("feature").loc["log_p", "n_memorized"] == 0
    np.testing.assert_allclose(no_lp.table["psi"], rep.table["psi"][:8], atol=1e-4)  # rows do not depend on n


def test_cli_writes_table_auroc_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))  # the CLI fills the app's disk cache
    rc = main(["memorization", "--model", "toy2d/ring", "--n", "24", "--steps", "5", "--seed", "3",
               "--batch-size", "10", "--out", str(tmp_path / "run.csv")])
    assert rc == 0
    table = pd.read_csv(tmp_path / "run.csv")
    auroc = pd.read_csv(tmp_path / "run.auroc.csv")
    record = json.loads((tmp_path / "run.json").read_text())
    assert len(table) == 24 and list(table.columns)[:6] == ["latent_seed", "psi", "nu", "nu_eff", "delta", "log_p"]
    assert table["latent_seed"].tolist() == list(range(3, 27)) and "memorized" in table
    assert auroc["feature"].tolist() == ["psi", "nu", "nu_eff", "delta", "log_p", "d_nearest"]
    assert record["n"] == 24 and record["steps"] == 5 and record["counts"]["n"] == 24 and record["seconds"] > 0
    assert record["counts"]["memorized"] == int(table["memorized"].sum())
    out = capsys.readouterr().out
    assert f"memorized: {record['counts']['memorized']} / 24" in out and "d_nearest" in out
    assert record["cache_hit"] is False  # the run filled the app's cache: a repeat is a hit with the same table
    assert main(["memorization", "--model", "toy2d/ring", "--n", "24", "--steps", "5", "--seed", "3",
                 "--batch-size", "10", "--out", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again.json").read_text())["cache_hit"] is True
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again.csv"), table)

    assert main(["memorization", "--model", "toy2d/ring", "--n", "4", "--steps", "3", "--no-likelihood",
                 "--out", str(tmp_path / "bare")]) == 0
    assert (tmp_path / "bare.auroc.csv").exists() and pd.read_csv(tmp_path / "bare.csv")["log_p"].isna().all()
    assert main(["memorization", "--model", "toy2d/nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown model 'toy2d/nope'" in capsys.readouterr().err

"""On-/off-manifold labels and AUROC against brute force."""

from __future__ import annotations

import numpy as np

from explorer.analysis.onmanifold import auroc, auroc_sweep, on_manifold_labels, on_off_manifold


def test_labels_equal_brute_force_nearest_neighbour():
    rng = np.random.default_rng(0)
    data, pts = rng.normal(size=(300, 2)), rng.normal(size=(200, 2)) * 2
    on, dist = on_manifold_labels(pts, data, 0.1)
    brute = np.sqrt(((pts[:, None] - data[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(dist, brute)
    np.testing.assert_array_equal(on, brute <= 0.1)


def test_auroc_equals_pairwise_count():
    rng = np.random.default_rng(1)
    s, y = rng.normal(size=60), rng.random(60) < 0.4
    s[y] += 0.7
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert abs(auroc(s, y) - pairs) < 1e-12
    assert np.isnan(auroc(s, np.ones(60, bool)))


def test_on_off_table_and_sweep(ring):
    res = on_off_manifold(ring, "denoiser", t=170, steps=50, grid_n=12)
    assert len(res.table) == 144 and res.counts["on"] + res.counts["off"] == 144
    assert res.counts["on"] > 0 and res.params["r_on"] > 0
    sweep = auroc_sweep(ring, [100, 300], map="from_t", steps=20, grid_n=10)
    assert set(sweep["descriptor"]) == {"psi", "nu", "nu_eff", "delta"} and len(sweep) == 8

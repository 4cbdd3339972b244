"""The CLI's reported geodesic length on toy2d/ring against the eikonal continuum solution (issue 11, item 19).

Between opposite ring points (the subset's training points nearest to (2, 0) and (−2, 0)), the eikonal oracle is
second-order fast marching on a grid of the model's exact log p (explorer.geodesics.eikonal, itself tested on
closed forms in test_eikonal.py). Every log p of the ring is a Newton inversion and the refinement's gradient
takes 4 more per point, so the CLI on the ring takes minutes on 2 shared cores: the default sizes (2,000 points +
500 background, k = 12, a 449 × 449 reference grid) and the smaller case (500 points + 150 background at λ = 5,
where a 113 × 113 grid is already converged: 4.632 against 4.630 at 449 × 449) are marked slow. The default run
covers the same refinement in seconds on KDE densities: the CLI (test_geodesics_cli), the Geodesics page's job
(below) and a smooth mixture (test_interpolation.test_refined_ring_path_is_never_longer_than_its_graph_path).
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from explorer import cache
from explorer.cli import main
from explorer.commands._density import load_points_and_density
from explorer.geodesics.eikonal import eikonal_distance, grid_axes, grid_log_density


def opposite_points(n: int) -> tuple[int, int, np.ndarray]:
    args = types.SimpleNamespace(model="toy2d/ring", n=n, density="model", bandwidth=None, seed=0)
    X = load_points_and_density(args).X
    return int(np.argmin(np.linalg.norm(X - [2, 0], axis=1))), int(np.argmin(np.linalg.norm(X - [-2, 0], axis=1))), X


def ring_grid(model, grid: int, box: float = 2.8):
    """The model's exact log p on a grid × grid node grid over [−box, box]², disk-cached by the weights (the same
    entry bench/bench_geodesic_accuracy.py uses)."""
    x, y = grid_axes((-box, box, -box, box), grid)
    arrays, _ = cache.cached(
        "eikonal_grid", {"model": model.name, "box": box, "grid": grid, "method": "discrete"},
        lambda: {"log_p": grid_log_density(lambda P: model.log_prob(P, method="discrete"), x, y, batch_size=4096)},
        weights_hash=model.weights_hash, dtype="float64")
    return x, arrays["log_p"]


def cli_summary(tmp_path, n: int, lam: float, s: int, t: int, *extra: str) -> dict:
    out = tmp_path / f"ring-{n}-{lam}.npz"
    assert main(["geodesics", "--model", "toy2d/ring", "--n", str(n), "--relative", "--lam", str(lam),
                 "--source", str(s), "--target", str(t), "--out", str(out), *extra]) == 0
    return json.loads(out.with_suffix(".json").read_text())["summary"]


def check(summary: dict, eikonal: float) -> None:
    assert summary["length"] == summary["length_refined"]
    assert summary["length_refined"] <= summary["refinement"]["candidates_measured"]["graph"]
    assert abs(summary["length_refined"] / eikonal - 1) < 0.05, (summary["length_refined"], eikonal)


@pytest.mark.slow  # minutes on 2 shared cores: every log p of the ring is a Newton inversion, 5 per gradient
def test_cli_ring_length_within_5_percent_of_eikonal_small(ring, tmp_path):
    s, t, X = opposite_points(500)
    x, log_p = ring_grid(ring, 113)
    d = eikonal_distance(X[s], X[t], 5.0, 1.0, ring.log_p_ref, log_p=log_p, x=x, y=x)["distance"]
    summary = cli_summary(tmp_path, 500, 5.0, s, t, "--background", "150")
    check(summary, d)
    assert summary["length_graph"] > 1.03 * d  # the graph alone is not that close: the refinement matters


@pytest.mark.slow
@pytest.mark.parametrize("lam", [5.0, 0.05])
def test_cli_ring_length_within_5_percent_of_eikonal_default_sizes(ring, tmp_path, lam):
    s, t, X = opposite_points(2000)
    x, log_p = ring_grid(ring, 449)
    d = eikonal_distance(X[s], X[t], lam, 1.0, ring.log_p_ref, log_p=log_p, x=x, y=x)["distance"]
    check(cli_summary(tmp_path, 2000, lam, s, t), d)


def test_geodesics_page_refined_length_against_the_eikonal_distance(ring, isolated_cache):
    """The Geodesics page's "Refine the path" (explorer.views.geodesics.refined_geodesic, the refined_geodesic job) on
    a KDE of 300 ring points at relative λ = 0.05: within 1 % of the eikonal distance on the same KDE, never longer
    than the graph path under the same measure, the graph's own length beside it, and a disk-cache hit next time."""
    from explorer.density.cached import make_density
    from explorer.jobs.kinds import run_kind
    from explorer.views.geodesics import fit_geodesics, geodesic_points, refined_geodesic

    data = np.asarray(ring.training_data(), dtype=np.float64)[::20][:300]
    dens = make_density(ring, "kde", data=data, name="ring-300")
    X, is_bg, _ = geodesic_points(ring, "data", len(data), 100, data=data)
    state = fit_geodesics(ring, dens, X, is_bg, None, k=8, params={"test": "ring-300"})
    i, j = (int(np.argmin(np.linalg.norm(X[:300] - p, axis=1))) for p in ([2, 0], [-2, 0]))
    res = run_kind("refined_geodesic", ring, {"density": dens, "state": state, "i": i, "j": j, "lam": 0.05,
                                              "p0": 1.0})
    assert res["ok"] and not res["hit"] and res["gradient"] == "exact"
    x, y = grid_axes((-3.0, 3.0, -3.0, 3.0), 161)
    d = eikonal_distance(X[i], X[j], 0.05, 1.0, dens.log_p_ref, log_p=grid_log_density(dens.fn, x, y), x=x,
                         y=y)["distance"]
    assert res["length"] == pytest.approx(d, rel=0.01)
    assert res["length"] <= min(res["candidates"].values()) and res["length_graph"] == res["candidates"]["graph"]
    assert res["length_graph_edges"] > 1.03 * d  # the graph's own length, which the page shows beside it
    np.testing.assert_array_equal(res["points"][[0, -1]], X[[i, j]])
    again = refined_geodesic(state, 0.05, 1.0, i, j)
    assert again["hit"] and again["length"] == res["length"]

"""How far the reported geodesic length is from the metric's own distance (issue 11, item 19).

The CLI's geodesic between opposite points of toy2d/ring (the training points of the seeded subset nearest to
(2, 0) and (−2, 0)) against an independent continuum reference: the eikonal solution |∇T| = c by second-order
fast marching (explorer.geodesics.eikonal) on a 449 × 449 grid over [−2.8, 2.8]² with c from the model's exact
(discrete) log p at every node. The grid's log p (201,601 evaluations) is disk-cached (kind ``eikonal_grid``).
The reference's own grid error is shown by the same solve on every 2nd and 4th node.

Rows: ``before`` = the old CLI defaults (k = 10, 3 nodes per edge, no refinement: the graph length), ``after`` =
the current defaults (k = max(10, round(1.5 ln N)), 5 nodes per edge below λ = 1, the refined length), both in
the same process, so the time ratio after/before is measured under the same load. Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_geodesic_accuracy.py [--sizes 500 2000] [--lams 5 0.05]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer import cache  # noqa: E402
from explorer.commands._density import load_points_and_density  # noqa: E402
from explorer.geodesics.eikonal import eikonal_distance, grid_axes, grid_log_density, subsample  # noqa: E402
from explorer.models import load_model  # noqa: E402

MODEL = "toy2d/ring"
BOX, GRID = 2.8, 449


def ring_grid(model) -> tuple[np.ndarray, np.ndarray]:
    """(axis, log p on the GRID × GRID grid), disk-cached by the model's weights."""
    x, y = grid_axes((-BOX, BOX, -BOX, BOX), GRID)

    def compute():
        return {"log_p": grid_log_density(lambda P: model.log_prob(P, method="discrete"), x, y, batch_size=4096)}

    arrays, _ = cache.cached("eikonal_grid", {"model": model.name, "box": BOX, "grid": GRID, "method": "discrete"},
                             compute, weights_hash=model.weights_hash, dtype="float64")
    return x, arrays["log_p"]


def opposite_points(n: int, seed: int = 0) -> tuple[int, int, np.ndarray]:
    """Indices (in the CLI's point set) of the subset's training points nearest to (2, 0) and (−2, 0)."""
    args = types.SimpleNamespace(model=MODEL, n=n, density="model", bandwidth=None, seed=seed)
    X = load_points_and_density(args).X
    s, t = (int(np.argmin(np.linalg.norm(X - p, axis=1))) for p in ([2.0, 0.0], [-2.0, 0.0]))
    return s, t, X


def run_cli(n: int, lam: float, s: int, t: int, extra: list[str]) -> dict:
    from explorer.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "geo.npz"
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = main(["geodesics", "--model", MODEL, "--n", str(n), "--relative", "--lam", str(lam), "--source",
                       str(s), "--target", str(t), "--out", str(out), *extra])
        seconds = time.perf_counter() - t0
        if rc != 0:
            raise RuntimeError(f"geodesics exited with {rc}")
        summary = json.loads(out.with_suffix(".json").read_text())["summary"]
    summary["wall_seconds"] = seconds
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000])
    ap.add_argument("--lams", type=float, nargs="+", default=[5.0, 0.05])
    ap.add_argument("--skip-before", action="store_true", help="only the current defaults")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    model = load_model(MODEL)
    t0 = time.perf_counter()
    x, log_p = ring_grid(model)
    grid_seconds = time.perf_counter() - t0
    rows = []
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start; eikonal grid log p {grid_seconds:.0f} s (0 when cached)")
    print("| N | defaults | k | nodes/edge | λ | graph length | refined length | eikonal (h = 0.0125) | graph error "
          "| refined error | eikonal h = 0.05 / 0.025 | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        s, t, X = opposite_points(n)
        for lam in args.lams:
            ref = {}
            for step in (4, 2, 1):
                lp, xs, ys = subsample(log_p, x, x, step)
                ref[step] = eikonal_distance(X[s], X[t], lam, 1.0, model.log_p_ref, log_p=lp, x=xs, y=ys)["distance"]
            d = ref[1]
            for name, extra in (("before", ["--k", "10", "--n-quad", "3", "--refine", "0"]), ("after", [])):
                if name == "before" and args.skip_before:
                    continue
                r = run_cli(n, lam, s, t, extra)
                refined = r.get("length_refined")
                row = {"n": n, "defaults": name, "k": r["k"], "n_quad": r["n_quad"], "lam": lam,
                       "graph": r["length_graph"], "refined": refined, "eikonal": d, "eikonal_coarse": [ref[4], ref[2]],
                       "graph_error": r["length_graph"] / d - 1,
                       "refined_error": None if refined is None else refined / d - 1,
                       "seconds": r["wall_seconds"], "fit_seconds": r["fit_seconds"],
                       "refine_seconds": r.get("refinement", {}).get("seconds")}
                rows.append(row)
                ref_txt = "–" if refined is None else f"{refined:.4f}"
                err_txt = "–" if refined is None else f"{row['refined_error']:+.1%}"
                print(f"| {n} | {name} | {row['k']} | {row['n_quad']} | {lam:g} | {row['graph']:.4f} | {ref_txt} | "
                      f"{d:.4f} | {row['graph_error']:+.1%} | {err_txt} | {ref[4]:.3f} / {ref[2]:.3f} | "
                      f"{row['seconds']:.0f} (fit {row['fit_seconds']:.0f}, refine {row['refine_seconds'] or 0:.0f}) |",
                      flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")
    before = {(r["n"], r["lam"]): r for r in rows if r["defaults"] == "before"}
    for r in rows:
        b = before.get((r["n"], r["lam"]))
        if r["defaults"] == "after" and b is not None:
            print(f"# N = {r['n']}, λ = {r['lam']:g}: |error| {abs(b['graph_error']):.1%} → "
                  f"{abs(r['refined_error'] if r['refined_error'] is not None else r['graph_error']):.1%}, "
                  f"time × {r['seconds'] / b['seconds']:.2f} (after / before)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

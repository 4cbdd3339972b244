"""Benchmark: likelihood throughput of a built-in model (discrete vs ode) and the geodesic density cache.

Run: .venv/bin/python bench/bench_density.py [--model toy2d/ring] [--n 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from explorer.geodesics import GenerativeGeodesics
from explorer.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="toy2d/ring")
    ap.add_argument("--n", type=int, default=2000, help="training points in the graph")
    ap.add_argument("--points", type=int, default=2000, help="points timed for throughput")
    args = ap.parse_args()
    model = load_model(args.model)
    X = model.training_data()
    pts = X[:: max(1, len(X) // args.points)][: args.points]
    rows = []
    for method, kw in [("discrete", {}), ("ode", {"n_steps": 50})]:
        m = len(pts) if method == "discrete" else min(len(pts), 500)
        t0 = time.perf_counter()
        logp = model.log_prob(pts[:m], method=method, **kw)
        sec = time.perf_counter() - t0
        rows.append((f"log_prob {method} ({m} points{', 50 RK4 steps' if method == 'ode' else ', S=50'})",
                     sec, f"{m / sec:,.0f} points/s, {np.isnan(logp).sum()} NaN"))
    graph_pts = X[:: max(1, len(X) // args.n)][: args.n]
    t0 = time.perf_counter()
    geo = GenerativeGeodesics(k=10, n_quad=3).fit(graph_pts, model.log_density())
    sec = time.perf_counter() - t0
    rows.append((f"density cache: {args.n} points, k=10, 3 quad. points", sec,
                 f"{geo.n_density_evals_:,} evaluations, {geo.n_density_evals_ / sec:,.0f} points/s"))
    t0 = time.perf_counter()
    geo.set_lam(0.5)
    geo.path(0, len(graph_pts) - 1) if geo.n_components_ == 1 else None
    rows.append(("then a λ change (re-weight + path)", time.perf_counter() - t0, "no density calls"))
    print(f"model {args.model}")
    print(f"{'what':<60} {'seconds':>9}  note")
    for what, sec, note in rows:
        print(f"{what:<60} {sec:9.2f}  {note}")


if __name__ == "__main__":
    main()

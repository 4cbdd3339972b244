"""Benchmark of the λ slider: re-weighting + one single-source Dijkstra + path on ~10,000 nodes / ~60,000 edges.

Not part of the test suite. Run: ``.venv/bin/python bench/bench_geodesics.py [--no-write]``. Prints a table and
replaces (or appends) the "## Geodesics" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import re
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.density import KernelDensity  # noqa: E402
from explorer.geodesics import GenerativeGeodesics  # noqa: E402
from explorer.geodesics.convergence import ring_density  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        return m.group(1).strip() if m else platform.processor()
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"


def bench_density(name: str, density, X: np.ndarray, k: int, repeats: int) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t0 = time.perf_counter()
        g = GenerativeGeodesics(lam=1.0, k=k, n_quad=3).fit(X, density)
        rebuild = time.perf_counter() - t0
    target = int(np.argmax(np.linalg.norm(X - X[0], axis=1)))
    lams = np.geomspace(1e-3, 10.0, repeats)
    times = []
    for lam in lams:
        t0 = time.perf_counter()
        g.set_lam(float(lam))
        g.path(0, target)
        times.append(time.perf_counter() - t0)
    change = statistics.median(times)
    return {"density": name, "nodes": len(g.nodes_), "edges": len(g.edges_), "evals": g.n_density_evals_,
            "change_ms": 1e3 * change, "rebuild_s": rebuild, "ratio": rebuild / change}


def bench_model(spec: str, X: np.ndarray, ref: dict, n_sample: int) -> dict | None:
    """Rebuild cost with a built-in model's likelihood, extrapolated from its rate on ``n_sample`` points."""
    try:
        from explorer.models import load_model

        model = load_model(spec)
        if not hasattr(model, "log_prob"):
            return None
        P = X[:n_sample]
        t0 = time.perf_counter()
        model.log_prob(P, method="discrete")
        rate = n_sample / (time.perf_counter() - t0)
    except Exception as err:  # a model still in development must not break the bench
        print(f"model row skipped: {err!r}", file=sys.stderr)
        return None
    rebuild = ref["rebuild_s"] + ref["evals"] / rate  # graph build (from the mixture run) + all densities
    return {"density": f"{spec} log_prob('discrete'), extrapolated from {n_sample} points ({rate:.0f} points/s)",
            "nodes": ref["nodes"], "edges": ref["edges"], "evals": ref["evals"], "change_ms": ref["change_ms"],
            "rebuild_s": rebuild, "ratio": rebuild / (ref["change_ms"] / 1e3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--model", default="toy2d/ring", help="built-in model for the likelihood row ('' to skip)")
    ap.add_argument("--model-sample", type=int, default=400, help="points to time the model likelihood on")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.6, 1.6, size=(args.n, 2))
    gmm = ring_density()
    kde = KernelDensity(gmm.sample(2000, seed=1))  # stand-in for a model likelihood (see notes)
    rows = [bench_density("analytic mixture (8 Gaussians)", gmm, X, args.k, args.repeats),
            bench_density("KDE of 2,000 samples", kde, X, args.k, args.repeats)]
    model_row = bench_model(args.model, X, rows[0], args.model_sample) if args.model else None
    if model_row:
        rows.append(model_row)
    header = ("| density | nodes | edges | log p evaluations | λ change (ms, median of "
              f"{args.repeats}) | rebuild with densities (s) | rebuild / λ change |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['density']} | {r['nodes']} | {r['edges']} | {r['evals']} | {r['change_ms']:.1f} | "
                     f"{r['rebuild_s']:.2f} | {r['ratio']:.0f}× |")
    table = "\n".join(lines)
    print(table)
    section = (
        "## Geodesics\n\n"
        f"`bench/bench_geodesics.py` on {dt.date.today().isoformat()}, {cpu_name()} (2 cores, shared with other "
        "jobs), Python " + platform.python_version() + ". Uniform points on [-1.6, 1.6]², symmetric k-NN graph "
        f"(k = {args.k}), 3 Gauss–Legendre nodes per edge. λ change = `set_lam` (re-weight from the cache, replace "
        "the CSR data) + one single-source Dijkstra + `path` back-tracking; target ≤ 20 ms. Rebuild = `fit` with "
        "every node and quadrature density evaluated again (graph construction included).\n\n"
        f"{table}\n\n"
        "The λ change makes no density call, so its time does not depend on the density (the model row reuses "
        "the mixture's λ-change time). The KDE stands in for a model likelihood; the model row's rebuild time is "
        "extrapolated from the likelihood's rate on a few hundred points (a full rebuild would take that long), "
        "with the model's likelihood as it was when this ran (under development).\n"
    )
    if not args.no_write:
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        if "## Geodesics\n" in text:  # replace our own section only
            start = text.index("## Geodesics\n")
            nxt = text.find("\n## ", start + 1)
            text = text[:start] + section + ("" if nxt < 0 else text[nxt:])
        else:
            text = text.rstrip("\n") + "\n\n" + section
        RESULTS.write_text(text)
        print(f"wrote the Geodesics section of {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

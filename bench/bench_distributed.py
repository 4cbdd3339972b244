"""Benchmark: one process vs 1 and 2 Ray workers (``--ray local``) for a descriptor plane and a geodesic density cache.

Each run computes into an empty cache folder (so nothing is a hit); the Ray rows time the computation on already
started workers that have computed once (model loaded, first-call costs paid), and the start-up (``ray.init`` plus
the workers' start) is reported apart. The one-process rows run with torch on 1 thread (the Ray workers' setting:
Ray sets OMP_NUM_THREADS=1 for a 1-CPU worker) and on every core.

Run: .venv/bin/python bench/bench_distributed.py [--model toy2d/ring] [--grid 24] [--steps 20] [--n 600]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import torch  # noqa: E402

from explorer import distributed  # noqa: E402
from explorer.density.cached import make_density  # noqa: E402
from explorer.geodesics import GenerativeGeodesics  # noqa: E402
from explorer.models import load_model  # noqa: E402
from explorer.views.local_geometry import descriptor_plane  # noqa: E402


def _fresh_cache() -> None:
    os.environ["EXPLORER_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-distributed-")


def plane(model, args, n=None):
    _fresh_cache()
    t0 = time.perf_counter()
    arrays, _ = descriptor_plane(model, "sampler", args.steps, None, [], n or args.grid, 3.0, None)
    return time.perf_counter() - t0, arrays["psi"]


def density_cache(model, args, n=None):
    _fresh_cache()
    X = np.asarray(model.training_data(), dtype=np.float64)
    X = X[:: max(1, len(X) // (n or args.n))][: n or args.n]
    t0 = time.perf_counter()
    g = GenerativeGeodesics(k=10, n_quad=3).fit(X, make_density(model, "model"))
    return time.perf_counter() - t0, g.log_p_quad_, g.n_density_evals_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="toy2d/ring")
    ap.add_argument("--grid", type=int, default=24, help="n for the n × n descriptor plane (full Jacobian)")
    ap.add_argument("--steps", type=int, default=20, help="DDIM steps of the plane's sampler map")
    ap.add_argument("--n", type=int, default=600, help="training points in the graph (k = 10, 3 quadrature nodes)")
    args = ap.parse_args()
    from explorer.distributed.backend import RayBackend

    model = load_model(args.model)
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; {up}")
    rows, ref = [], {}
    for threads in (1, torch.get_num_threads()):
        torch.set_num_threads(threads)
        plane(model, args, n=4), density_cache(model, args, n=50)  # warm-up
        t_plane, ref["plane"] = plane(model, args)
        t_dens, ref["dens"], n_pts = density_cache(model, args)
        rows.append((f"one process, torch {threads} thread(s)", t_plane, t_dens, ""))
    torch.set_num_threads(1)
    for workers in (1, 2):
        t0 = time.perf_counter()
        with RayBackend("local", workers) as backend:
            start = time.perf_counter() - t0
            with distributed.using(backend):
                plane(model, args, n=4), density_cache(model, args, n=50)  # warm-up: each worker loads the model
                t_plane, psi = plane(model, args)
                t_dens, logp, _ = density_cache(model, args)
            err = max(float(np.nanmax(np.abs(psi - ref["plane"]))), float(np.nanmax(np.abs(logp - ref["dens"]))))
            rows.append((f"Ray, {workers} worker(s)", t_plane, t_dens, f"start-up {start:.1f} s; max |Δ| {err:.1e}"))
    up_end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\ndescriptor plane: {args.grid}×{args.grid} latents, {args.steps}-step sampler, full Jacobian; density "
          f"cache: {n_pts:,} points ({args.n} nodes, k = 10, 3 quadrature nodes), in chunks of 4,096; {up_end}\n")
    base_plane, base_dens = rows[0][1], rows[0][2]
    print("| run | descriptor plane (s) | speed-up | density cache (s) | speed-up | note |")
    print("|---|---|---|---|---|---|")
    for name, tp, td, note in rows:
        print(f"| {name} | {tp:.2f} | {base_plane / tp:.2f}× | {td:.2f} | {base_dens / td:.2f}× | {note} |")


if __name__ == "__main__":
    main()

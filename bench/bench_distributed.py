"""Benchmark: one process vs 1 and 2 Ray workers (``--ray local``) for a descriptor plane and a geodesic density cache.

Each run computes into an empty cache folder (so nothing is a hit); the Ray rows time the computation on already
started workers that have computed once (model loaded, first-call costs paid), and the start-up (``ray.init``, the
workers' start) is reported apart. The one-process row runs torch on 1 thread, the Ray workers' setting (Ray sets
OMP_NUM_THREADS=1 for a 1-CPU worker).

Run: .venv/bin/python bench/bench_distributed.py [--model toy2d/ring] [--grid 40] [--steps 20] [--n 800]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
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


def timed(fn, model, args, repeats):
    """The fastest of ``repeats`` runs (other jobs share the machine) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t, *out = fn(model, args)
        best = min(best, t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="toy2d/ring")
    ap.add_argument("--grid", type=int, default=40, help="n for the n × n descriptor plane (full Jacobian)")
    ap.add_argument("--steps", type=int, default=20, help="DDIM steps of the plane's sampler map")
    ap.add_argument("--n", type=int, default=800, help="training points in the graph (k = 10, 3 quadrature nodes)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per row; the fastest is shown")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="the knn graph has")  # a subset of the ring: several components
    import ray

    from explorer.distributed.backend import RayBackend

    model = load_model(args.model)
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; {up}")
    torch.set_num_threads(1)  # as in a 1-CPU Ray worker (Ray sets OMP_NUM_THREADS=1 there)
    plane(model, args, n=4), density_cache(model, args, n=50)  # warm-up
    t_plane, (ref_plane,) = timed(plane, model, args, args.repeats)
    t_dens, (ref_dens, n_pts) = timed(density_cache, model, args, args.repeats)
    rows = [("one process, torch on 1 thread", t_plane, t_dens, "")]
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    init = time.perf_counter() - t0
    for workers in (1, 2):
        t0 = time.perf_counter()
        with RayBackend("local", workers) as backend:
            start = time.perf_counter() - t0
            with distributed.using(backend):
                plane(model, args, n=4), density_cache(model, args, n=50)  # warm-up: each worker loads the model
                t_plane, (psi,) = timed(plane, model, args, args.repeats)
                t_dens, (logp, _) = timed(density_cache, model, args, args.repeats)
            err = max(float(np.nanmax(np.abs(psi - ref_plane))), float(np.nanmax(np.abs(logp - ref_dens))))
            rows.append((f"Ray, {workers} worker(s)", t_plane, t_dens,
                         f"workers started in {start:.1f} s; max abs difference {err:.1e} (float32)"))
    ray.shutdown()
    up_end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\ndescriptor plane: {args.grid}×{args.grid} latents, {args.steps}-step sampler, full Jacobian; density "
          f"cache: {n_pts:,} points ({args.n} nodes, k = 10, 3 quadrature nodes) in chunks of 4,096; ray.init "
          f"{init:.1f} s; fastest of {args.repeats}; {up_end}\n")
    base_plane, base_dens = rows[0][1], rows[0][2]
    print("| run | descriptor plane (s) | speed-up | density cache (s) | speed-up | note |")
    print("|---|---|---|---|---|---|")
    for name, tp, td, note in rows:
        print(f"| {name} | {tp:.2f} | {base_plane / tp:.2f}× | {td:.2f} | {base_dens / td:.2f}× | {note} |")


if __name__ == "__main__":
    main()

"""Benchmark: one process vs 1 and 2 Ray workers (``--ray local``) for a descriptor plane and a geodesic density cache.

Each run computes into an empty cache folder (so nothing is a hit); the Ray rows time the computation on already
started workers that have computed once (model loaded, first-call costs paid), and the start-up (``ray.init``, the
workers' start) is reported apart. The one-process row runs torch on 1 thread, the Ray workers' setting (Ray sets
OMP_NUM_THREADS=1 for a 1-CPU worker). Other jobs share the machine, so every configuration is timed once per round,
back to back, and the fastest round is shown.

Run: .venv/bin/python bench/bench_distributed.py [--model toy2d/ring] [--grid 40] [--steps 20] [--n 800] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="toy2d/ring")
    ap.add_argument("--grid", type=int, default=40, help="n for the n × n descriptor plane (full Jacobian)")
    ap.add_argument("--steps", type=int, default=20, help="DDIM steps of the plane's sampler map")
    ap.add_argument("--n", type=int, default=800, help="training points in the graph (k = 10, 3 quadrature nodes)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds, each timing every configuration once, back to back; the fastest is shown")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="the knn graph has")  # a subset of the ring: several components
    import ray

    from explorer.distributed.backend import RayBackend

    model = load_model(args.model)
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; {up}")
    torch.set_num_threads(1)  # as in a 1-CPU Ray worker (Ray sets OMP_NUM_THREADS=1 there)
    t0 = time.perf_counter()
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level="ERROR")  # 1 + 2 workers
    init = time.perf_counter() - t0
    configs, started = {"one process, torch on 1 thread": None}, {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        configs[f"Ray, {workers} worker(s)"] = RayBackend("local", workers)
        started[f"Ray, {workers} worker(s)"] = time.perf_counter() - t0
    best = {name: [float("inf"), float("inf")] for name in configs}
    out: dict = {}
    try:
        for backend in configs.values():  # warm-up: each worker loads the model, first calls paid
            with distributed.using(backend) if backend else contextlib.nullcontext():
                plane(model, args, n=4), density_cache(model, args, n=50)
        for _ in range(args.rounds):
            for name, backend in configs.items():
                with distributed.using(backend) if backend else contextlib.nullcontext():
                    tp, psi = plane(model, args)
                    td, logp, n_pts = density_cache(model, args)
                best[name] = [min(best[name][0], tp), min(best[name][1], td)]
                out[name] = (psi, logp)
    finally:
        for backend in configs.values():
            if backend:
                backend.close()
        ray.shutdown()
    up_end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\ndescriptor plane: {args.grid}×{args.grid} latents, {args.steps}-step sampler, full Jacobian; density "
          f"cache: {n_pts:,} points ({args.n} nodes, k = 10, 3 quadrature nodes) in chunks of 4,096; ray.init "
          f"{init:.1f} s; fastest of {args.rounds} rounds; {up_end}\n")
    ref = out["one process, torch on 1 thread"]
    base_plane, base_dens = best["one process, torch on 1 thread"]
    print("| run | descriptor plane (s) | speed-up | density cache (s) | speed-up | note |")
    print("|---|---|---|---|---|---|")
    for name, (tp, td) in best.items():
        note = ""
        if configs[name] is not None:
            err = max(float(np.nanmax(np.abs(out[name][0] - ref[0]))), float(np.nanmax(np.abs(out[name][1] - ref[1]))))
            note = f"workers started in {started[name]:.1f} s; max abs difference {err:.1e} (float32)"
        print(f"| {name} | {tp:.2f} | {base_plane / tp:.2f}× | {td:.2f} | {base_dens / td:.2f}× | {note} |")


if __name__ == "__main__":
    main()

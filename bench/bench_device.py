"""CPU vs GPU on the library's one code path (``explorer.device.compute_view``): sampling, ψ/ν of a batch of
latents (the full Jacobian by vmap(jvp)) and the ODE likelihood, for a built-in model. The GPU row is measured only
where CUDA is available (``EXPLORER_DEVICE=cuda`` for the same calls); ratios are against the CPU in the same run.

    .venv/bin/python bench/bench_device.py [--model digits/full] [--n 256]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explorer import device  # noqa: E402
from explorer.descriptors import local_descriptors  # noqa: E402
from explorer.models import load_model  # noqa: E402


def timed(fn, repeats: int = 3) -> float:
    fn()  # warm-up (JIT, allocator, CUDA context)
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def measure(model, n: int) -> dict:
    view = device.compute_view(model)
    z = model.latents(n, seed=0)
    G = view.generator("sampler")
    x = model.sample(min(n, 64), seed=1)
    return {
        "device": str(view.device),
        "sample": timed(lambda: model.sample(n, seed=0)),
        "psi": timed(lambda: local_descriptors(G, z)),
        "ode": timed(lambda: model.log_prob(x, **model.default_likelihood), repeats=1),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="digits/full")
    p.add_argument("--n", type=int, default=256)
    args = p.parse_args()
    model = load_model(args.model)
    rows = []
    os.environ["EXPLORER_DEVICE"] = "cpu"
    rows.append(measure(model, args.n))
    if torch.cuda.is_available():
        os.environ["EXPLORER_DEVICE"] = "cuda"
        rows.append(measure(model, args.n))
    else:
        print("no CUDA device: the GPU row is skipped (run this on a machine with one)")
    print(f"{args.model}, n = {args.n}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; torch {torch.__version__}")
    print(f"{'device':>8} {'sample (s)':>11} {'psi (s)':>9} {'ODE log p (s)':>14} {'psi / sample':>13}")
    for r in rows:
        print(f"{r['device']:>8} {r['sample']:11.3f} {r['psi']:9.3f} {r['ode']:14.3f} {r['psi'] / r['sample']:13.1f}")
    if len(rows) == 2:
        print("GPU speed-up: " + ", ".join(f"{k} {rows[0][k] / rows[1][k]:.1f}×" for k in ("sample", "psi", "ode")))


if __name__ == "__main__":
    main()

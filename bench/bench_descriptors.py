"""Benchmark: a 128 × 128 ψ/ν map of the 50-step sampler vs a per-latent autograd Jacobian loop.

Run: .venv/bin/python bench/bench_descriptors.py [--grid 128] [--loop 200] [--model toy2d/ring]
Prints a table; the ratio is taken in one process, same dtype (float32), same model and steps.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
from torch.func import jvp, vmap

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from explorer.descriptors import descriptor_maps, latent_plane, local_descriptors
from explorer.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="toy2d/ring")
    ap.add_argument("--grid", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--loop", type=int, default=200, help="latents timed in the naive loop")
    args = ap.parse_args()
    model = load_model(args.model)
    G = model.generator("sampler", args.steps)
    plane = latent_plane(model.latent_shape, n=args.grid, extent=3.0)
    z = plane.latents
    n = len(z)

    with torch.no_grad():
        G(z[:256])  # warm-up
        t0 = time.perf_counter()
        G(z)
        t_fwd = time.perf_counter() - t0
        B = torch.eye(2)
        t0 = time.perf_counter()
        vmap(lambda v: jvp(G, (z,), (v.expand_as(z),))[1])(B[:1])
        t_jvp1 = time.perf_counter() - t0

    t0 = time.perf_counter()
    desc = local_descriptors(G, z)
    t_psi = time.perf_counter() - t0

    t0 = time.perf_counter()
    maps = descriptor_maps(G, plane)
    t_all = time.perf_counter() - t0

    loop = z[: args.loop]
    t0 = time.perf_counter()
    for zi in loop:
        J = torch.autograd.functional.jacobian(lambda x: G(x[None])[0], zi, vectorize=False)
        torch.linalg.svdvals(J.double())
    t_loop = (time.perf_counter() - t0) / len(loop) * n

    rows = [
        ("one forward sampling pass", t_fwd, ""),
        ("one batched JVP pass (1 tangent)", t_jvp1, f"{t_jvp1 / t_fwd:.1f}x forward"),
        (f"psi/nu map {args.grid}x{args.grid} (vmap over jvp, P=2)", t_psi, f"{t_psi / t_fwd:.1f}x forward"),
        ("psi/nu/nu_eff/delta maps (descriptor_maps)", t_all, ""),
        (f"per-latent autograd jacobian loop (timed on {args.loop}, extrapolated)", t_loop,
         f"{t_loop / t_psi:.0f}x slower than batched"),
    ]
    print(f"model {args.model}, {args.steps}-step DDIM sampler, {n} latents, float32, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"{'what':<72} {'seconds':>9}  note")
    for what, sec, note in rows:
        print(f"{what:<72} {sec:9.2f}  {note}")
    assert desc.psi.shape == (n,) and maps.maps["psi"].shape == (args.grid, args.grid)


if __name__ == "__main__":
    main()

"""Benchmark (CPU): local geometry of diffusers pipelines as a ratio to one sampling pass of the same map.

For the shipped ``assets/pipelines/digits-unet`` and the tests' tiny DDPM, DiT and SD pipelines (saved to a
temporary folder and opened with ``load_model``), per map: one plain pass over N latents, then ψ/ν from a
P-direction sketch (batched JVPs), the randomized SVD of the top P (JVPs then VJPs), and δ over the 2P + 1
vertices of the cross-polytope, each as seconds and as a multiple of the plain pass.

Run: .venv/bin/python bench/bench_pipelines.py [--n 16] [--P 8] [--steps 10] [--threads 1]
Prints a Markdown table (paste into bench/RESULTS.md) with the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing

from explorer.descriptors import local_complexity, local_descriptors  # noqa: E402
from explorer.models import ASSETS, load_model  # noqa: E402


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_map(model, map_name: str, n: int, P: int, steps: int, **condition) -> dict:
    G = model.generator(map_name, steps=steps, t=model.num_train_timesteps // 2, **condition)
    z = model.latents(n, seed=0)
    with torch.no_grad():
        G(z[:2])  # warm-up
        t_pass = min(_time(lambda: G(z)) for _ in range(2))
    t_psi = _time(lambda: local_descriptors(G, z, n_directions=P))
    t_rsvd = _time(lambda: local_descriptors(G, z, n_directions=P, svd="randomized", oversample=4, n_iter=0))
    t_delta = _time(lambda: local_complexity(G, z, radius=1e-2, n_directions=P))
    return {"pass": t_pass, "psi": t_psi, "rsvd": t_rsvd, "delta": t_delta}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16, help="latents per measurement")
    ap.add_argument("--P", type=int, default=8, help="sketch directions")
    ap.add_argument("--steps", type=int, default=10, help="DDIM steps of sampler maps")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from tests.tiny_pipelines import tiny_folder

    load0 = os.getloadavg()
    cases = [("digits-unet", str(ASSETS / "pipelines" / "digits-unet"), "sampler", {}),
             ("tiny DDPM", str(tiny_folder("ddpm")), "sampler", {}),
             ("tiny DiT, s = 4", str(tiny_folder("dit")), "sampler", {"class_label": 3, "guidance_scale": 4.0}),
             ("tiny DiT", str(tiny_folder("dit")), "decoder", {}),
             ("tiny SD, s = 7.5", str(tiny_folder("sd")), "sampler", {"prompt": "a photo of cat",
                                                                     "guidance_scale": 7.5}),
             ("tiny SD", str(tiny_folder("sd")), "decoder", {})]
    print(f"N = {args.n} latents, P = {args.P}, S = {args.steps} steps, {args.threads} torch thread(s), "
          f"torch {torch.__version__}, load average {load0[0]:.1f} at the start")
    print()
    print("| model | map | d → D | one pass (s) | ψ sketch (s, ×pass) | ψ randomized SVD (s, ×pass) | δ (s, ×pass) |")
    print("|---|---|---|---|---|---|---|")
    for label, spec, map_name, cond in cases:
        m = load_model(spec)
        r = bench_map(m, map_name, args.n, args.P, args.steps, **cond)
        d, D = int(torch.tensor(m.latent_shape).prod()), int(torch.tensor(m.sample_shape).prod())
        cells = " | ".join(f"{r[k]:.2f} ({r[k] / r['pass']:.0f}×)" for k in ("psi", "rsvd", "delta"))
        print(f"| {label} | {map_name} | {d} → {D} | {r['pass']:.3f} | {cells} |", flush=True)
    print()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()

"""Benchmark: reward guidance (issue 15). Guided against plain sampling of the same latents (one gradient of the
reward per step: aim ≤ 2× a plain pass), the reward's training set (ψ of N latents dominates), the reward's
training, and the inversion + ψ of guided samples (what the report spends per ρ).

Run: .venv/bin/python bench/bench_guidance.py [--models toy2d/ring digits/full] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from explorer.guidance import Reward, fit_reward, guided_sample, psi_of_latents, reward_training_set  # noqa: E402
from explorer.guidance.inversion import invert_plain  # noqa: E402
from explorer.guidance.report import resolve_invert_from  # noqa: E402
from explorer.guidance.reward import default_net_config, make_reward_net  # noqa: E402
from explorer.models import load_model  # noqa: E402

#: n sampled latents, N training latents for ψ, n_inv guided samples inverted (the digits' ψ costs ~0.2 s a latent).
SIZES = {"toy2d/ring": {"n": 512, "N": 512, "n_inv": 512}, "digits/full": {"n": 256, "N": 64, "n_inv": 64}}


def best_of(fns, repeats: int = 9) -> list[float]:
    """The best of ``repeats`` timings of each function, run in turn (plain, guided, plain, ...): on a shared machine
    the load then weighs on all alike."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [min(t) for t in times]


def bench(spec: str, n: int, N: int, n_inv: int) -> list[tuple[str, float, str]]:
    model = load_model(spec)
    image = model.image_shape is not None
    body = make_reward_net(model.diffusion_shape, default_net_config(model.diffusion_shape, image=image))
    reward = Reward(body, 0.0, 1.0, model.diffusion_shape).eval()
    rows = []
    model.sample(8, 0)  # warm-up
    model.sample(8, 0, reward=reward, rho=1.0)
    t_plain, t_guided, t_details = best_of([lambda: model.sample(n, 0),
                                            lambda: model.sample(n, 0, reward=reward, rho=1.0),
                                            lambda: guided_sample(model, n, 0, None, reward, 1.0, return_details=True)])
    S = model.default_steps
    rows.append((f"plain sampling, {n} latents, S = {S}", t_plain, f"{n / t_plain:,.0f} latents/s"))
    rows.append((f"guided sampling (ρ = 1, reward {body.config()})", t_guided, f"**{t_guided / t_plain:.2f}×** plain"))
    rows.append(("guided sampling with the report's details (x_0, last input, r at the end)", t_details,
                 f"{t_details / t_plain:.2f}× plain"))
    z = model.latents(N, 1)
    t0 = time.perf_counter()
    psi_of_latents(model, z)
    t_psi = time.perf_counter() - t0
    rows.append((f"ψ of {N} training latents (full Jacobian, P = {int(np.prod(model.latent_shape))})", t_psi,
                 f"{N / t_psi:,.1f} latents/s; {t_psi / (t_plain * N / n):,.0f}× plain sampling of them"))
    t0 = time.perf_counter()
    data = reward_training_set(model, N, psi=np.zeros(N) + np.arange(N) * 1e-3)  # the states alone
    t_states = time.perf_counter() - t0
    rows.append((f"the training set's states ({N} trajectories × {S} steps, noised)", t_states, "negligible beside ψ"))
    iters = 500
    t0 = time.perf_counter()
    fit_reward(data, iterations=iters, eval_every=iters)
    t_fit = time.perf_counter() - t0
    rows.append((f"reward training, {iters} iterations", t_fit, f"{iters / t_fit:,.0f} iterations/s"))
    det = guided_sample(model, n_inv, 0, None, reward, 1.0, return_details=True)
    skip = 0 if resolve_invert_from(model) == "sample" else 1
    t0 = time.perf_counter()
    invert_plain(model, det["x0"] if skip == 0 else det["last_input"], skip_last=skip)
    t_inv = time.perf_counter() - t0
    rows.append((f"inversion (+ ψ by its log-determinant) of {n_inv} guided samples, from the "
                 f"{'sample' if skip == 0 else 'last step input'}", t_inv, f"{n_inv / t_inv:,.1f} samples/s"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=list(SIZES))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {args.threads} thread(s); load average at start {load0[0]:.1f}")
    for spec in args.models:
        s = SIZES.get(spec, {"n": 256, "N": 64, "n_inv": 64})
        print(f"\n### {spec}\n\n| What | Seconds | Note |\n|---|---|---|")
        for what, sec, note in bench(spec, s["n"], s["N"], s["n_inv"]):
            print(f"| {what} | {sec:.3f} | {note} |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Reward guidance: train a reward r_φ(x_t, t) ≈ ψ(z) (or reuse one), sample the same latents at every ρ with the
guided DDIM sampler ε̃ = ε_θ − ρ·sqrt(1 − ᾱ_t)·∇r_φ, and measure what guidance did (ψ at the inverted latent, the
reward's prediction, log p, quality, diversity, memorization; means with bootstrap intervals).

Example:
  python -m explorer guidance --model toy2d/ring --rho=-1,0,1,2 --n 512 --seed 0 --out runs/ring-guidance

Sample i of every ρ comes from latent i of ``latents(n, seed)``, so ρ = 0 equals ``sample(n, seed)``. Writes
OUT.npz (``rho`` (R,), ``samples`` (R, n, *sample_shape), ``latents``, every per-sample figure as (R, n)), OUT.csv
(one row per ρ and sample), OUT.json (every parameter, the reward's record with ``heldout_r2`` and
``heldout_r2_by_third``, per ρ the means and intervals, the failed inversion fraction) and the reward it used as
OUT.reward.safetensors / OUT.reward.json (pass it back with --reward). Results go through the disk cache the
Guidance page reads, so the page opens this run at once.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from explorer.commands._condition import add_condition_arguments, condition_from_args
from explorer.distributed.cli import add_ray_arguments, session
from explorer.models import DEFAULT_MODEL
from explorer.provenance import stamped


def parse_rhos(text: str) -> list[float]:
    try:
        rhos = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--rho must be numbers separated by commas (e.g. --rho=-1,0,1,2), got {text!r}") from None
    if not rhos:
        raise ValueError("--rho needs at least one value")
    return rhos


def add_arguments(p) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.add_argument("--rho", default=None, help="guidance strengths, comma-separated, e.g. --rho=-1,0,1,2 (write it "
                   "with '=' so that a leading minus is not read as an option; default: the Guidance page's grid)")
    p.add_argument("--n", type=int, default=None, help="samples per ρ (default: the page's, 512 for points, 256 for "
                   "images)")
    p.add_argument("--seed", type=int, default=0, help="latents(n, SEED) at every ρ (default 0)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps S (default: the model's)")
    p.add_argument("--reward", type=Path, default=None,
                   help="a trained reward (.safetensors with its .json beside it); default: train one or reuse the "
                        "cached one")
    p.add_argument("--reward-n", type=int, default=None, help="latents of the reward's training set (default 2048)")
    p.add_argument("--reward-seed", type=int, default=1, help="seed of the reward's training latents (default 1)")
    p.add_argument("--reward-states", choices=["noised", "trajectory"], default=None,
                   help="the reward's inputs: the forward-noised trajectory end points (default: it learns E[ψ | x_t] "
                        "and steers smoothly) or each DDIM trajectory's own states (a sharper fit that overshoots)")
    p.add_argument("--reward-iterations", type=int, default=None, help="training iterations (default by model kind)")
    p.add_argument("--map", choices=["sampler", "decoder"], default="sampler",
                   help="the map whose ψ the reward predicts (decoder: latent diffusion models only)")
    p.add_argument("--n-directions", type=int, default=None, help="Jacobian directions P (default: the full Jacobian)")
    p.add_argument("--invert-from", choices=["auto", "sample", "last_input"], default="auto",
                   help="where the plain-sampler inversion starts (default auto: the sample where the model's exact "
                        "inversion works, else the last step's input)")
    p.add_argument("--n-boot", type=int, default=None, help="bootstrap resamples for the intervals (default 1000)")
    p.add_argument("--out", type=Path, required=True,
                   help="output prefix OUT: writes OUT.npz, OUT.csv, OUT.json, OUT.reward.safetensors/.json")
    add_condition_arguments(p)
    add_ray_arguments(p)


def output_paths(out) -> dict[str, Path]:
    out = Path(out)
    base = out.with_suffix("") if out.suffix in (".npz", ".csv", ".json") else out
    return {k: base.with_name(base.name + ext) for k, ext in
            (("npz", ".npz"), ("csv", ".csv"), ("json", ".json"), ("reward", ".reward"))}


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from explorer.guidance.report import figures_table, guidance_report, samples_table
    from explorer.guidance.reward import load_reward, save_reward
    from explorer.models import load_model
    from explorer.views.guidance import guidance_defaults

    start = time.perf_counter()
    model = load_model(args.model)
    # canonical (a label name → its class number, defaults dropped): the Guidance page's cache entry for the same view
    condition = model.canonical_condition(condition_from_args(args))
    d = guidance_defaults(model)  # unset options take the Guidance page's defaults: the same cache entry
    rhos = parse_rhos(args.rho) if args.rho is not None else d["rhos"]
    n = d["n"] if args.n is None else int(args.n)
    reward_n = d["reward_n"] if args.reward_n is None else int(args.reward_n)
    states = args.reward_states or d["reward_states"]
    n_boot = d["n_boot"] if args.n_boot is None else int(args.n_boot)
    reward = load_reward(args.reward) if args.reward is not None else None
    fit = dict(d["reward_fit"]) if args.reward_iterations is None else {"iterations": int(args.reward_iterations)}
    bar = tqdm(total=1000, file=sys.stderr, desc="guidance", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def progress(fraction, message=None):
        bar.n = int(1000 * min(max(float(fraction), 0.0), 1.0))
        if message:
            bar.set_postfix_str(str(message)[:60], refresh=False)
        bar.refresh()

    # --ray: ψ of the reward's training latents (and of the samples whose inversion gives none) on Ray workers
    try:
        with session(args) as backend:
            arrays, record = guidance_report(model, rhos, n, args.seed, args.steps, reward, progress,
                                             reward_n=reward_n, reward_seed=args.reward_seed, map=args.map,
                                             n_directions=args.n_directions, reward_fit=fit, reward_states=states,
                                             invert_from=args.invert_from, n_boot=n_boot, **condition)
            ray_info = None if backend is None else backend.describe()
    finally:
        bar.close()
    paths = output_paths(args.out)
    paths["npz"].parent.mkdir(parents=True, exist_ok=True)
    np.savez(paths["npz"], **arrays)
    samples_table(arrays).to_csv(paths["csv"], index=False)
    if reward is None:
        from explorer.guidance.report import reward_cached

        reward, _ = reward_cached(model, reward_n, args.reward_seed, args.steps, args.map, args.n_directions,
                                  fit=fit, states=states, **condition)
    save_reward(reward, paths["reward"])
    out = {"command": "guidance", "model": model.name, "rho": rhos, "n": n, "seed": args.seed,
           "steps": record["params"]["steps"], "condition": condition, "params": record["params"],
           "reward": record["reward"], "reward_file": str(paths["reward"]) + ".safetensors",
           "figures": record["figures"], "inversion_ok": record["inversion_ok"],
           "swd_floor": record.get("swd_floor"), "swd_floor_source": record.get("swd_floor_source"),
           "cache_key": record["key"], "cache_hit": bool(record["hit"]), "ray": ray_info,
           "seconds": round(time.perf_counter() - start, 2)}
    paths["json"].write_text(json.dumps(stamped(out), indent=2, default=str) + "\n")
    rec = record["reward"]
    thirds = ", ".join("n/a" if v is None else f"{v:.2f}" for v in rec["heldout_r2_by_third"])
    print(f"reward: held-out R² {rec['heldout_r2']:.3f} (by third of the schedule, noisiest first: {thirds}); "
          f"{model.name}, map {rec['map']}, {rec['steps']} steps, N = {rec['n']}")
    table = figures_table(record)
    shown = [c for c in table.columns if not c.endswith(("_lo", "_hi"))]
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if not record["inversion_ok"]:
        print("warning: the inversion failed for 5% or more of the samples at some ρ; their measured ψ and log p "
              "are approximate", file=sys.stderr)
    written = ", ".join(str(p) for k, p in paths.items() if k != "reward")
    print(f"wrote {written} and {paths['reward']}.safetensors in {out['seconds']} s", file=sys.stderr)
    return 0

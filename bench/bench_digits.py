"""Benchmark: the digit models. ψ/ν through the default sampler with the full 64-direction Jacobian (vs plain
sampling of the same latents, and vs an autograd Jacobian loop on a few latents), likelihood throughput, and the
geodesic density cache for 1,000 digit images with k = 10.

Run on a quiet machine: .venv/bin/python bench/bench_digits.py [--latents 256] [--graph 1000] [--skip-graph]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from explorer.descriptors import local_descriptors
from explorer.geodesics import GenerativeGeodesics
from explorer.models import load_model


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="digits/full")
    ap.add_argument("--latents", type=int, default=256)
    ap.add_argument("--graph", type=int, default=1000, help="digit images in the geodesic graph")
    ap.add_argument("--skip-graph", action="store_true")
    args = ap.parse_args()
    model = load_model(args.model)
    G = model.generator("sampler")
    z = model.latents(args.latents, seed=0)
    rows = []
    with torch.no_grad():
        _, t_sample = timed(lambda: G(z))
    rows.append((f"plain sampling, {args.latents} latents, S={model.default_steps}", t_sample,
                 f"{args.latents / t_sample:,.0f} latents/s"))
    d, t_psi = timed(lambda: local_descriptors(G, z))
    rows.append((f"ψ/ν, full Jacobian (P={d.n_directions}), {args.latents} latents", t_psi,
                 f"{args.latents / t_psi:,.1f} latents/s; {t_psi / t_sample:,.0f}× plain sampling"))
    k = 4
    _, t_loop = timed(lambda: [torch.autograd.functional.jacobian(lambda v: G(v[None])[0], z[i]) for i in range(k)])
    per_latent = t_loop / k
    rows.append((f"baseline: autograd Jacobian loop, {k} latents (extrapolated)", per_latent * args.latents,
                 f"{1 / per_latent:,.1f} latents/s; batched JVPs are {per_latent * args.latents / t_psi:,.1f}× faster"))
    X = model.training_data()
    lik = model.default_likelihood
    m = 256
    _, t_lik = timed(lambda: model.log_prob(X[:m], **lik))
    rows.append((f"log p {lik} of {m} training images", t_lik, f"{m / t_lik:,.1f} points/s"))
    zs = model.latents(m, seed=1)
    _, t_cov = timed(lambda: local_descriptors(G, zs))
    rows.append((f"log p of {m} samples by log N(z) − ψ(z) (change of variables)", t_cov, f"{m / t_cov:,.1f} points/s"))
    if not args.skip_graph:
        pts = X[np.sort(np.random.default_rng(0).choice(len(X), args.graph, replace=False))].astype(np.float64)
        geo, t_fit = timed(lambda: GenerativeGeodesics(k=10, n_quad=3).fit(pts, model.log_density()))
        rows.append((f"geodesic density cache: {args.graph} images, k=10, 3 quad. points", t_fit,
                     f"{geo.n_density_evals_:,} evaluations, {geo.n_density_evals_ / t_fit:,.1f} points/s, "
                     f"{geo.n_components_} component(s)"))
        _, t_lam = timed(lambda: (geo.set_lam(0.5), geo.path(0, args.graph - 1)))
        rows.append(("then a λ change (re-weight + path)", t_lam, "no density calls"))
    print(f"model {args.model}; {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'what':<66} {'seconds':>9}  note")
    for what, sec, note in rows:
        print(f"{what:<66} {sec:>9.2f}  {note}")


if __name__ == "__main__":
    main()

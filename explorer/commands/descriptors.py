"""Descriptor maps (ψ, ν, ν_eff, δ) of a model's generator over a latent plane, as .npz + .json.

Example:
  python -m explorer descriptors --model toy2d/moons --map sampler --steps 50 --grid 128 --extent 3 --out maps.npz

The plane is the model's whole latent plane for 2-D latents, else the plane through the latents of
three seeds (``--anchors 0,1,2``; each seed's latent is ``model.latents(1, seed)``).

Diffusers pipelines (``--model FOLDER`` or ``--model org/name``) take ``--map decoder`` (latent models: the VAE
decoder alone) and conditioning flags, e.g.
  python -m explorer descriptors --model path/to/sd --map sampler --steps 20 --prompt "a photo of a cat" \
      --guidance-scale 7.5 --grid 4 --n-directions 8 --out sd.npz
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from explorer.commands._condition import add_condition_arguments, condition_from_args
from explorer.models import DEFAULT_MODEL
from explorer.provenance import stamped


def add_arguments(p) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.add_argument("--map", default="sampler", choices=["sampler", "from_t", "denoiser", "decoder"])
    p.add_argument("--steps", type=int, default=50, help="DDIM steps S (default 50)")
    p.add_argument("--t", type=int, default=None, help="timestep for from_t / denoiser, in [0, T)")
    p.add_argument("--grid", type=int, default=128, help="n for an n × n grid (default 128)")
    p.add_argument("--extent", type=float, default=3.0, help="half-width of the grid in latent units (default 3)")
    p.add_argument("--anchors", default=None, help="three latent seeds SEED,SEED,SEED defining the plane")
    p.add_argument("--n-directions", type=int, default=None, help="sketch size P (default: full Jacobian)")
    p.add_argument("--radius", type=float, default=None, help="δ's cross-polytope radius (default: spacing/4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sketch / δ directions (default 0)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--out", type=Path, required=True, help="output .npz (a .json of parameters is written beside)")
    p.add_argument("--svd", default="sketch", choices=["sketch", "randomized"],
                   help="ψ/ν from the P-direction sketch's singular values (default), or from J's top P by a "
                        "randomized SVD")
    add_condition_arguments(p)


def compute(args, progress=None):
    """The maps for parsed CLI ``args``: (DescriptorMaps, parameter record). Used by the CLI and its test."""
    from explorer.descriptors import descriptor_maps, latent_plane
    from explorer.device import compute_view
    from explorer.models import load_model

    model = load_model(args.model)
    dtype = getattr(torch, args.dtype)
    anchors = None
    if args.anchors:
        seeds = [int(s) for s in args.anchors.split(",")]
        if len(seeds) != 3:
            raise ValueError(f"--anchors needs three seeds, got {args.anchors!r}")
        anchors = torch.stack([model.latent_of_seed(s, torch.float64) for s in seeds])
    plane = latent_plane(model.latent_shape, anchors=anchors, n=args.grid, extent=args.extent, dtype=dtype)
    condition = condition_from_args(args)
    G = compute_view(model, dtype).generator(args.map, steps=args.steps, t=args.t, **condition)
    maps = descriptor_maps(G, plane, radius=args.radius, n_directions=args.n_directions, seed=args.seed,
                           progress=progress, svd=getattr(args, "svd", "sketch"))
    record = {"model": args.model, "weights_hash": model.weights_hash, "map": args.map, "steps": args.steps,
              "t": args.t, "anchors": args.anchors, "condition": condition, **maps.params,
              "P": maps.params["n_directions"]}
    return maps, record


def run(args) -> int:
    start = time.perf_counter()

    def progress(frac: float) -> None:
        print(f"\r  {frac:6.1%} of {args.grid}×{args.grid} latents", end="", file=sys.stderr, flush=True)

    maps, record = compute(args, progress)
    print(file=sys.stderr)
    out = Path(args.out).with_suffix(".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **maps.maps, u=maps.plane.u, v=maps.plane.v, origin=maps.plane.origin.numpy(),
             basis=maps.plane.basis.numpy(), anchor_coords=maps.plane.anchor_coords,
             singular_values=maps.singular_values)
    record["seconds"] = round(time.perf_counter() - start, 2)
    out.with_suffix(".json").write_text(json.dumps(stamped(record), indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')} in {record['seconds']} s")
    return 0

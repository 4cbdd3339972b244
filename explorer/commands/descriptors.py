"""Descriptor maps (ψ, ν, ν_eff, δ) of a model's generator over a latent plane, as .npz + .json.

Example:
  python -m explorer descriptors --model toy2d/moons --map sampler --steps 50 --grid 128 --extent 3 --out maps.npz

The plane is the model's whole latent plane for 2-D latents, else the plane through the latents of
three seeds (``--anchors 0,1,2``; each seed's latent is ``model.latents(1, seed)``). The ``decoder`` map takes
x_0 latents, not noise: its plane passes through the x_0 of the three seeds' samples (``--steps`` sampler steps,
under the conditioning flags); the record's ``anchor_inputs`` says which ("z" or "x0").

Diffusers pipelines (``--model FOLDER`` or ``--model org/name``) take ``--map decoder`` (latent models: the VAE
decoder alone) and conditioning flags, e.g.
  python -m explorer descriptors --model path/to/sd --map sampler --steps 20 --prompt "a photo of a cat" \\
      --guidance-scale 7.5 --anchors 0,1,2 --grid 4 --n-directions 8 --out sd.npz
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from explorer import files
from explorer.commands import _args
from explorer.commands._condition import add_condition_arguments, condition_from_args
from explorer.distributed.cli import add_ray_arguments, session
from explorer.models import DEFAULT_MODEL
from explorer.provenance import stamped


def add_arguments(p) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.add_argument("--map", default="sampler", choices=["sampler", "from_t", "denoiser", "decoder"])
    p.add_argument("--steps", type=_args.positive_int, default=50, help="DDIM steps S (default 50)")
    p.add_argument("--t", type=_args.nonnegative_int, default=None, help="timestep for from_t / denoiser, in [0, T)")
    p.add_argument("--grid", type=_args.int_at_least(2), default=128, help="n for an n × n grid (default 128)")
    p.add_argument("--extent", type=_args.positive_float, default=3.0,
                   help="half-width of the grid in latent units (default 3)")
    p.add_argument("--anchors", type=_args.seed_list_text(3), default=None,
                   help="three latent seeds SEED,SEED,SEED defining the plane")
    p.add_argument("--n-directions", type=_args.positive_int, default=None,
                   help="sketch size P (default: full Jacobian)")
    p.add_argument("--radius", type=_args.positive_float, default=None,
                   help="δ's cross-polytope radius (default: the model's rule, explorer.views.sizes.delta_radius)")
    p.add_argument("--seed", type=_args.seed, default=0, help="seed of the sketch / δ directions (default 0)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--out", type=_args.output_file, required=True,
                   help="output .npz (a .json of parameters is written beside)")
    add_condition_arguments(p)
    add_ray_arguments(p)


def compute(args):
    """The maps for parsed CLI ``args``: (arrays, parameter record), through the job the app's worker runs too (the
    same disk cache: the Local geometry page then opens this plane at once)."""
    from explorer.jobs.console import run_in_foreground
    from explorer.models import load_model
    from explorer.views.local_geometry import anchors_for

    model = load_model(args.model)
    seeds = []
    if args.anchors:
        try:
            seeds = [int(s) for s in args.anchors.split(",")]
        except ValueError:
            raise ValueError(f"--anchors needs three integer seeds SEED,SEED,SEED, got {args.anchors!r}") from None
        if len(seeds) != 3:
            raise ValueError(f"--anchors needs three seeds, got {args.anchors!r}")
    elif int(np.prod(model.latent_shape)) != 2:
        raise ValueError(f"a plane in the {int(np.prod(model.latent_shape))}-dimensional latent space of "
                         f"{args.model} needs --anchors SEED,SEED,SEED")
    params = {"map": args.map, "steps": args.steps, "t": None if args.map == "sampler" else args.t, "seeds": seeds,
              "n": args.grid, "extent": args.extent, "n_directions": args.n_directions, "radius": args.radius,
              "direction_seed": args.seed, "dtype": args.dtype}
    condition = condition_from_args(args)
    if condition:
        params["condition"] = condition
    if params["t"] is None and args.map in ("from_t", "denoiser"):
        raise ValueError(f"--map {args.map} needs --t, a timestep in [0, {model.num_train_timesteps})")
    with session(args) as backend:  # --ray: the same job, its latents sharded over Ray workers
        arrays, cache_record = run_in_foreground("descriptor_plane", model, params)
        ray_info = None if backend is None else backend.describe()
    record = {"model": args.model, "weights_hash": model.weights_hash, "map": args.map, "steps": args.steps,
              "t": params["t"], "anchors": args.anchors,
              "anchor_inputs": anchors_for(args.map) if seeds else None, "condition": condition, "n": args.grid,
              "extent": args.extent,
              "radius": float(arrays["radius"]), "n_directions": cache_record["params"]["n_directions"],
              "P": cache_record["params"]["n_directions"], "seed": args.seed, "dtype": args.dtype,
              "n_layer_calls": int(arrays["n_layer_calls"]) if "n_layer_calls" in arrays else None,
              "cache_key": cache_record["key"], "cache_hit": bool(cache_record.get("hit")),
              "ray": ray_info}
    return arrays, record


def run(args) -> int:
    start = time.perf_counter()
    arrays, record = compute(args)
    out = Path(args.out)
    out = out if out.suffix == ".npz" else out.with_name(out.name + ".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = ("psi", "nu", "nu_eff", "delta", "n_psi", "u", "v", "origin", "basis", "anchor_coords", "singular_values")
    np.savez(out, **{k: arrays[k] for k in keys if k in arrays})
    record["seconds"] = round(time.perf_counter() - start, 2)
    files.write_json(out.with_suffix(".json"), stamped(record))
    print(f"wrote {out} and {out.with_suffix('.json')} in {record['seconds']} s")
    return 0

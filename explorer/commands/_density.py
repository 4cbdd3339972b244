"""Shared by the geodesics and cluster commands: a model's training points and the density to use on them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from explorer.commands import _args


@dataclass
class PointsAndDensity:
    """Training points (a seeded subset), their labels, a log density, and the reference log p_ref."""

    X: np.ndarray
    labels: np.ndarray | None
    log_density: object
    log_p_ref: float
    info: dict = field(default_factory=dict)


def add_density_arguments(p, auto_sizes: bool = False) -> None:
    """The shared arguments; ``auto_sizes``: --k and --n-quad default to None, chosen from N and λ by the command
    (``explorer.geodesics.graph.default_k``, ``explorer.geodesics.quadrature.default_n_quad``)."""
    p.add_argument("--model", default="toy2d/ring", help="built-in model (default toy2d/ring)")
    p.add_argument("--n", type=_args.int_at_least(2), default=2000,
                   help="training points to use, a seeded subset (default 2000)")
    p.add_argument("--density", choices=["model", "kde"], default="model",
                   help="log p from the model's likelihood (its default_likelihood: 'discrete' for 2-D models, "
                        "the ODE with Hutchinson probes for image models) or a Gaussian KDE of the training data "
                        "(default model)")
    p.add_argument("--bandwidth", type=_args.positive_float, default=None, help="KDE bandwidth (default: Scott's rule)")
    p.add_argument("--lam", type=_args.positive_float, default=1.0, help="λ > 0 (default 1.0)")
    p.add_argument("--p0", type=_args.positive_float, default=1.0, help="p0 > 0 (default 1.0)")
    p.add_argument("--relative", action="store_true", help="λ and p0 in units of p_ref (median training density)")
    if auto_sizes:
        p.add_argument("--k", type=_args.positive_int, default=None,
                       help="neighbours of the symmetric k-NN graph (default: max(10, round(1.5 ln N)), N points)")
        p.add_argument("--n-quad", type=_args.positive_int, default=None,
                       help="Gauss–Legendre nodes per edge (default: 3 for λ ≥ 1, 5 below, λ in units of p_ref)")
    else:
        p.add_argument("--k", type=_args.positive_int, default=10,
                       help="neighbours of the symmetric k-NN graph (default 10)")
        p.add_argument("--n-quad", type=_args.positive_int, default=3,
                       help="Gauss–Legendre nodes per edge (default 3)")
    p.add_argument("--seed", type=_args.seed, default=0, help="seed of the subset and background points (default 0)")


def load_points_and_density(args) -> PointsAndDensity:
    """Points, labels and density for ``args`` (see ``add_density_arguments``), with provenance in ``info``: the same
    ``explorer.density.cached.make_density`` (and p_ref rule) as the app, so ``--relative --lam`` means the same
    metric in both."""
    from explorer.density.cached import REF_POINTS, make_density
    from explorer.models import load_model

    if args.n < 2:
        raise ValueError(f"--n must be at least 2; got {args.n}")
    model = load_model(args.model)
    if model.training_set is None:
        raise ValueError(f"model {args.model!r} has no training set to take graph points from")
    data = np.asarray(model.training_data(), dtype=np.float64).reshape(len(model.training_set), -1)
    labels = model.training_labels()
    idx = np.arange(len(data))
    if args.n < len(data):
        idx = np.sort(np.random.default_rng(args.seed).choice(len(data), size=args.n, replace=False))
    X = data[idx]
    labels = None if labels is None else np.asarray(labels)[idx]
    density = make_density(model, args.density, bandwidth=args.bandwidth)
    density.progress = _progress_printer("log p")
    if args.density == "model" and model.log_p_ref is not None:
        source = "model.log_p_ref (stored at training)"
    else:
        what = "model" if args.density == "model" else "KDE"
        source = (f"median {what} log density over up to {REF_POINTS} evenly spaced training points "
                  "(explorer.density.cached.reference_log_density)")
        if args.density == "model":
            print(f"note: the model has no stored log_p_ref; using the {source}: {density.log_p_ref:.4g}",
                  file=sys.stderr)
    info = {"model": args.model, "n_training": len(data), **density.info, "log_p_ref_source": source,
            "image_shape": model.image_shape}
    return PointsAndDensity(X, labels, density, density.log_p_ref, info)


def _progress_printer(what: str):
    """A ``progress(done, total)`` drawing a progress bar on stderr for evaluations that take more than a moment."""
    from explorer.jobs.console import ConsoleProgress

    bars: dict = {}

    def progress(done: int, total: int) -> None:
        bar = bars.get(total)
        if bar is None:
            bar = bars[total] = ConsoleProgress(f"{what} ({total:,} points)")
        bar(done / max(total, 1))
        if done >= total:
            bars.pop(total).close()

    return progress

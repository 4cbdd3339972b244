"""Shared by the geodesics and cluster commands: a model's training points and the density to use on them."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

REF_POINTS = 1000  # training points for the median log p when a model has no stored log_p_ref
#: Step of the central differences that give the 2-D models' log p its gradient for path refinement, in units of the
#: training data's RMS spread (toy2d/ring: 0.028; the slope agrees between steps 0.02 and 0.05 there).
FD_STEP = 0.02


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
    p.add_argument("--n", type=int, default=2000, help="training points to use, a seeded subset (default 2000)")
    p.add_argument("--density", choices=["model", "kde"], default="model",
                   help="log p from the model's likelihood (its default_likelihood: 'discrete' for 2-D models, "
                        "the ODE with Hutchinson probes for image models) or a Gaussian KDE of the training data "
                        "(default model)")
    p.add_argument("--bandwidth", type=float, default=None, help="KDE bandwidth (default: Scott's rule)")
    p.add_argument("--lam", type=float, default=1.0, help="λ > 0 (default 1.0)")
    p.add_argument("--p0", type=float, default=1.0, help="p0 > 0 (default 1.0)")
    p.add_argument("--relative", action="store_true", help="λ and p0 in units of p_ref (median training density)")
    if auto_sizes:
        p.add_argument("--k", type=int, default=None,
                       help="neighbours of the symmetric k-NN graph (default: max(10, round(1.5 ln N)), N points)")
        p.add_argument("--n-quad", type=int, default=None,
                       help="Gauss–Legendre nodes per edge (default: 3 for λ ≥ 1, 5 below, λ in units of "
                            "p_ref)")
    else:
        p.add_argument("--k", type=int, default=10, help="neighbours of the symmetric k-NN graph (default 10)")
        p.add_argument("--n-quad", type=int, default=3, help="Gauss–Legendre nodes per edge (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset and background points (default 0)")


def load_points_and_density(args) -> PointsAndDensity:
    """Points, labels and density for ``args`` (see ``add_density_arguments``), with provenance in ``info``."""
    from explorer.density import KernelDensity
    from explorer.models import load_model

    if args.n < 2:
        raise ValueError(f"--n must be at least 2; got {args.n}")
    model = load_model(args.model)
    data = np.asarray(model.training_data(), dtype=np.float64).reshape(len(model.training_data()), -1)
    labels = model.training_labels()
    idx = np.arange(len(data))
    if args.n < len(data):
        idx = np.sort(np.random.default_rng(args.seed).choice(len(data), size=args.n, replace=False))
    X = data[idx]
    labels = None if labels is None else np.asarray(labels)[idx]
    info = {"model": args.model, "n_training": len(data), "density": args.density}
    if args.density == "kde":
        kde = KernelDensity(data, bandwidth=args.bandwidth)
        log_density = kde
        info["bandwidth"] = kde.bandwidth
        log_p_ref = float(np.median(kde(data)))
        info["log_p_ref_source"] = "median KDE log density of the training data"
        info["gradient"] = "exact"
    else:
        if not hasattr(model, "log_prob"):
            raise ValueError(f"model {args.model!r} has no log_prob yet; use --density kde")

        likelihood = getattr(model, "default_likelihood", None) or {"method": "discrete"}
        info["likelihood"] = likelihood

        def log_density(P, chunk: int = 1024):
            P = np.asarray(P)
            if len(P) <= chunk:
                return model.log_prob(P, **likelihood)
            out, start = [], time.perf_counter()
            for i in range(0, len(P), chunk):
                out.append(model.log_prob(P[i:i + chunk], **likelihood))
                done = min(i + chunk, len(P))
                rate = done / max(time.perf_counter() - start, 1e-9)
                print(f"\r  log p: {done}/{len(P)} points ({rate:.0f}/s, about {(len(P) - done) / rate:.0f} s left)",
                      end="\n" if done == len(P) else "", file=sys.stderr, flush=True)
            return np.concatenate(out)

        if not hasattr(model, "denoiser"):  # a model with only log_prob: no gradient for --refine
            pass
        elif likelihood["method"] == "discrete":  # refine_path: central differences over a few linear regions
            from explorer.geodesics.interpolation import finite_difference_torch

            # not the exact a.e. gradient −J⁻ᵀz: with a ReLU network the density's slope lives in ψ's jumps between
            # linear regions, and −J⁻ᵀz points against it (see finite_difference_torch)
            step = FD_STEP * float(np.sqrt(np.mean(np.var(data, axis=0))))
            log_density.torch = finite_difference_torch(log_density, step)
            info["gradient"] = "exact"
            info["gradient_method"] = f"central differences of the exact log p, step {step:.3g}"
        else:  # the ODE estimate has no cheap gradient: the model's score at σ ≈ 0.1
            from explorer.density.score import score_log_density_torch

            log_density.torch = score_log_density_torch(model, log_density)
            info["gradient"] = "model score at sigma 0.1 (approximate)"

        if getattr(model, "log_p_ref", None) is not None:
            log_p_ref = float(model.log_p_ref)
            info["log_p_ref_source"] = "model.log_p_ref"
        else:
            sub = data[np.random.default_rng(0).choice(len(data), size=min(len(data), REF_POINTS), replace=False)]
            log_p_ref = float(np.median(log_density(sub)))
            info["log_p_ref_source"] = (f"median model log density of {len(sub)} training points "
                                        "(the model has no stored log_p_ref)")
            print(f"note: model has no stored log_p_ref; using {info['log_p_ref_source']}: {log_p_ref:.4g}",
                  file=sys.stderr)
    info["log_p_ref"] = log_p_ref
    info["image_shape"] = getattr(model, "image_shape", None)
    return PointsAndDensity(X, labels, log_density, log_p_ref, info)

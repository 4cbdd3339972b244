"""The one density object of the CLI and the app: a log density over data space whose evaluations are cached on
disk by the content of their input, with the one rule for p_ref, the unit of relative λ and p0 (DESIGN.md §3).

p_ref rule (``reference_log_density``): log p_ref is the median of the density over up to ``REF_POINTS`` evenly
spaced training points (every ⌊N / REF_POINTS⌋-th, at most REF_POINTS of them; a model with an expensive likelihood
sets fewer, ``model.ref_points``). For a model's own default likelihood it is computed once at training time and
stored in its record (``model.log_p_ref``), which is then used as is; the same rule gives the KDE's p_ref, and an
uploaded data set's. Points are in the space the density is over: a latent diffusion model's training images are
encoded first (``model.encode``). A diffusion model without a training set takes the median over x_0 of its own
samples (``reference_samples``: the latents of seeds 0 … n − 1, under the density's conditioning), a fixed set, so the
unit does not move when graph points are added. The CLI (``--relative``) and the app both call ``make_density``, so
the same parameters mean the same metric in both.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from explorer import cache, distributed

#: Training points the median of p_ref is taken over (evenly spaced).
REF_POINTS = 1000
#: Step of the central differences that give a discrete (exact) model log p its gradient for path refinement, in
#: units of the training data's RMS spread (toy2d/ring: 0.028; the slope agrees between steps 0.02 and 0.05 there).
FD_STEP = 0.02


def content_hash(a) -> str:
    """A short hash of an array's float64 content and shape (the cache key of a set of points)."""
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    return hashlib.sha256(a.tobytes() + str(a.shape).encode()).hexdigest()[:20]


def flat_points(x) -> np.ndarray:
    """Points (N, *shape) as float64 rows (N, D)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def reference_points(data: np.ndarray, n: int = REF_POINTS) -> np.ndarray:
    """Up to ``n`` evenly spaced rows of ``data``: the points the median of p_ref is taken over."""
    data = flat_points(data)
    return data[:: max(1, len(data) // n)][:n]


def reference_log_density(log_density: Callable[[np.ndarray], np.ndarray], data: np.ndarray,
                          n: int = REF_POINTS) -> float:
    """log p_ref = the median of ``log_density`` over ``reference_points(data, n)`` (NaN ignored)."""
    values = np.asarray(log_density(reference_points(data, n)), dtype=np.float64)
    if not np.isfinite(values).any():
        raise ValueError("the density is −inf or NaN at every reference point; p_ref is undefined")
    return float(np.nanmedian(values))


@dataclass
class Density:
    """log p over data space, disk-cached per call by the content of its input.

    ``fn``: the log density (M, D) → (M,). ``source``: ``model`` (the model's ``default_likelihood``) or ``kde``.
    ``log_p_ref``: the reference log density (``reference_log_density``). ``weights_hash``: the cache key of what
    defines the density (the model, or the KDE's points). ``ident``: its parameters (in every cache key and
    record). ``torch``: the same log density as a torch-differentiable map for path refinement, or None;
    ``gradient``: what its gradient is ("exact": of this very log p; "approximate": e.g. the model's score).
    ``progress(done, total)``: called per chunk of ``chunk`` points of a large evaluation. ``remote``: how the
    workers of a Ray backend evaluate ``fn`` (explorer.distributed.compute.log_density): (model, kwargs) when ``fn``
    is ``model.log_density(**kwargs)``, (model, fn) to ship ``fn`` itself; None: always evaluated here.
    """

    fn: Callable
    source: str
    log_p_ref: float
    weights_hash: str
    ident: dict
    torch: Callable | None = None
    gradient: str | None = None
    chunk: int = 4096
    #: the conditioning of a conditional model's density (log p(x | c), guidance scale 1); {} otherwise
    condition: dict = field(default_factory=dict)
    n_evals: int = 0
    remote: tuple | None = field(default=None, repr=False, compare=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @property
    def progress(self) -> Callable | None:
        """``progress(done, total)`` of the calling thread (a shared density reports only to whoever set it)."""
        return getattr(self._local, "progress", None)

    @progress.setter
    def progress(self, fn: Callable | None) -> None:
        self._local.progress = fn

    def __call__(self, P) -> np.ndarray:
        P = flat_points(P)
        progress = self.progress

        def compute():
            self.n_evals += len(P)
            backend = distributed.active()
            if backend is not None:  # the same chunks, on the workers of a Ray cluster
                from explorer.distributed.compute import log_density

                out = log_density(backend, self, P, progress)
                if out is not None:
                    return {"log_p": out}
            out = np.empty(len(P))
            for s in range(0, len(P), self.chunk):
                out[s:s + self.chunk] = np.asarray(self.fn(P[s:s + self.chunk]), dtype=np.float64).reshape(-1)
                if progress is not None:
                    progress(min(s + self.chunk, len(P)), len(P))
            return {"log_p": out}

        arrays, _ = cache.cached("logp", {**self.ident, "points": content_hash(P), "n": len(P)}, compute,
                                 weights_hash=self.weights_hash, dtype="float64")
        return arrays["log_p"]

    @property
    def info(self) -> dict:
        return {**self.ident, "log_p_ref": self.log_p_ref}


def has_likelihood(model) -> bool:
    return bool(model.capabilities.likelihoods)


def make_density(model, source: str = "model", data: np.ndarray | None = None, name: str | None = None,
                 bandwidth: float | None = None, condition: dict | None = None) -> Density:
    """The log density the CLI and the pages use: ``model`` (its ``default_likelihood``, over the space the
    diffusion runs in; ``condition``: a class or prompt of a conditional model, log p(x | c) at guidance scale 1) or
    ``kde`` (a Gaussian KDE of the training data, or of uploaded ``data``; ``bandwidth`` None: Scott's rule)."""
    from explorer.density.analytic import KernelDensity

    condition = dict(condition or {})
    if condition and source != "model":
        raise ValueError("conditioning applies to the model's own density only; use source='model'")
    if source == "kde":
        if data is None and model.training_set is None:
            raise ValueError(f"model {model.name!r} has no training set to fit a KDE on; give data")
        pts = flat_points(model.training_data() if data is None else data)
        kde = KernelDensity(pts, bandwidth=bandwidth)
        whash = content_hash(pts) if data is not None else model.weights_hash
        ident = {"source": "kde", "bandwidth": kde.bandwidth, "data": name or model.name}
        dens = Density(kde, "kde", 0.0, whash, ident, torch=kde.torch, gradient="exact", remote=(model, kde))
        dens.log_p_ref = reference_log_density(dens, pts)
        return dens
    if source == "model":
        if not has_likelihood(model):
            raise ValueError(f"model {model.name!r} has no likelihood; use the KDE density")
        condition = model.canonical_condition(condition)
        if "guidance_scale" in condition:
            raise ValueError("the model's density is measured at guidance_scale 1 (a guided flow is not a density); "
                             f"got guidance_scale {condition['guidance_scale']:g}: drop it from the density's "
                             "conditioning")
        condition.pop("negative_prompt", None)  # only guidance uses it
        likelihood = dict(model.default_likelihood)
        ident = {"source": "model", **likelihood, "steps": model.default_steps}
        if condition:
            ident["condition"] = condition
        dens = Density(model.log_density(**condition), "model", 0.0, model.weights_hash, ident, condition=condition,
                       remote=(model, condition))
        dens.torch, dens.gradient = _torch_log_density(model, likelihood, dens, condition)
        dens.log_p_ref = model_log_p_ref(model, dens, condition)
        return dens
    raise ValueError(f"density source must be 'model' or 'kde'; got {source!r}")


def model_log_p_ref(model, density: Density, condition: dict | None = None) -> float:
    """log p_ref of the model's density (the module docstring's rule): the stored ``model.log_p_ref`` (unconditional
    density only), else the median over ``model.ref_points`` training points (encoded for latent models), else over
    x_0 of as many of the model's samples (``reference_samples``)."""
    n = int(getattr(model, "ref_points", None) or REF_POINTS)
    if model.log_p_ref is not None and not condition:
        return float(model.log_p_ref)
    if model.training_set is not None:
        pts = reference_points(model.training_data(), n)
        if model.decode_module() is not None:
            pts = flat_points(model.encode(pts))
        return reference_log_density(density, pts, n)
    if model.capabilities.diffusion:
        return reference_log_density(density, reference_samples(model, n, condition), n)
    raise ValueError(f"model {model.name!r} has no stored log_p_ref and no training set to compute it on")


def reference_samples(model, n: int, condition: dict | None = None) -> np.ndarray:
    """x_0 (flat, float64) of the model's samples from the latents of seeds 0 … n − 1 under ``condition`` at
    guidance scale 1 (``model.sample_x0``), disk-cached: the points of p_ref for a model without a training set."""
    condition = dict(condition or {})
    params = {"n": int(n), "steps": model.default_steps, "model": model.name, "condition": condition}

    def compute():
        import torch

        from explorer.device import compute_view

        view = compute_view(model)
        z = torch.stack([model.latent_of_seed(s) for s in range(int(n))])
        x0 = view.run_batched(view.x0_generator(**condition), z, model.latent_shape)
        return {"x0": x0.reshape(int(n), -1)}

    arrays, _ = cache.cached("reference_samples", params, compute, weights_hash=model.weights_hash)
    return np.asarray(arrays["x0"], dtype=np.float64)


def _torch_log_density(model, likelihood: dict, density: Density,
                       condition: dict | None = None) -> tuple[Callable | None, str | None]:
    """The model density as a torch-differentiable map and what its gradient is: for the discrete (exact) density,
    central differences of that log p over a step of FD_STEP × the training data's RMS spread ("exact": of the
    reported log p itself; ``explorer.geodesics.interpolation.finite_difference_torch`` says why not the a.e.
    gradient −J⁻ᵀz, which points against the slope of a ReLU model's piecewise log p); the model's score at σ ≈ 0.1
    for the ODE estimate ("approximate", explorer.density.score); (None, None) without a diffusion."""
    if not model.capabilities.diffusion:
        return None, None
    if likelihood.get("method") == "discrete":
        if model.training_set is None:
            from explorer.density.ddim import discrete_log_density_torch

            return discrete_log_density_torch(model), "approximate"
        from explorer.geodesics.interpolation import finite_difference_torch

        data = flat_points(model.training_data())
        step = FD_STEP * float(np.sqrt(np.mean(np.var(data, axis=0))))
        return finite_difference_torch(density.fn, step), "exact"
    from explorer.density.score import score_log_density_torch

    return score_log_density_torch(model, density, condition=condition), "approximate"


_SECONDS_PER_POINT: dict[tuple, float] = {}


def likelihood_seconds_per_point(model, n: int = 48) -> float | None:
    """Measured seconds per point of the model's ``default_likelihood`` when it is not the toys' discrete
    inversion: ``log_prob`` of ``n`` training points after a 2-point warm-up, timed once per process and model.
    None for the discrete method (cheap) and for models without a likelihood or training set."""
    likelihood = dict(model.default_likelihood)
    if likelihood.get("method", "discrete") == "discrete" or model.training_set is None:
        return None
    key = (model.name, model.weights_hash, repr(sorted(likelihood.items())))
    if key not in _SECONDS_PER_POINT:
        x = flat_points(model.training_set.data(np.arange(min(n + 2, len(model.training_set)))))
        model.log_prob(x[:2], **likelihood)
        start = time.perf_counter()
        model.log_prob(x[2:], **likelihood)
        _SECONDS_PER_POINT[key] = (time.perf_counter() - start) / max(1, len(x) - 2)
    return _SECONDS_PER_POINT[key]

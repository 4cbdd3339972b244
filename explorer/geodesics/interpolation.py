"""Interpolation along generative geodesics: straight lines, profiles of p and c along a polyline, refinement.

A polyline x_0, …, x_S has the discretised metric length L = Σ_s ‖x_{s+1} − x_s‖ Σ_q ω_q c(x_s + t_q (x_{s+1} − x_s)),
c = (p0 + λ)/(p + λ) in log space (λ, p0 in units of p_ref = exp(log_p_ref)). ``refine_path`` minimises L over the
interior points with L-BFGS, gradients through a torch-differentiable log density: without it a geodesic on
images is only a chain of training images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from explorer.density.analytic import as_points
from explorer.geodesics.estimator import _positive, evaluate_log_density
from explorer.geodesics.metric import log_conformal_factor
from explorer.geodesics.quadrature import gauss_legendre_01


def _logs(lam: float, p0: float, log_p_ref: float) -> tuple[float, float]:
    return math.log(_positive(lam, "lam")) + log_p_ref, math.log(_positive(p0, "p0")) + log_p_ref


def straight_line(a, b, n: int = 64) -> np.ndarray:
    """``n`` equally spaced points from ``a`` to ``b`` (both included): ``(n, D)``."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same dimension; got {a.shape} and {b.shape}")
    if n < 2:
        raise ValueError(f"n must be at least 2; got {n}")
    t = np.linspace(0.0, 1.0, int(n))[:, None]
    return a[None] + t * (b - a)[None]


def resample_polyline(points, n: int) -> np.ndarray:
    """``n`` points equally spaced in arc length along the polyline ``points`` (endpoints kept)."""
    P = as_points(points, name="points")
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(P, axis=0), axis=1))]
    if s[-1] == 0:
        return np.repeat(P[:1], n, axis=0)
    u = np.linspace(0.0, s[-1], int(n))
    return np.stack([np.interp(u, s, P[:, d]) for d in range(P.shape[1])], axis=1)


def subdivide(points, max_step: float | None) -> np.ndarray:
    """The same polyline with every segment longer than ``max_step`` cut into ⌈‖Δ‖/max_step⌉ equal pieces (its
    vertices kept): the curve does not change, only how finely a quadrature samples it. ``None``: unchanged."""
    P = as_points(points, name="points")
    if max_step is None or len(P) < 2:
        return P
    max_step = _positive(max_step, "max_step")
    seg = np.linalg.norm(np.diff(P, axis=0), axis=1)
    pieces = np.maximum(1, np.ceil(seg / max_step - 1e-9).astype(np.int64))
    u = np.concatenate([np.arange(n) / n for n in pieces])
    start = np.repeat(np.arange(len(seg)), pieces)
    return np.concatenate([P[start] + u[:, None] * (P[start + 1] - P[start]), P[-1:]])


def discrete_length(points, log_density: Callable, lam: float = 1.0, p0: float = 1.0, n_quad: int = 3,
                    log_p_ref: float = 0.0, max_step: float | None = None) -> float:
    """The discretised metric length L of the polyline ``points`` with ``n_quad``-point Gauss–Legendre per segment.

    ``max_step``: first cut every segment into pieces no longer than that (``subdivide``), so that the rule
    resolves c on long segments. With one ``max_step`` for every path this is a measure of the curves themselves
    that does not depend on how many vertices each polyline has (a vertex added on a straight segment changes
    nothing), and it converges to ∫ c ds of each polyline as ``max_step`` → 0. This is the one measure the three
    paths are compared with (``three_paths.compare_paths``) and refined lengths are reported in.
    """
    P = subdivide(points, max_step)
    log_lam, log_p0 = _logs(lam, p0, log_p_ref)
    t, w = gauss_legendre_01(n_quad)
    A, B = P[:-1], P[1:]
    Q = (A[:, None, :] + t[None, :, None] * (B - A)[:, None, :]).reshape(-1, P.shape[1])
    log_c = log_conformal_factor(evaluate_log_density(log_density, Q, 65536).reshape(len(A), -1), log_lam, log_p0)
    seg = np.linalg.norm(B - A, axis=1)
    with np.errstate(divide="ignore"):
        return float(np.sum(np.exp(np.log(seg) + np.logaddexp.reduce(log_c + np.log(w), axis=1))))


def profile_along(path_points, log_density: Callable, lam: float = 1.0, p0: float = 1.0, log_p_ref: float = 0.0,
                  n_between: int = 0) -> dict:
    """log p and c along a polyline, ``n_between`` extra points per segment.

    Returns ``points``, ``arclength`` (Euclidean, from the start), ``log_p``, ``c`` and ``metric_length``
    (∫ c ds by the trapezoid rule over those points).
    """
    P = as_points(path_points, name="path_points")
    if n_between > 0:
        t = np.arange(n_between + 1) / (n_between + 1)
        sub = P[:-1, None, :] + t[None, :, None] * np.diff(P, axis=0)[:, None, :]
        P = np.concatenate([sub.reshape(-1, P.shape[1]), P[-1:]])
    log_lam, log_p0 = _logs(lam, p0, log_p_ref)
    log_p = evaluate_log_density(log_density, P, 65536)
    c = np.exp(log_conformal_factor(log_p, log_lam, log_p0))
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(P, axis=0), axis=1))]
    length = float(np.sum(0.5 * (c[1:] + c[:-1]) * np.diff(s)))
    return {"points": P, "arclength": s, "log_p": log_p, "c": c, "metric_length": length}


def _values(log_density: Callable, X: np.ndarray) -> np.ndarray:
    """log p at the rows of X, NaN (undefined) allowed."""
    v = log_density(X)
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64).reshape(len(X))


class _FiniteDifferenceLogDensity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, log_density, step):
        ctx.save_for_backward(x)
        ctx.log_density, ctx.step = log_density, step
        return torch.as_tensor(_values(log_density, x.detach().cpu().numpy()), dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        X = x.detach().cpu().numpy()
        n, d = X.shape
        E = ctx.step * np.eye(d)
        shifted = np.concatenate([X[:, None, :] + E[None], X[:, None, :] - E[None]], axis=1).reshape(-1, d)
        v = _values(ctx.log_density, shifted).reshape(n, 2, d)
        g = np.nan_to_num((v[:, 0] - v[:, 1]) / (2 * ctx.step), nan=0.0, posinf=0.0, neginf=0.0)
        return torch.as_tensor(g, dtype=x.dtype) * grad_out.unsqueeze(-1), None, None


def finite_difference_torch(log_density: Callable, step: float) -> Callable:
    """``log_density`` (numpy, (M, D) → (M,)) as a torch map whose values are its own and whose gradient is the
    central difference (log p(x + h e_i) − log p(x − h e_i))/2h with h = ``step``: 2D extra evaluations per point.

    What the refinement of the toy models needs. Their exact density log p = log N(G⁻¹x) − ψ(G⁻¹x) has an exact
    gradient almost everywhere, −J_G⁻ᵀz (``explorer.density.ddim.discrete_log_density_torch``), but with a ReLU
    network ψ is piecewise constant and the ring's concentration is carried by ψ's jumps between linear regions
    (a few hundredths apart, up to 0.3 nats each). Measured on toy2d/ring along its graph geodesic at λ = 0.05:
    the a.e. gradient points against the central difference with h = 0.001 at most points (median cosine −0.49)
    and agrees only at h = 1e-5, inside one region; differences at h = 0.02 and 0.05 agree with each other
    (median cosine 0.98). So the a.e. gradient drives a path the wrong way (L-BFGS stalls 20 % above the eikonal
    length, Adam climbs), and a difference over a few regions gives the slope that matters.
    """
    step = _positive(step, "step")

    def fn(x: torch.Tensor) -> torch.Tensor:
        out = _FiniteDifferenceLogDensity.apply(x, log_density, step)
        return torch.where(torch.isnan(out), torch.full_like(out, -math.inf), out)

    fn.step = step
    return fn


STALLED = 1e-3  # relative L-BFGS progress below which the descent fallback runs
RESTART_GAIN = 1e-3  # relative progress of one L-BFGS run above which ``restarts`` starts another
SMALL_PROBLEM = 200_000  # quadrature coordinates per evaluation below which one torch thread is faster


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Temporarily run torch ops on ``n`` threads (small problems pay more for thread hand-offs than they gain)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class RefinedPath:
    """Result of ``refine_path``: the smoothed polyline and its discretised metric length before and after."""

    points: np.ndarray
    length_before: float
    length_after: float
    n_evals: int


def torch_polyline_length(P: torch.Tensor, log_density_torch: Callable, log_lam: float, log_p0: float,
                          t: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
    """L(P) = Σ_s ‖Δ_s‖ Σ_q ω_q c(x_s + t_q Δ_s) as a differentiable torch scalar (log-sum-exp over q).

    ``t``: nodes (Q,) shared by every segment, or (S, Q), one row per segment."""
    seg = P[1:] - P[:-1]
    tt = t[None, :, None] if t.ndim == 1 else t[:, :, None]
    Q = P[:-1, None, :] + tt * seg[:, None, :]
    log_p = log_density_torch(Q.reshape(-1, P.shape[1])).reshape(len(seg), -1)
    log_c = math.log(math.exp(log_p0 - log_lam) + 1.0) + log_lam - torch.logaddexp(
        log_p, torch.full_like(log_p, log_lam))
    log_len = 0.5 * torch.log((seg ** 2).sum(-1) + 1e-300)
    return torch.exp(log_len + torch.logsumexp(log_c + log_w[None], dim=1)).sum()


def refine_path(points, log_density_torch: Callable, lam: float = 1.0, p0: float = 1.0, n_quad: int = 3,
                log_p_ref: float = 0.0, n_points: int | None = None, max_iter: int = 200,
                tol: float = 1e-10, num_threads: int | None = None, restarts: int = 0) -> RefinedPath:
    """Minimise the discretised metric length over the interior points of a polyline (endpoints fixed).

    ``log_density_torch`` maps a float64 torch tensor ``(M, D)`` to ``(M,)`` log p, differentiably.
    ``n_points`` first resamples the polyline to that many points equally spaced in arc length.
    L-BFGS (strong Wolfe line search), and when that makes no progress (a noisy density, an approximate
    gradient such as the model's score) a normalised gradient descent that keeps only improving steps; the
    result is never longer than the input. ``restarts``: up to that many further L-BFGS runs, each from where the
    last stopped with a fresh memory, while one gains more than RESTART_GAIN (a rough L, such as the toy models'
    piecewise density, ends line searches early). ``num_threads``: torch threads while optimising (default: 1 for
    small polylines, where thread hand-offs cost more than they gain; the current setting otherwise).
    """
    P = as_points(points, name="points")
    if len(P) < 2:
        raise ValueError("points must hold at least 2 points (the endpoints)")
    if n_points is not None:
        if n_points < 2:
            raise ValueError(f"n_points must be at least 2; got {n_points}")
        P = resample_polyline(P, n_points)
    log_lam, log_p0 = _logs(lam, p0, log_p_ref)
    t_np, w_np = gauss_legendre_01(n_quad)
    t, log_w = torch.tensor(t_np), torch.log(torch.tensor(w_np))
    ends = torch.tensor(P[[0, -1]])
    inner = torch.tensor(P[1:-1], requires_grad=True)
    n_evals = 0

    def length() -> torch.Tensor:
        nonlocal n_evals
        n_evals += 1
        full = torch.cat([ends[:1], inner, ends[1:]])
        return torch_polyline_length(full, log_density_torch, log_lam, log_p0, t, log_w)

    if num_threads is None:
        num_threads = 1 if P.size * len(t_np) < SMALL_PROBLEM else torch.get_num_threads()
    with _torch_threads(int(num_threads)):
        return _minimise(P, length, inner, max_iter, tol, lambda: n_evals, restarts)


def _minimise(P: np.ndarray, length: Callable, inner: torch.Tensor, max_iter: int, tol: float,
              n_evals: Callable[[], int], restarts: int = 0) -> RefinedPath:
    with torch.no_grad():
        before = float(length())
    if len(P) > 2:
        best, best_inner = before, inner.detach().clone()
        for _ in range(1 + int(restarts)):  # a fresh L-BFGS memory after a line search gives up on a rough L
            opt = torch.optim.LBFGS([inner], lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=tol,
                                    line_search_fn="strong_wolfe")

            def closure(opt=opt) -> torch.Tensor:
                opt.zero_grad()
                L = length()
                L.backward()
                return L

            opt.step(closure)
            with torch.no_grad():
                now = float(length())
            if not (now < best and torch.isfinite(inner).all()):  # e.g. noisy values, approximate gradients
                with torch.no_grad():
                    inner.copy_(best_inner)
                break
            gain = (best - now) / best
            best, best_inner = now, inner.detach().clone()
            if gain < RESTART_GAIN:
                break
        if best > (1 - STALLED) * before:  # (almost) no progress: descend from where L-BFGS stopped
            _descent(length, inner, best, max_iter, 0.05 * float(np.mean(np.linalg.norm(np.diff(P, axis=0), axis=1))))
    with torch.no_grad():
        after = float(length())
    out = np.concatenate([P[:1], inner.detach().numpy(), P[-1:]])
    if not (after <= before) or not np.isfinite(out).all():
        out, after = P, before
    return RefinedPath(points=out, length_before=before, length_after=after, n_evals=n_evals())


def _descent(length: Callable, inner: torch.Tensor, best: float, max_iter: int, step: float) -> None:
    """The fallback when L-BFGS's line search stalls: steps of length ``step`` along −∇L/‖∇L‖, kept only when L
    decreases (doubling the step then, else quartering it, eight tries per iteration)."""
    for _ in range(max_iter):
        inner.grad = None
        L = length()
        L.backward()
        g = inner.grad.detach().clone()
        gn = float(g.norm())
        if not np.isfinite(gn) or gn == 0:
            return
        for _ in range(8):
            with torch.no_grad():
                old = inner.detach().clone()
                inner -= step * g / gn
                new = float(length())
            if new < best:
                best, step = new, 2 * step
                break
            with torch.no_grad():
                inner.copy_(old)
            step *= 0.25
        else:
            return


#: L-BFGS tolerance of ``refine_shortest`` (the absolute 1e-10 of ``refine_path`` keeps long paths iterating for
#: nothing). Not scaled by the length: torch's L-BFGS applies the one tolerance to changes of L and to the
#: coordinates' steps, so 1e-7 · L would stop a path of L = 8e6 (a Gaussian at λ = 1e-12) after steps of 0.8.
REFINE_TOL = 1e-7


@dataclass
class ShortestPath:
    """Result of ``refine_shortest``: the shortest polyline found and how it was chosen, every length under one
    measure (``discrete_length`` with ``max_step`` and ``n_quad``)."""

    points: np.ndarray
    length: float
    start: str
    lengths: dict
    length_refined: float | None
    refinement: RefinedPath | None
    max_step: float
    n_quad: int

    @property
    def refined(self) -> bool:
        """Whether the refined polyline was kept (it was shorter than its start under the measure)."""
        return self.length_refined is not None and self.length_refined == self.length


def refine_shortest(candidates: dict, log_density: Callable, log_density_torch: Callable | None = None,
                    lam: float = 1.0, p0: float = 1.0, n_quad: int = 3, log_p_ref: float = 0.0,
                    max_step: float | None = None, max_points: int = 64, max_iter: int = 200,
                    refine_quad: int | None = None, restarts: int = 0) -> ShortestPath:
    """The shortest of several paths between the same two points, refined under the continuous metric.

    ``candidates``: {name: polyline (m ≥ 2, D)} with common first and last points (e.g. the graph geodesic and the
    straight segment). Each is measured by ``discrete_length`` with ``max_step`` (default ‖b − a‖/32) and
    ``n_quad``; the shortest is resampled to ⌈its Euclidean length / max_step⌉ + 1 points (at most ``max_points``,
    at least 3) and moved by ``refine_path`` (gradients from ``log_density_torch``, ``refine_quad`` nodes per
    segment (default ``n_quad``), ``max_iter``, ``restarts``; ``log_density_torch`` None: no refinement); the
    refined polyline is kept only when it is shorter under the same measure. So the result is never longer than
    any candidate, and the refinement's own quadrature cannot flatter it: L-BFGS on a coarse rule can park the
    nodes in dense spots while the segments between them cross empty space (measured on digits/full: a refined
    path of 0.537 by its own 3-node rule measured 1.20 with segments cut to 0.5).
    """
    if not candidates:
        raise ValueError("candidates must hold at least one path")
    paths = {name: as_points(P, name=f"candidates[{name!r}]") for name, P in candidates.items()}
    first = next(iter(paths.values()))
    for name, P in paths.items():
        if len(P) < 2 or P.shape[1] != first.shape[1] or not (
                np.allclose(P[0], first[0]) and np.allclose(P[-1], first[-1])):
            raise ValueError(f"candidate {name!r} must run between the same two points as the others")
    a, b = first[0], first[-1]
    if max_step is None:
        max_step = max(float(np.linalg.norm(b - a)), 1e-12) / 32
    kw = {"lam": lam, "p0": p0, "log_p_ref": log_p_ref, "n_quad": n_quad, "max_step": max_step}
    lengths = {name: discrete_length(P, log_density, **kw) for name, P in paths.items()}
    start = min(lengths, key=lengths.get)
    best, best_length = paths[start], lengths[start]
    refinement, refined_length = None, None
    if log_density_torch is not None:
        euclid = float(np.linalg.norm(np.diff(best, axis=0), axis=1).sum())
        m = int(min(max_points, max(3, np.ceil(euclid / max_step) + 1)))
        refinement = refine_path(best, log_density_torch, lam=lam, p0=p0, log_p_ref=log_p_ref, n_points=m,
                                 n_quad=n_quad if refine_quad is None else refine_quad, max_iter=max_iter,
                                 restarts=restarts, tol=REFINE_TOL)
        refined_length = discrete_length(refinement.points, log_density, **kw)
        if refined_length < best_length:
            best, best_length = refinement.points, refined_length
    return ShortestPath(points=best, length=best_length, start=start, lengths=lengths,
                        length_refined=refined_length, refinement=refinement, max_step=float(max_step),
                        n_quad=int(n_quad))


#: The reported, refined geodesic's sizes (the CLI's default and the Geodesics page's): its measure cuts segments to
#: ‖b − a‖/MEASURE_PIECES, at most REFINE_POINTS vertices, REFINE_QUAD nodes per segment in the refinement's own
#: objective, and REFINE_RESTARTS further L-BFGS runs while one gains more than 0.1 % (toy2d/ring's piecewise
#: density ends line searches early).
MEASURE_PIECES = 64
REFINE_POINTS = 64
REFINE_QUAD = 3
REFINE_RESTARTS = 4


def refine_graph_geodesic(path_points, log_density: Callable, log_density_torch: Callable | None, lam: float = 1.0,
                          p0: float = 1.0, n_quad: int = 3, log_p_ref: float = 0.0,
                          max_points: int = REFINE_POINTS) -> ShortestPath:
    """``refine_shortest`` of a graph geodesic (its nodes, (m, D)) and the straight segment between its ends, with
    the sizes above: the length the explorer reports beside the graph's (issue 11, item 19: the k-NN graph's
    zig-zag makes a graph length 7 % too long at λ = 5 and 25 % at λ = 0.05 on toy2d/ring, 500 points; refined,
    0.1 % at λ = 5: bench/RESULTS.md)."""
    P = as_points(path_points, name="path_points")
    a, b = P[0], P[-1]
    return refine_shortest({"graph": P, "straight": np.stack([a, b])}, log_density, log_density_torch, lam=lam,
                           p0=p0, n_quad=n_quad, log_p_ref=log_p_ref,
                           max_step=max(float(np.linalg.norm(b - a)), 1e-12) / MEASURE_PIECES,
                           max_points=max_points, refine_quad=REFINE_QUAD, restarts=REFINE_RESTARTS)

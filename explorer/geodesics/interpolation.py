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


def discrete_length(points, log_density: Callable, lam: float = 1.0, p0: float = 1.0, n_quad: int = 3,
                    log_p_ref: float = 0.0) -> float:
    """The discretised metric length L of the polyline ``points`` with ``n_quad``-point Gauss–Legendre per segment."""
    P = as_points(points, name="points")
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


STALLED = 1e-3  # relative L-BFGS progress below which the descent fallback runs
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
    """L(P) = Σ_s ‖Δ_s‖ Σ_q ω_q c(x_s + t_q Δ_s) as a differentiable torch scalar (log-sum-exp over q)."""
    seg = P[1:] - P[:-1]
    Q = P[:-1, None, :] + t[None, :, None] * seg[:, None, :]
    log_p = log_density_torch(Q.reshape(-1, P.shape[1])).reshape(len(seg), -1)
    log_c = math.log(math.exp(log_p0 - log_lam) + 1.0) + log_lam - torch.logaddexp(
        log_p, torch.full_like(log_p, log_lam))
    log_len = 0.5 * torch.log((seg ** 2).sum(-1) + 1e-300)
    return torch.exp(log_len + torch.logsumexp(log_c + log_w[None], dim=1)).sum()


def refine_path(points, log_density_torch: Callable, lam: float = 1.0, p0: float = 1.0, n_quad: int = 3,
                log_p_ref: float = 0.0, n_points: int | None = None, max_iter: int = 200,
                tol: float = 1e-10, num_threads: int | None = None) -> RefinedPath:
    """Minimise the discretised metric length over the interior points of a polyline (endpoints fixed).

    ``log_density_torch`` maps a float64 torch tensor ``(M, D)`` to ``(M,)`` log p, differentiably.
    ``n_points`` first resamples the polyline to that many points equally spaced in arc length.
    L-BFGS (strong Wolfe line search), and when that makes no progress (a noisy density, an approximate
    gradient such as the model's score) a normalised gradient descent that keeps only improving steps; the
    result is never longer than the input. ``num_threads``: torch threads while optimising (default: 1 for
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
        return _minimise(P, length, inner, max_iter, tol, lambda: n_evals)


def _minimise(P: np.ndarray, length: Callable, inner: torch.Tensor, max_iter: int, tol: float,
              n_evals: Callable[[], int]) -> RefinedPath:
    with torch.no_grad():
        before = float(length())
    if len(P) > 2:
        opt = torch.optim.LBFGS([inner], lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=tol,
                                line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            L = length()
            L.backward()
            return L

        opt.step(closure)
        with torch.no_grad():
            after = float(length())
        if not (after < before and torch.isfinite(inner).all()):  # e.g. noisy values, approximate gradients
            with torch.no_grad():
                inner.copy_(torch.from_numpy(P[1:-1]))
            after = before
        if after > (1 - STALLED) * before:  # (almost) no progress: descend from where L-BFGS stopped
            _descent(length, inner, after, max_iter, 0.05 * float(np.mean(np.linalg.norm(np.diff(P, axis=0), axis=1))))
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

"""The conformal factor c = (p0 + λ)/(p + λ) and edge weights, in log space (DESIGN.md §3).

log c = logaddexp(log p0, log λ) − logaddexp(log p, log λ), so densities of 1e-300 or 1e300 neither
overflow nor vanish. Edge weight w_ij = ‖x_j − x_i‖ Σ_q ω_q c(x_q), clamped to [W_MIN, W_MAX] with a
warning: a zero weight is dropped by scipy's sparse graphs and an infinite one acts as a missing edge;
both would fake a disconnected graph.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

W_MIN = 1e-300
W_MAX = 1e290  # a path of up to 1e15 clamped edges still sums to a finite float64
_LOG_SAFE = 600.0  # |log c| below this: exp() of it times a length cannot overflow or vanish


def log_conformal_factor(log_p, log_lam: float, log_p0: float) -> np.ndarray:
    """log c(x) = log(p0 + λ) − log(p(x) + λ), from log p, log λ and log p0 (any shapes that broadcast)."""
    return np.logaddexp(log_p0, log_lam) - np.logaddexp(log_p, log_lam)


def conformal_factor(log_p, lam: float = 1.0, p0: float = 1.0) -> np.ndarray:
    """c(x) = (p0 + λ)/(p(x) + λ) from log p (λ, p0 > 0 in absolute density units)."""
    return np.exp(log_conformal_factor(np.asarray(log_p, dtype=np.float64), math.log(lam), math.log(p0)))


def edge_weights(lengths: np.ndarray, log_p_quad: np.ndarray, w_quad: np.ndarray,
                 log_lam: float, log_p0: float, warn: bool = True) -> np.ndarray:
    """w_e = ‖x_j − x_i‖ Σ_q ω_q c(x_q) for every edge; ``log_p_quad`` is ``(E, Q)``, ``lengths`` ``(E,)``.

    Vectorized fast path when every log c is moderate; a log-sum-exp path otherwise. The result is
    clamped to [W_MIN, W_MAX] (a warning says how many edges were clamped).
    """
    log_c = log_conformal_factor(log_p_quad, log_lam, log_p0)
    lo, hi = (float(log_c.min()), float(log_c.max())) if log_c.size else (0.0, 0.0)
    if -_LOG_SAFE < lo and hi < _LOG_SAFE:
        w = lengths * (np.exp(log_c) @ w_quad)
    else:
        m = log_c.max(axis=1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        s = np.exp(log_c - m) @ w_quad
        with np.errstate(divide="ignore", over="ignore"):
            log_w = np.log(lengths) + m[:, 0] + np.log(s)
            w = np.exp(np.clip(log_w, -745.0, 709.0))
    bad = ~((w >= W_MIN) & (w <= W_MAX))
    if bad.any():
        n_bad = int(bad.sum())
        w = np.clip(np.nan_to_num(w, nan=W_MAX, posinf=W_MAX), W_MIN, W_MAX)
        if warn:
            warnings.warn(f"{n_bad} of {len(w)} edge weights fell outside [{W_MIN:g}, {W_MAX:g}] and were "
                          "clamped (extreme λ, p0 or densities); distances through them are bounds, not exact",
                          RuntimeWarning, stacklevel=3)
    return w

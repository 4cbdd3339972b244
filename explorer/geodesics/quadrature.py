"""Quadrature rules on [0, 1] for the metric length of a straight segment.

L(x_i → x_j) = ‖x_j − x_i‖ ∫_0^1 c(x_i + t (x_j − x_i)) dt ≈ ‖x_j − x_i‖ Σ_q ω_q c(x_i + t_q (x_j − x_i)).
Gauss–Legendre with n nodes is exact for polynomials of degree 2n − 1; the trapezoid rule's error falls
as m^-2 (DESIGN.md §3).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    t, w = np.polynomial.legendre.leggauss(n)
    t, w = 0.5 * (t + 1.0), 0.5 * w
    t.flags.writeable = False
    w.flags.writeable = False
    return t, w


def gauss_legendre_01(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes t_q ∈ (0, 1) and weights ω_q (summing to 1) of the n-point Gauss–Legendre rule on [0, 1]."""
    n = int(n)
    if n < 1:
        raise ValueError(f"n (quadrature nodes) must be at least 1; got {n}")
    return _gauss_legendre(n)


def trapezoid_01(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the composite trapezoid rule with ``m`` intervals (m + 1 nodes) on [0, 1]."""
    m = int(m)
    if m < 1:
        raise ValueError(f"m (trapezoid intervals) must be at least 1; got {m}")
    t = np.linspace(0.0, 1.0, m + 1)
    w = np.full(m + 1, 1.0 / m)
    w[[0, -1]] *= 0.5
    return t, w


def default_n_quad(lam_relative: float) -> int:
    """Gauss–Legendre nodes per edge for λ in units of p_ref: 3 for λ ≥ 1, 5 below.

    c = (p0 + λ)/(p + λ) follows 1/p more closely as λ falls: between modes, where p drops by orders of magnitude
    over one edge, c then changes by a factor up to (p0 + λ)/λ along it, and a 3-node rule misjudges such an edge
    (DESIGN.md §3). On toy2d/ring's default graph (edges of about 0.1) 3 nodes were still within 0.3 % of a fine
    rule at λ = 0.05 (the graph length 54.69 against 54.55); 5 nodes buy a margin for coarser graphs at 5/3 the
    cost, and the reported, refined length is measured by its own finer rule anyway.
    """
    return 3 if float(lam_relative) >= 1.0 else 5

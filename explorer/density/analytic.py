"""Analytic densities: a Gaussian mixture (tests, teaching) and a Gaussian kernel density estimate.

Both share the density interface of DESIGN.md §3: ``log_p = density(X)`` with ``X`` an ``(M, D)``
NumPy array or torch tensor and ``log_p`` an ``(M,)`` float64 NumPy array. ``density.torch(X)`` is
the same log density as a differentiable torch function (for path refinement).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def as_points(X, dim: int | None = None, name: str = "X") -> np.ndarray:
    """``X`` (NumPy array or torch tensor, ``(M, D)`` or ``(D,)``) as a C-contiguous float64 array."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1 and dim is not None and X.shape[0] == dim:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"{name} must be an (M, D) array of points; got shape {X.shape}")
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"{name} has {X.shape[1]} columns; this density is defined on D = {dim}")
    return np.ascontiguousarray(X)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log Σ exp(a) along ``axis`` without overflow; −inf where every term is −inf."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(a - m), axis=axis))


class GaussianMixtureDensity:
    """p(x) = Σ_k w_k N(x; μ_k, Σ_k).

    ``covs``: a scalar or a ``(K,)`` array is read as isotropic standard deviations (Σ_k = s_k² I);
    a ``(D, D)`` array is one covariance shared by all components; ``(K, D, D)`` one per component.
    ``weights`` default to uniform and are normalized to sum to 1.
    """

    def __init__(self, means, covs=1.0, weights=None, chunk_size: int = 65536):
        means = np.atleast_2d(np.asarray(means, dtype=np.float64))
        K, D = means.shape
        covs = np.asarray(covs, dtype=np.float64)
        if covs.ndim == 0 or (covs.ndim == 1 and covs.shape[0] == K):
            stds = np.broadcast_to(covs, (K,))
            if np.any(stds <= 0):
                raise ValueError("covs: standard deviations must be positive")
            covs = stds[:, None, None] ** 2 * np.eye(D)[None]
        elif covs.shape == (D, D):
            covs = np.broadcast_to(covs, (K, D, D))
        elif covs.shape != (K, D, D):
            raise ValueError(f"covs must be a scalar, ({K},), ({D}, {D}) or ({K}, {D}, {D}); got {covs.shape}")
        w = np.full(K, 1.0 / K) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (K,) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be {K} non-negative numbers with a positive sum")
        try:
            self.chol_ = np.linalg.cholesky(covs)
        except np.linalg.LinAlgError as err:
            raise ValueError("covs must be symmetric positive definite") from err
        self.means = means
        self.covs = np.array(covs)
        self.weights = w / w.sum()
        self.dim = D
        self.chunk_size = int(chunk_size)
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        log_det = 2.0 * np.log(np.diagonal(self.chol_, axis1=1, axis2=2)).sum(axis=1)
        self._log_norm = log_w - 0.5 * (log_det + D * math.log(2 * math.pi))  # (K,)
        self._chol_inv = np.linalg.inv(self.chol_)  # (K, D, D): L_k^{-1}

    def __repr__(self) -> str:
        return f"GaussianMixtureDensity(K={len(self.weights)}, D={self.dim})"

    def __call__(self, X) -> np.ndarray:
        """log p at each row of ``X`` (``(M, D)``) as a float64 array ``(M,)``."""
        X = as_points(X, self.dim)
        out = np.empty(X.shape[0])
        for s in range(0, X.shape[0], self.chunk_size):
            Z = X[s:s + self.chunk_size, None, :] - self.means[None]  # (m, K, D)
            Y = np.einsum("kde,mke->mkd", self._chol_inv, Z)
            out[s:s + self.chunk_size] = _logsumexp(self._log_norm[None] - 0.5 * (Y ** 2).sum(-1), axis=1)
        return out

    def torch(self, X: torch.Tensor) -> torch.Tensor:
        """The same log p as a differentiable torch function of ``X`` (``(M, D)`` → ``(M,)``)."""
        dt = X.dtype if X.is_floating_point() else torch.float64
        inv = torch.as_tensor(self._chol_inv, dtype=dt, device=X.device)
        mu = torch.as_tensor(self.means, dtype=dt, device=X.device)
        norm = torch.as_tensor(self._log_norm, dtype=dt, device=X.device)
        Y = torch.einsum("kde,mke->mkd", inv, X[:, None, :] - mu[None])
        return torch.logsumexp(norm[None] - 0.5 * (Y ** 2).sum(-1), dim=1)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` points drawn from p, ``(n, D)`` float64, reproducible from ``seed``."""
        rng = np.random.default_rng(seed)
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        eps = rng.standard_normal((n, self.dim))
        return self.means[comp] + np.einsum("nde,ne->nd", self.chol_[comp], eps)


class KernelDensity:
    """Gaussian kernel density estimate p(x) = (1/n) Σ_i N(x; x_i, h² I).

    ``bandwidth=None`` uses Scott's rule h = σ̄ · n^(−1/(D+4)), with σ̄ the root mean per-coordinate
    variance of ``X`` (one isotropic bandwidth). Evaluated by log-sum-exp, chunked over query points
    so that memory stays at ``chunk_size × n`` floats.
    """

    def __init__(self, X, bandwidth: float | None = None, chunk_size: int = 1024):
        X = as_points(X, name="X")
        n, D = X.shape
        if n < 1:
            raise ValueError("X must hold at least one point")
        if bandwidth is None:
            sigma = math.sqrt(float(np.mean(X.var(axis=0)))) if n > 1 else 1.0
            bandwidth = (sigma if sigma > 0 else 1.0) * n ** (-1.0 / (D + 4))
        if not (np.isfinite(bandwidth) and bandwidth > 0):
            raise ValueError(f"bandwidth must be a positive number; got {bandwidth}")
        if float(bandwidth) ** 2 < np.finfo(np.float64).tiny:  # h² underflows: log(2π h²) is undefined
            raise ValueError(f"bandwidth {bandwidth:g} is too small (its square underflows to 0); use at least 1e-150")
        self.X = X
        self.bandwidth = float(bandwidth)
        self.dim = D
        self.chunk_size = int(chunk_size)
        self._sq = (X ** 2).sum(axis=1)
        self._log_norm = -math.log(n) - 0.5 * D * math.log(2 * math.pi * self.bandwidth ** 2)

    def __repr__(self) -> str:
        return f"KernelDensity(n={len(self.X)}, D={self.dim}, bandwidth={self.bandwidth:.4g})"

    def __call__(self, X) -> np.ndarray:
        """log p at each row of ``X`` (``(M, D)``) as a float64 array ``(M,)``."""
        Q = as_points(X, self.dim)
        out = np.empty(Q.shape[0])
        h2 = 2.0 * self.bandwidth ** 2
        for s in range(0, Q.shape[0], self.chunk_size):
            q = Q[s:s + self.chunk_size]
            d2 = np.maximum((q ** 2).sum(1)[:, None] - 2.0 * q @ self.X.T + self._sq[None], 0.0)
            out[s:s + self.chunk_size] = _logsumexp(-d2 / h2, axis=1) + self._log_norm
        return out

    def torch(self, X: torch.Tensor) -> torch.Tensor:
        """The same log p as a differentiable torch function of ``X`` (``(M, D)`` → ``(M,)``)."""
        dt = X.dtype if X.is_floating_point() else torch.float64
        data = torch.as_tensor(self.X, dtype=dt, device=X.device)
        d2 = ((X[:, None, :] - data[None]) ** 2).sum(-1)
        return torch.logsumexp(-d2 / (2.0 * self.bandwidth ** 2), dim=1) + self._log_norm

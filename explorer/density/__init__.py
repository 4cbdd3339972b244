"""Densities in data space: callables from an ``(M, D)`` array to ``(M,)`` float64 log p."""

from __future__ import annotations

from explorer.density.analytic import GaussianMixtureDensity, KernelDensity

__all__ = ["GaussianMixtureDensity", "KernelDensity"]

"""Batch computations sharded over a Ray cluster (the optional extra: ``pip install -r requirements-distributed.txt``).

The CLI's ``--ray local`` / ``--ray ADDRESS`` and ``--workers N`` open a ``RayBackend`` (explorer.distributed.backend)
and make it *active* for the command (``using``). While one is active, the heavy loops that are embarrassingly
parallel over latents or points send their chunks to the backend's workers instead of running here:

- descriptor planes and the descriptors of samples (``explorer.views.local_geometry``), the descriptors, samples
  and likelihoods of a memorization report (``explorer.memorization``): chunks of latents;
- every evaluation of a ``Density`` (explorer.density.cached): the density cache of geodesic graphs, embeddings
  and image graphs, in the density's own chunks of points.

The driver draws every random quantity that is shared across latents (the sketch directions B) once and ships it;
the likelihood's Hutchinson probes are seeded by each point's own bytes; so no result depends on the worker or the
chunk, and the driver writes the same cache entries (same keys) as a one-process run. This module never imports
Ray itself: ``active()`` is what the library asks, and is None unless a command opened a backend.
"""

from __future__ import annotations

import contextlib

from explorer.errors import UserError

INSTALL_HINT = "pip install -r requirements-distributed.txt"

_ACTIVE: list = []


def active():
    """The backend the current command computes on, or None (compute here)."""
    return _ACTIVE[-1] if _ACTIVE else None


@contextlib.contextmanager
def using(backend):
    """Make ``backend`` the active one inside the ``with`` block (process-wide: the CLI owns its process)."""
    _ACTIVE.append(backend)
    try:
        yield backend
    finally:
        _ACTIVE.remove(backend)


def import_ray():
    """The ``ray`` module, or a UserError that says how to install the extra."""
    try:
        import ray
    except ImportError as err:
        raise UserError(f"--ray needs Ray, an optional extra that is not installed ({err}); install it with "
                        f"`{INSTALL_HINT}` (Ray core 2.60.0)") from None
    return ray


__all__ = ["INSTALL_HINT", "active", "import_ray", "using"]

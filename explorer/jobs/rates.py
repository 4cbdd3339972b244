"""Measured speeds, so that cost estimates come from this model on this device, not from constants.

The cost of one *operation* on one model, device and dtype is linear: seconds = a · calls + b · units, with ``a``
the overhead of one call (one chunk through the network: Python, the unrolled sampler's per-step work) and ``b``
the seconds per unit of work. Operations: ``descriptor`` (units: latent · sampler step · network copy; a
P-direction JVP sketch carries P + 1 copies of each latent, δ's cross-polytope 2P + 1), ``log_prob`` (points of one
likelihood, on one kind of point set), ``umap`` (points). Both coefficients are measured by a short probe (two
batch sizes) the first time they are needed; every job that computes refines ``b`` (an exponential average), and
they are kept in ``$EXPLORER_HOME/rates.json`` so that a restarted server estimates at once.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from explorer.files import explorer_home

#: Weight of a new measurement in the running average of ``b``.
ALPHA = 0.5


@dataclass(frozen=True)
class Cost:
    """seconds = a · calls + b · units."""

    a: float
    b: float

    def seconds(self, units: float, calls: float = 1.0) -> float:
        return self.a * calls + self.b * units


def _key(op: str, ident: str, device: str, dtype: str) -> str:
    return f"{op}|{ident}|{device}|{dtype}"


class Rates:
    """Costs per (operation, ident, device, dtype); ``ident`` names the model and the settings that change the cost
    per unit (e.g. the weights hash and the likelihood's parameters)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else None
        self._costs: dict[str, Cost] = {}
        self._lock = threading.Lock()
        self._loaded = False

    def _file(self) -> Path:
        return self.path or explorer_home() / "rates.json"

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            data = json.loads(self._file().read_text())
            for k, v in (data.items() if isinstance(data, dict) else ()):
                if isinstance(v, dict) and v.get("b", 0) > 0 and v.get("a", -1) >= 0:
                    self._costs[str(k)] = Cost(float(v["a"]), float(v["b"]))
        except (OSError, ValueError, TypeError):
            pass

    def _save(self) -> None:
        f = self._file()
        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-rates-", dir=f.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump({k: {"a": c.a, "b": c.b} for k, c in self._costs.items()}, fh, indent=1, sort_keys=True)
            os.replace(tmp, f)
        except OSError:
            pass  # rates are a convenience: an unwritable home only means re-measuring after a restart

    def get(self, op: str, ident: str, device: str, dtype: str) -> Cost | None:
        with self._lock:
            self._load()
            return self._costs.get(_key(op, ident, device, dtype))

    def set(self, op: str, ident: str, device: str, dtype: str, cost: Cost) -> Cost:
        with self._lock:
            self._load()
            self._costs[_key(op, ident, device, dtype)] = cost
            self._save()
            return cost

    def fit(self, op: str, ident: str, device: str, dtype: str, n1: float, t1: float, n2: float,
            t2: float) -> Cost:
        """Set the cost from two timings, ``t1`` of one call on ``n1`` units and ``t2`` of one call on ``n2`` > n1."""
        b = max((t2 - t1) / max(n2 - n1, 1e-12), t2 / max(n2, 1e-12) * 0.05, 1e-12)
        a = max(0.0, t1 - b * n1)
        return self.set(op, ident, device, dtype, Cost(a, b))

    def record(self, op: str, ident: str, device: str, dtype: str, units: float, seconds: float,
               calls: float = 1.0) -> Cost | None:
        """Refine ``b`` from a job that did ``units`` in ``calls`` calls in ``seconds`` (the overhead ``a`` stays)."""
        if not (units > 0 and seconds > 1e-4):
            return None
        with self._lock:
            self._load()
            k = _key(op, ident, device, dtype)
            old = self._costs.get(k) or Cost(0.0, seconds / units)
            b = max((seconds - old.a * calls) / units, 0.05 * seconds / units)
            self._costs[k] = Cost(old.a, (1 - ALPHA) * old.b + ALPHA * b)
            self._save()
            return self._costs[k]


_defaults: dict[Path, Rates] = {}
_default_lock = threading.Lock()


def default_rates() -> Rates:
    """The rates of ``$EXPLORER_HOME/rates.json``: one object per home, so that a changed EXPLORER_HOME (a test's
    private home, a second profile) never reads or writes another home's costs."""
    path = explorer_home() / "rates.json"
    with _default_lock:
        if path not in _defaults:
            _defaults[path] = Rates(path)
        return _defaults[path]

"""Measured speeds, so that cost estimates come from this model on this device, not from constants.

A rate is units of work per second for one *operation* on one model, device and dtype: ``descriptor``
(latent · sampler step · network copy: a P-direction JVP sketch carries P + 1 copies of each latent, δ's
cross-polytope 2P + 1), ``log_prob`` (points of one likelihood), ``umap`` (points). Rates are measured by short
probes the first time they are needed and refined by every job that runs (an exponential average), and they are
kept in ``$EXPLORER_HOME/rates.json`` (default ``~/.explorer``) so that a restarted server estimates at once.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from explorer.files import explorer_home

#: Weight of a new measurement in the running average.
ALPHA = 0.5


def _key(op: str, ident: str, device: str, dtype: str) -> str:
    return f"{op}|{ident}|{device}|{dtype}"


class Rates:
    """Units per second per (operation, ident, device, dtype); ``ident`` names the model and the settings that change
    the cost per unit (e.g. the weights hash and the likelihood's parameters)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else None
        self._rates: dict[str, float] = {}
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
            if isinstance(data, dict):
                self._rates.update({str(k): float(v) for k, v in data.items()
                                    if isinstance(v, int | float) and v > 0})
        except (OSError, ValueError, TypeError):
            pass

    def _save(self) -> None:
        f = self._file()
        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-rates-", dir=f.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump(self._rates, fh, indent=1, sort_keys=True)
            os.replace(tmp, f)
        except OSError:
            pass  # rates are a convenience: an unwritable home only means re-measuring after a restart

    def get(self, op: str, ident: str, device: str, dtype: str) -> float | None:
        with self._lock:
            self._load()
            return self._rates.get(_key(op, ident, device, dtype))

    def record(self, op: str, ident: str, device: str, dtype: str, units: float, seconds: float) -> float | None:
        """Add a measurement of ``units`` done in ``seconds``; returns the updated rate (None when unusable)."""
        if not (units > 0 and seconds > 1e-4):
            return None
        rate = units / seconds
        with self._lock:
            self._load()
            k = _key(op, ident, device, dtype)
            old = self._rates.get(k)
            self._rates[k] = rate if old is None else (1 - ALPHA) * old + ALPHA * rate
            self._save()
            return self._rates[k]


_default: Rates | None = None
_default_lock = threading.Lock()


def default_rates() -> Rates:
    global _default
    with _default_lock:
        if _default is None:
            _default = Rates()
        return _default

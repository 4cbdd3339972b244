"""Where files go and how they are written: the user's folder, the shipped assets, atomic writes, valid JSON.

- ``explorer_home()``: ``$EXPLORER_HOME``, default ``~/.explorer``; models a user trains go to its ``models/``
  (``user_models_dir()``), never into the shipped ``assets/`` (``ASSETS``).
- ``atomic_write(path, data)``: a temporary file in the same folder, flushed, then ``os.replace``d into
  place, so that an interrupted write leaves the old file or the new one, never half of one.
- ``jsonable`` / ``write_json``: every record is strict JSON (``allow_nan=False``); non-finite floats are
  converted deliberately: NaN → ``null``, ±inf → the strings ``"inf"`` / ``"-inf"`` (``float()`` reads
  them back), never the ``NaN`` / ``Infinity`` tokens that other JSON readers reject.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The shipped models and caches; nothing a user runs writes here (``train --replace-builtin`` excepted).
ASSETS = REPO_ROOT / "assets"


def explorer_home() -> Path:
    """The user's folder: ``$EXPLORER_HOME``, else ``~/.explorer`` (not created here)."""
    return Path(os.environ.get("EXPLORER_HOME") or Path.home() / ".explorer").expanduser()


def user_models_dir() -> Path:
    """Where ``python -m explorer train`` writes models by default: ``explorer_home()/models``."""
    return explorer_home() / "models"


def is_within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it, after resolving symlinks and ``..``."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True


def atomic_write(path: Path, data: bytes, prefix: str = ".tmp-") -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _float(x: float):
    if math.isfinite(x):
        return x
    return None if math.isnan(x) else ("inf" if x > 0 else "-inf")


def jsonable(value):
    """``value`` as plain JSON types: mappings, sequences, arrays, NumPy scalars and tensors converted,
    non-finite floats as described in the module docstring, anything else as ``str``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # torch tensors
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, int | str | bool) or value is None:
        return value
    return str(value)


def dumps(value, **kwargs) -> str:
    """Strict JSON text of ``jsonable(value)`` (``allow_nan=False``); keyword arguments go to ``json.dumps``."""
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)


def write_json(path: Path, value) -> Path:
    """Write ``value`` as indented strict JSON to ``path``, atomically; returns ``path``."""
    atomic_write(Path(path), (dumps(value, indent=2) + "\n").encode())
    return Path(path)

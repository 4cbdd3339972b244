"""On-disk cache of heavy results as ``.npz`` + ``.json`` pairs (latent-scope style: "remember everything").

A result is named by its ``kind`` (e.g. ``descriptor_maps``) and a key: the hash of the model's weights
hash, the code version, the dtype and every parameter. Each entry is two flat files in the cache folder,
``<kind>-<key>.npz`` (the arrays) and ``<kind>-<key>.json`` (the parameters that made them), which a user
can reload in a notebook with ``numpy.load`` and ``json.load``.

Writes are atomic: each file goes to a temporary name in the same folder and is moved into place with
``os.replace``, the ``.json`` last, and an entry counts only when both files exist and load. Two processes
computing the same entry write identical content, so neither ever reads a torn file; an interrupted job
leaves at most a stray temporary file (ignored, removed by ``clear``) and is simply recomputed.

The folder is ``$EXPLORER_CACHE_DIR`` when set, else ``.explorer-cache/`` in the repository. Reads that miss
there fall back to ``assets/cache/`` (same layout, read-only): small precomputed results of the app's default
views ship there (``scripts/precompute-default-views``), so a first visit is instant. Writes, ``stats`` and
``clear`` only ever touch the user's folder; a shipped entry made with other weights or code has another key
and is simply never hit.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from explorer import __version__
from explorer.provenance import versions

#: Bumped when a cached result's meaning changes; part of every key.
CODE_VERSION = f"{__version__}+cache1"
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Read-only fallback folder of precomputed entries shipped with the repository.
ASSETS_CACHE = REPO_ROOT / "assets" / "cache"
_TMP_PREFIX = ".tmp-"
#: ``<kind>-<key>`` of every entry this process read or wrote through ``cached`` (what ``prune`` keeps).
_touched: set[str] = set()


def cache_dir() -> Path:
    """The cache folder (created on demand): ``$EXPLORER_CACHE_DIR`` or ``<repo>/.explorer-cache``."""
    return Path(os.environ.get("EXPLORER_CACHE_DIR") or REPO_ROOT / ".explorer-cache")


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # torch tensors
        return _jsonable(value.detach().cpu().tolist())
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def cache_key(kind: str, params: Mapping, weights_hash: str, dtype: str = "float32") -> str:
    """Hex key of one result: hash of kind, code version, weights hash, dtype and every parameter."""
    if not kind or not kind.replace("_", "").isalnum():
        raise ValueError(f"kind must be a short identifier (letters, digits, _); got {kind!r}")
    record = {"kind": kind, "code_version": CODE_VERSION, "weights_hash": str(weights_hash), "dtype": str(dtype),
              "params": _jsonable(dict(params))}
    blob = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def paths(kind: str, key: str, folder: Path | None = None) -> tuple[Path, Path]:
    """The ``.npz`` and ``.json`` files of one entry in ``folder`` (default: the user's cache folder)."""
    base = Path(cache_dir() if folder is None else folder) / f"{kind}-{key}"
    return base.with_suffix(".npz"), base.with_suffix(".json")


def read_folders() -> list[Path]:
    """Where entries are looked up, in order: the user's cache folder, then the shipped ``ASSETS_CACHE``."""
    user = cache_dir()
    shipped = Path(ASSETS_CACHE)
    return [user] if shipped.resolve() == user.resolve() else [user, shipped]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(kind: str, key: str, arrays: Mapping[str, np.ndarray], record: Mapping) -> tuple[Path, Path]:
    """Write one entry atomically (arrays first, then the JSON record that makes it valid)."""
    npz, js = paths(kind, key)
    buf = io.BytesIO()
    np.savez(buf, **{name: np.asarray(a) for name, a in arrays.items()})
    _atomic_write(npz, buf.getvalue())
    _atomic_write(js, (json.dumps(_jsonable(dict(record)), indent=2, sort_keys=True) + "\n").encode())
    return npz, js


def _load_from(folder: Path, kind: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    npz, js = paths(kind, key, folder)
    if not (npz.exists() and js.exists()):
        return None
    try:
        record = json.loads(js.read_text())
        with np.load(npz, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
    except (OSError, ValueError, EOFError):
        return None
    if record.get("key") != key:
        return None
    return arrays, record


def load(kind: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """The entry's arrays and record from the user's cache, else from the shipped ``assets/cache`` (the record
    then has ``"shipped": True``), or None when it is missing or unreadable (then it is recomputed)."""
    for i, folder in enumerate(read_folders()):
        hit = _load_from(folder, kind, key)
        if hit is not None:
            return (hit[0], {**hit[1], "shipped": True}) if i else hit
    return None


def exists(kind: str, params: Mapping, weights_hash: str, dtype: str = "float32") -> bool:
    """Whether the entry for these parameters is on disk (both files, in the user's cache or the shipped one),
    i.e. ``cached`` would not compute."""
    key = cache_key(kind, params, weights_hash, dtype)
    return any(all(p.exists() for p in paths(kind, key, folder)) for folder in read_folders())


def cached(kind: str, params: Mapping, compute: Callable[[], Mapping[str, np.ndarray]], *, weights_hash: str,
           dtype: str = "float32") -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of ``compute()`` for these parameters: read from disk when present, else computed and saved.

    Returns ``(arrays, record)``; ``record`` holds the parameters, key, code version, weights hash, dtype,
    the compute time and ``"hit"`` (whether it came from disk; ``"shipped"`` when from ``assets/cache``). New
    results are always written to the user's cache folder.
    """
    key = cache_key(kind, params, weights_hash, dtype)
    _touched.add(f"{kind}-{key}")
    hit = load(kind, key)
    if hit is not None:
        arrays, record = hit
        return arrays, {**record, "hit": True}
    start = time.perf_counter()
    arrays = {name: np.asarray(a) for name, a in compute().items()}
    record = {"kind": kind, "key": key, "code_version": CODE_VERSION, "weights_hash": str(weights_hash),
              "dtype": str(dtype), "params": _jsonable(dict(params)),
              "seconds": round(time.perf_counter() - start, 3), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "versions": versions()}
    save(kind, key, arrays, record)
    return arrays, {**record, "hit": False}


def entries() -> list[Path]:
    """The ``.json`` records of complete-looking entries in the cache folder."""
    folder = cache_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(_TMP_PREFIX))


def stats() -> dict:
    """``{"folder", "entries", "bytes"}`` of the cache folder."""
    folder = cache_dir()
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return {"folder": str(folder), "entries": len(entries()), "bytes": int(sum(p.stat().st_size for p in files))}


def clear(kind: str | None = None) -> int:
    """Delete the cache's entries (only ``kind``'s when given) and stray temporary files; returns files removed."""
    folder = cache_dir()
    if not folder.is_dir():
        return 0
    removed = 0
    for p in folder.iterdir():
        if not p.is_file() or p.suffix not in (".npz", ".json"):
            continue
        if kind is None or p.name.startswith(f"{kind}-") or p.name.startswith(_TMP_PREFIX):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


#: ``value`` as plain JSON types (arrays and tensors as lists, other objects as strings): what records hold.
jsonable = _jsonable


def touched() -> set[str]:
    """The ``<kind>-<key>`` names of every entry this process asked ``cached`` for."""
    return set(_touched)


def prune(keep) -> int:
    """Delete the cache folder's entries (``<kind>-<key>`` .npz/.json pairs with a matching record) whose name is
    not in ``keep``; returns the files removed. Other files are never touched."""
    folder = cache_dir()
    keep = set(keep)
    removed = 0
    for js in entries():
        name = js.stem
        if name in keep:
            continue
        try:
            record = json.loads(js.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or f"{record.get('kind')}-{record.get('key')}" != name:
            continue
        for p in (folder / f"{name}.npz", js):
            if p.exists():
                p.unlink()
                removed += 1
    return removed

"""On-disk cache of heavy results as ``.npz`` + ``.json`` pairs (latent-scope style: "remember everything").

A result is named by its ``kind`` (e.g. ``descriptor_maps``) and a key: the hash of the model's weights
hash, the code version, the dtype and every parameter. Each entry is two flat files in the cache folder,
``<kind>-<key>.npz`` (the arrays) and ``<kind>-<key>.json`` (the parameters that made them), which a user
can reload in a notebook with ``numpy.load`` and ``json.load``.

Writes are atomic: each file goes to a temporary name in the same folder and is moved into place with
``os.replace``, the ``.json`` last, and an entry counts only when both files exist and load. Two processes
computing the same entry write identical content, so neither ever reads a torn file; an interrupted job
leaves at most a stray temporary file (ignored, removed by ``clear`` once it is TMP_MAX_AGE old) and is simply
recomputed. A writer whose temporary file vanished (another process cleared the folder) writes it again.

Nothing in the cache can stop a computation: an unreadable entry (a truncated ``.npz``, a ``.json`` that is
not an object, bad UTF-8) is a miss, recomputed and replaced, with a ``CacheWarning``; a folder that cannot be
written (read-only, or a file in its place) gives one ``CacheWarning`` and the results are returned unsaved.

``clear`` deletes only what the cache wrote: entries named ``<kind>-<24 hex digits>.npz/.json`` whose record
names that same kind and key, and its own old temporary files; never other files in the folder, and never the
shipped ``assets/cache`` (it refuses when the cache folder is inside ``assets/``).

"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from explorer import __version__, files
from explorer.errors import UserError
from explorer.provenance import versions

#: Bumped when a cached result's meaning changes; part of every key.
CODE_VERSION = f"{__version__}+cache1"
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Read-only fallback folder of precomputed entries shipped with the repository.
ASSETS_CACHE = REPO_ROOT / "assets" / "cache"
_TMP_PREFIX = ".tmp-"
#: Temporary files younger than this (seconds) may belong to a running writer; ``clear`` leaves them.
TMP_MAX_AGE = 600.0
_ENTRY_NAME = re.compile(r"(?P<kind>[A-Za-z0-9_]+)-(?P<key>[0-9a-f]{24})\.(?P<ext>npz|json)")
# .tmp-<kind>-<key>-<random>.<ext>, and the older .tmp-<8 random characters>.<ext>
_TMP_NAME = re.compile(r"\.tmp-(?:[A-Za-z0-9_]+-[0-9a-f]{24}-[A-Za-z0-9_]+|[a-z0-9_]{8})\.(?:npz|json)")
_WRITE_ATTEMPTS = 3
_unwritable_warned: set[str] = set()


class CacheWarning(UserWarning):
    """The cache could not read an entry or write to its folder; the computation went on without it."""
#: ``<kind>-<key>`` of every entry this process read or wrote through ``cached`` (what ``prune`` keeps).
_touched: set[str] = set()


def cache_dir() -> Path:
    """The cache folder (created on demand): ``$EXPLORER_CACHE_DIR`` or ``<repo>/.explorer-cache``."""
    return Path(os.environ.get("EXPLORER_CACHE_DIR") or REPO_ROOT / ".explorer-cache")


_jsonable = files.jsonable


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


def _atomic_write(path: Path, data: bytes, kind: str, key: str) -> None:
    """``files.atomic_write`` under a recognisable temporary name; written again when the temporary file (or the
    folder) vanished meanwhile, e.g. because another process cleared the cache."""
    for attempt in range(_WRITE_ATTEMPTS):
        try:
            files.atomic_write(path, data, prefix=f"{_TMP_PREFIX}{kind}-{key}-")
            return
        except FileNotFoundError:
            if attempt == _WRITE_ATTEMPTS - 1:
                raise


def save(kind: str, key: str, arrays: Mapping[str, np.ndarray], record: Mapping) -> tuple[Path, Path]:
    """Write one entry atomically (arrays first, then the JSON record that makes it valid)."""
    npz, js = paths(kind, key)
    buf = io.BytesIO()
    np.savez_compressed(buf, **{name: np.asarray(a) for name, a in arrays.items()})
    _atomic_write(npz, buf.getvalue(), kind, key)
    _atomic_write(js, (files.dumps(dict(record), indent=2, sort_keys=True) + "\n").encode(), kind, key)
    return npz, js


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


def _load_from(folder: Path, kind: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    npz, js = paths(kind, key, folder)
    if not (npz.is_file() and js.is_file()):
        return None
    try:
        record = json.loads(js.read_bytes().decode("utf-8"))
        if not isinstance(record, dict):
            raise ValueError(f"the record is {type(record).__name__}, not an object")
        if record.get("key") != key:
            raise ValueError(f"the record names key {record.get('key')!r}")
        with open(npz, "rb") as fh, np.load(fh, allow_pickle=False) as f:  # our handle: closed on any error
            arrays = {name: f[name] for name in f.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        warnings.warn(f"cache entry {js.with_suffix('')} is unreadable ({_one_line(err)}); recomputing it",
                      CacheWarning, stacklevel=4)
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
    try:
        save(kind, key, arrays, record)
    except OSError as err:  # read-only folder, a file in its place, disk full: go on without the cache
        folder = str(cache_dir())
        if folder not in _unwritable_warned:
            _unwritable_warned.add(folder)
            warnings.warn(f"cannot write to the cache folder {folder} ({_one_line(err)}); going on without saving "
                          "results there (set EXPLORER_CACHE_DIR to a writable folder)", CacheWarning, stacklevel=2)
    return arrays, {**record, "hit": False}


def _entry_records(folder: Path, kind: str | None = None) -> list[Path]:
    """The ``.json`` records in ``folder`` that the cache wrote: the entry name pattern, and a record that
    names the same kind and key."""
    out = []
    for js in folder.glob("*.json"):
        m = _ENTRY_NAME.fullmatch(js.name)
        if not m or (kind is not None and m["kind"] != kind) or not js.is_file():
            continue
        try:
            record = json.loads(js.read_bytes().decode("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("key") == m["key"] and record.get("kind") == m["kind"]:
            out.append(js)
    return sorted(out)


def owned_files(folder: Path | None = None, kind: str | None = None) -> list[Path]:
    """The files in ``folder`` (default: the user's cache folder) that the cache wrote and ``clear`` would
    delete: each recognised entry's ``.json`` and ``.npz`` (only ``kind``'s when given) and temporary files
    older than TMP_MAX_AGE."""
    folder = Path(cache_dir() if folder is None else folder)
    if not folder.is_dir():
        return []
    out = []
    for js in _entry_records(folder, kind):
        out.append(js)
        if js.with_suffix(".npz").is_file():
            out.append(js.with_suffix(".npz"))
    now = time.time()
    for tmp in folder.glob(f"{_TMP_PREFIX}*"):
        if not _TMP_NAME.fullmatch(tmp.name) or (kind is not None and not tmp.name.startswith(f"{_TMP_PREFIX}{kind}-")):
            continue
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime > TMP_MAX_AGE:
                out.append(tmp)
        except OSError:  # it was just moved into place or removed
            continue
    return out


def entries() -> list[Path]:
    """The ``.json`` records of the entries the cache wrote in the user's cache folder."""
    folder = cache_dir()
    return _entry_records(folder) if folder.is_dir() else []


def stats() -> dict:
    """``{"folder", "entries", "bytes"}`` of the cache's own files in the user's cache folder."""
    folder = cache_dir()
    size = 0
    for p in owned_files(folder):
        try:
            size += p.stat().st_size
        except OSError:
            continue
    return {"folder": str(folder), "entries": len(entries()), "bytes": int(size)}


def clear(kind: str | None = None) -> int:
    """Delete the entries the cache wrote in the user's cache folder (only ``kind``'s when given) and its old
    temporary files; returns the number of files removed. Other files in the folder are never touched, and a
    cache folder inside the shipped ``assets/`` is refused (UserError)."""
    folder = cache_dir()
    if files.is_within(folder, ASSETS_CACHE) or files.is_within(folder, REPO_ROOT / "assets"):
        raise UserError(f"the cache folder {folder} is the shipped assets/cache (or inside assets/), which clear() "
                        "never deletes; point EXPLORER_CACHE_DIR at your own folder")
    removed = 0
    for p in owned_files(folder, kind):
        try:
            p.unlink()
            removed += 1
        except FileNotFoundError:  # another process removed it first
            continue
    return removed


#: ``value`` as plain JSON types (arrays and tensors as lists, other objects as strings): what records hold.
jsonable = files.jsonable


def touched() -> set[str]:
    """The ``<kind>-<key>`` names of every entry this process asked ``cached`` for."""
    return set(_touched)


def prune(keep) -> int:
    """Delete the cache folder's entries that the cache wrote (``owned_files``) whose ``<kind>-<key>`` name is not in
    ``keep``; returns the files removed. Other files are never touched. Unlike ``clear`` it works on the shipped
    folder too: ``python -m explorer precompute --prune`` refreshes assets/cache with it."""
    folder = cache_dir()
    keep = set(keep)
    removed = 0
    for js in (_entry_records(folder) if folder.is_dir() else []):
        if js.stem in keep:
            continue
        for p in (js.with_suffix(".npz"), js):
            try:
                p.unlink()
                removed += 1
            except FileNotFoundError:
                continue
    return removed

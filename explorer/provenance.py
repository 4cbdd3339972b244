"""What every record the CLI and the cache write carries about the software that made it."""

from __future__ import annotations

import functools
import platform


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of the project, Python, torch, diffusers and transformers (None for one that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from explorer import __version__

    out = {"explorer": __version__, "python": platform.python_version()}
    for pkg in ("torch", "diffusers", "transformers", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def stamped(record: dict) -> dict:
    """``record`` with ``versions`` added (a copy)."""
    return {**record, "versions": versions()}

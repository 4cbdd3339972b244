"""The project's one exception for expected user errors, and the memory check that refuses work up front.

``UserError`` is a ``ValueError`` (so code that catches ``ValueError`` keeps working): a bad argument, a bad
file, a request too large for this machine. Its message is one sentence that names the argument or file,
says what was expected and what was found, and what the user can do. The CLI prints it as one
``error: ...`` line (explorer/cli.py); anything else that escapes is a bug.
"""

from __future__ import annotations

import os


class UserError(ValueError):
    """An expected mistake of the caller's: shown as one line, never with a traceback."""


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable; elsewhere: physical memory), or
    None when the platform does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes as e.g. ``'3.2 GB'`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    raise AssertionError("unreachable")


def require_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse (UserError) before allocating when ``what`` would need more than the available memory.

    ``nbytes`` is an estimate of the largest arrays involved; ``fix`` says which argument to lower.
    """
    available = available_memory()
    if available is not None and nbytes > available:
        raise UserError(f"{what} would need about {format_bytes(nbytes)} of memory and "
                        f"{format_bytes(available)} is available; {fix}")

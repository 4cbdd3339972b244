"""Argument types shared by the subcommands: every number is checked when the command line is parsed.

Each is an ``argparse`` ``type=`` callable that raises ``argparse.ArgumentTypeError``, so a bad value ends in
argparse's usage and one ``error: argument --NAME: ...`` line (exit status 2) before any work starts. Floats
must be finite (``nan``, ``inf`` and overflowing literals such as ``1e309`` are refused).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

SEED_LIMIT = 2**32


def _number(text: str, kind):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}; "
                                         f"got {text!r}") from None


def int_at_least(lo: int, hi: int | None = None):
    """An integer type in [lo, hi] (hi: no upper bound when None)."""

    def parse(text: str) -> int:
        value = _number(text, int)
        if value < lo or (hi is not None and value > hi):
            bound = f"at least {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}; got {text!r}")
        return value

    parse.__name__ = f"int >= {lo}"
    return parse


def finite_float(text: str) -> float:
    """A finite float."""
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0."""
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite float ≥ 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number; got {text!r}")
    return value


def fraction(text: str) -> float:
    """A finite float in (0, 1]."""
    value = finite_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]; got {text!r}")
    return value


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)
seed = int_at_least(0, SEED_LIMIT - 1)


def output_file(text: str) -> Path:
    """A file to write: refused when it names a folder (a trailing slash, or an existing directory), so that
    nothing is ever written beside the folder the user meant, or when its folder cannot be made or written
    (checked now, so that no work is done for nothing)."""
    if not text or text.endswith(("/", os.sep)) or Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"must name a file, not a folder; got {text!r} (e.g. "
                                         f"{os.path.join(text or '.', 'result')})")
    folder = Path(text).absolute().parent
    while not os.path.lexists(folder) and folder != folder.parent:  # the part of the path that exists
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot be written: {folder} is "
                                         f"{'not a folder' if not folder.is_dir() else 'not writable'}")
    return Path(text)


def seed_list_text(count: int):
    """``count`` comma-separated seeds, e.g. ``0,1,2``, checked and kept as the text (the command parses it)."""

    def parse(text: str) -> str:
        parts = text.split(",")
        if len(parts) != count:
            raise argparse.ArgumentTypeError(f"needs {count} seeds separated by commas; got {text!r}")
        for p in parts:
            seed(p.strip())
        return text

    return parse

"""Chart selections → app state, as pure functions tested on payloads recorded from a real Chromium: the
``customdata`` of a selected point arrives as a scalar, a list, or a dict keyed ``"0"``, ``"1"``, …."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def selected_points(event) -> list[dict]:
    """The selected points of a ``st.plotly_chart(on_select="rerun")`` event (a dict-like or None)."""
    if not event:
        return []
    sel = event.get("selection") if isinstance(event, Mapping) else getattr(event, "selection", None)
    if not sel:
        return []
    pts = sel.get("points") if isinstance(sel, Mapping) else getattr(sel, "points", None)
    return list(pts or [])


def selected_customdata(event) -> list:
    """The ``customdata`` of each selected point (scalars unwrapped from one-element lists)."""
    out = []
    for p in selected_points(event):
        cd = p.get("customdata") if isinstance(p, Mapping) else None
        if cd is None:
            continue
        seq = _as_sequence(cd)
        if seq is not None and len(seq) == 1:
            cd = seq[0]
        out.append(cd)
    return out


def _as_sequence(cd) -> list | None:
    """customdata as a list: a list or tuple as is; a dict keyed "0", "1", … (what Chromium sends for a
    two-element customdata: ``{"0": 77, "1": 78}``) in key order; else None."""
    if isinstance(cd, list | tuple):
        return list(cd)
    if isinstance(cd, Mapping):
        try:
            keys = sorted(cd, key=lambda k: int(k))
        except (TypeError, ValueError):
            return None
        return [cd[k] for k in keys]
    return None


def cell_from_selection(event, n: int) -> tuple[int, int] | None:
    """(row i ↔ v[i], column j ↔ u[j]) of the first selected heatmap cell, or None; customdata = [i, j] (a list,
    or the dict ``{"0": i, "1": j}`` a real browser sends)."""
    for cd in selected_customdata(event):
        seq = _as_sequence(cd)
        if seq is None or len(seq) < 2:
            continue
        try:
            i, j = int(seq[0]), int(seq[1])
        except (TypeError, ValueError):
            continue
        if 0 <= i < n and 0 <= j < n:
            return i, j
    return None


def indices_from_selection(event, n: int) -> list[int]:
    """Point indices (customdata) of a selection, valid in [0, n), in order, without repeats."""
    out: list[int] = []
    for cd in selected_customdata(event):
        seq = _as_sequence(cd)
        if seq is not None:
            cd = seq[0] if seq else None
        try:
            i = int(cd)
        except (TypeError, ValueError):
            continue
        if 0 <= i < n and i not in out:
            out.append(i)
    return out


def add_anchor(anchors: Sequence[int], seed: int, limit: int = 3) -> list[int]:
    """Anchor seeds after clicking ``seed``: a click on a chosen one removes it, else it is appended
    (dropping the oldest beyond ``limit``)."""
    anchors = [int(a) for a in anchors]
    seed = int(seed)
    if seed in anchors:
        return [a for a in anchors if a != seed]
    return (anchors + [seed])[-limit:]


def update_endpoints(endpoints: Sequence[int], clicked: int) -> list[int]:
    """Geodesic endpoints after a click: the clicked point becomes the new end, the old end the start."""
    endpoints = [int(e) for e in endpoints][-2:]
    clicked = int(clicked)
    if clicked in endpoints:
        return endpoints
    if len(endpoints) < 2:
        return endpoints + [clicked]
    return [endpoints[1], clicked]


def parse_ints(text: str) -> list[int]:
    """Integers from free text like ``"1, 2 3"``; raises ValueError naming the bad token."""
    out = []
    for tok in text.replace(",", " ").split():
        try:
            out.append(int(tok))
        except ValueError:
            raise ValueError(f"seeds must be integers separated by commas or spaces; {tok!r} is not") from None
    return out


def parse_floats(text: str) -> list[float]:
    """Positive floats from free text like ``"0.05, 1 5"``; raises ValueError naming the bad token."""
    out = []
    for tok in text.replace(",", " ").split():
        try:
            v = float(tok)
        except ValueError:
            raise ValueError(f"values must be numbers separated by commas or spaces; {tok!r} is not") from None
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"values must be positive; got {tok!r}")
        out.append(v)
    return out

"""URL query parameters ↔ app state, for every page: a link reopens the same view.

Each query key maps to a state key, a decoder, an encoder and a check against its widget's range, so that a
hand-edited or hostile link never reaches a widget with a value Streamlit would silently clamp: a value that does
not parse or is out of range is dropped and named in ``problems`` (shown to the user as plain text, never as
Markdown: ``plain``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------- λ scale
#: λ (and p0) slider positions: log-spaced over 1e-3 … 1e2, 4 per decade, in units of p_ref by default.
LAM_OPTIONS: tuple[float, ...] = tuple(float(f"{v:.3g}") for v in np.logspace(-3, 2, 21))


def nearest_option(value: float, options: Sequence[float] = LAM_OPTIONS) -> float:
    """The option nearest to ``value`` on a log scale (for λ read from a URL or typed)."""
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"λ must be a positive number; got {value!r}")
    return min(options, key=lambda o: abs(math.log(o) - math.log(value)))


# ---------------------------------------------------------------------------- codecs
def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip() != ""]


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip() != ""]


def fmt_float(x: float) -> str:
    return f"{float(x):.6g}"


def _join(v) -> str:
    return ",".join(map(str, v))


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes"):
        return True
    if s.lower() in ("0", "false", "no"):
        return False
    raise ValueError("not a boolean")


def _in_range(lo: float, hi: float) -> Callable:
    return lambda v: lo <= v <= hi


def _ints_in(lo: int, hi: int, count: tuple[int, int]) -> Callable:
    return lambda v: count[0] <= len(v) <= count[1] and all(lo <= x <= hi for x in v)


def _one_of(*options) -> Callable:
    return lambda v: v in options


def _positive_floats(max_count: int) -> Callable:
    return lambda v: 1 <= len(v) <= max_count and all(math.isfinite(x) and x > 0 for x in v)


def _finite_positive(v) -> bool:
    return math.isfinite(v) and v > 0


@dataclass(frozen=True)
class Param:
    """One query parameter: its state key, decoder, encoder and the widget's range (``valid``)."""

    state: str
    decode: Callable[[str], object]
    encode: Callable[[object], str]
    valid: Callable[[object], bool] = lambda v: True


BIG = 2 ** 31 - 1
#: Sort keys, filters and scatter axes of the Memorization page (names only; labels live in webui.memorization).
MEM_SORT_KEYS = ("ratio", "psi", "nu", "nu_eff", "delta", "d_nearest", "log_p")
MEM_FILTERS = ("all", "memorized", "novel")
MEM_SCATTER = ("psi", "nu", "nu_eff", "delta", "log_p", "d_nearest")

#: Query key → parameter. Only what a user would want to share goes in the URL. Model-dependent ranges (the map's
#: name, t < T, point indices < N) are checked again by the page that uses them.
QUERY_SCHEMA: dict[str, Param] = {
    "model": Param("model", str, str, lambda v: 0 < len(v) <= 500),
    "map": Param("lg_map", str, str, _one_of("sampler", "from_t", "denoiser", "decoder")),
    "t": Param("lg_t", int, str, _in_range(0, 100_000)),
    "steps": Param("lg_steps", int, str, _in_range(1, 1000)),
    "seeds": Param("lg_seeds", _ints, _join, _ints_in(0, BIG, (0, 3))),
    "extent": Param("lg_extent", float, fmt_float, _in_range(0.01, 100.0)),
    "res": Param("lg_res", int, str, _in_range(2, 512)),
    "color": Param("lg_color", str, str, _one_of("psi", "nu", "nu_eff", "delta")),
    "cell": Param("lg_cell", _ints, _join, _ints_in(0, 511, (2, 2))),
    "dirs": Param("lg_dirs", int, str, _in_range(1, 1 << 20)),
    "pts": Param("geo_points", str, str, _one_of("data", "samples", "uniform")),
    "graph": Param("geo_graph", str, str, _one_of("knn", "epsilon")),
    "k": Param("geo_k", int, str, _in_range(1, 100)),
    "eps": Param("geo_eps", float, fmt_float, _in_range(0.001, 10.0)),
    "nq": Param("geo_nq", int, str, _in_range(1, 16)),
    "lam": Param("geo_lam", float, fmt_float, _finite_positive),
    "p0": Param("geo_p0", float, fmt_float, _finite_positive),
    "ends": Param("geo_ends", _ints, _join, _ints_in(0, BIG, (2, 2))),
    "lams": Param("geo_overlay", _floats, lambda v: ",".join(map(fmt_float, v)), _positive_floats(8)),
    "src": Param("geo_source", int, str, _in_range(0, BIG)),
    "elam": Param("emb_lam", float, fmt_float, _finite_positive),
    "ecolor": Param("emb_color", str, str, _one_of("clusters", "labels")),
    "sel": Param("emb_sel", _ints, _join, _ints_in(0, BIG, (0, 10_000))),
    "mn": Param("mem_n", int, str, _in_range(2, 20000)),
    "mseed": Param("mem_seed", int, str, _in_range(0, BIG)),
    "msteps": Param("mem_steps", int, str, _in_range(1, 1000)),
    "mthr": Param("mem_threshold", float, fmt_float, _in_range(0.01, 1.0)),
    "msort": Param("mem_sort", str, str, _one_of(*MEM_SORT_KEYS)),
    "mdesc": Param("mem_descending", _bool, lambda v: "1" if v else "0"),
    "mshow": Param("mem_show", str, str, _one_of(*MEM_FILTERS)),
    "mvs": Param("mem_compare", str, str, lambda v: 0 < len(v) <= 500),
    "mx": Param("mem_scatter", str, str, _one_of(*MEM_SCATTER)),
    "msel": Param("mem_sel", int, str, _in_range(0, BIG)),
    # the Guidance page: the chosen ρ (snapped to the report's grid by the page)
    "rho": Param("guide_rho", float, fmt_float, _in_range(-1000.0, 1000.0)),
}
STATE_TO_QUERY = {p.state: q for q, p in QUERY_SCHEMA.items()}
#: State keys snapped to the λ slider's options after decoding.
SNAPPED = ("geo_lam", "geo_p0")


def decode_query(query: Mapping[str, object]) -> tuple[dict, list[str]]:
    """State values from URL query parameters; returns ``(state, problems)``.

    Unknown keys are ignored; a value that does not parse or lies outside its widget's range is skipped and named
    in ``problems`` (the app shows them as plain text; it never crashes on a hand-edited link).
    """
    state, problems = {}, []
    for q, raw in query.items():
        if q not in QUERY_SCHEMA:
            continue
        if isinstance(raw, list | tuple):
            raw = raw[-1] if raw else ""
        p = QUERY_SCHEMA[q]
        raw = str(raw)
        try:
            if len(raw) > 2000:
                raise ValueError("too long")
            value = p.decode(raw)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("not finite")
            if not p.valid(value):
                raise ValueError("out of range")
            if p.state in SNAPPED:
                value = nearest_option(value)
        except (TypeError, ValueError, OverflowError):
            problems.append(f"{q}={raw[:80]!r}")
            continue
        state[p.state] = value
    return state, problems


def encode_query(state: Mapping[str, object]) -> dict[str, str]:
    """URL query parameters (strings) of the shareable entries of ``state``; None values are left out."""
    out = {}
    for key, value in state.items():
        q = STATE_TO_QUERY.get(key)
        if q is None or value is None or (isinstance(value, list | tuple) and len(value) == 0):
            continue
        out[q] = QUERY_SCHEMA[q].encode(value)
    return out


_MARKDOWN = set("\\`*_{}[]()#+-.!|<>~$:")


def plain(text: str) -> str:
    """``text`` with every Markdown, emoji-shortcode and colour-directive character escaped, so that Streamlit
    shows it as typed (user text in st.warning / st.error / st.caption never renders as a link or an image)."""
    return "".join("\\" + c if c in _MARKDOWN else c for c in str(text)).replace("\n", " ")

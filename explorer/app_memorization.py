"""The Memorization page's glue, Streamlit-free and unit-tested: its sizes, the disk-cached report, the
gallery's order and neighbours, image tiles, the seeds it hands to the Local geometry page, the model
comparison and its URL query parameters.

``report_cached`` is the one entry point for the heavy work: the page calls it, and the CLI
(``python -m explorer memorization``) can call it to fill the same cache. It stores the threshold-independent
part of ``explorer.memorization.memorization_report`` (samples, descriptors, log p, nearest / second-nearest
distinct training image and the ratio) as one ``memorization-<key>`` entry, and each threshold's AUROC table as
a ``memorization_auroc-<key>`` entry, so moving the threshold never recomputes samples or descriptors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from explorer import cache
from explorer.app_state import _fmt_float
from explorer.images import to_grey, upscale  # noqa: F401 - the page and tests use them from here
from explorer.memorization import FEATURES, THRESHOLD, MemorizationReport, memorization_report, nearest_training
from explorer.memorization import separation_table as _separation_table

# ---------------------------------------------------------------------------- sizes
#: Page sizes per ``EXPLORER_PROFILE`` (``explorer.app_state.profile_name()``): ``n`` samples (the issue's 512),
#: ``steps`` (None: the model's ``default_steps``), ``page_rows`` gallery rows per "show more", ``n_boot``
#: bootstrap resamples of each AUROC, ``k`` training neighbours shown beside each sample.
SIZES: dict[str, dict] = {
    "default": {"n": 512, "steps": None, "page_rows": 24, "n_boot": 1000, "k": 4},
    "test": {"n": 24, "steps": 3, "page_rows": 8, "n_boot": 200, "k": 3},
}

#: Bumped when what ``report_cached`` stores changes meaning (part of every key, with cache.CODE_VERSION).
CACHE_VERSION = 1

#: What the gallery can be sorted by (table column → label); "ratio" is the memorization score.
SORT_KEYS: dict[str, str] = {
    "ratio": "memorization score (ratio d₁/d₂)",
    "psi": "ψ (local scaling)",
    "nu": "ν (thresholded rank)",
    "nu_eff": "ν_eff (effective rank)",
    "delta": "δ (local complexity)",
    "d_nearest": "distance to the nearest training image",
    "log_p": "log p",
}
#: The descriptors the scatter plots against the score.
DESCRIPTORS: dict[str, str] = {k: SORT_KEYS[k] for k in ("psi", "nu", "nu_eff", "delta", "log_p", "d_nearest")}
FILTERS: dict[str, str] = {"all": "all", "memorized": "memorized", "novel": "novel"}

#: Default "Compare with" partner of a model (the two digit models trained on 1,500 and on 48 images).
COMPARE_PAIRS = {"digits/memorized": "digits/full", "digits/full": "digits/memorized"}

#: The Local geometry page's state key for its anchor seeds, and the page file.
LG_SEEDS_KEY = "lg_seeds"
LG_PAGE = "app_pages/local_geometry.py"


def sizes(profile_name: str | None = None) -> dict:
    """The page's sizes for a profile name (default: ``app_state.profile_name()``, i.e. ``$EXPLORER_PROFILE``)."""
    if profile_name is None:
        from explorer.app_state import profile_name as current

        profile_name = current()
    if profile_name not in SIZES:
        raise ValueError(f"no Memorization page sizes for profile {profile_name!r}; valid: {', '.join(SIZES)}")
    return dict(SIZES[profile_name])


def default_steps(model, profile_name: str | None = None) -> int:
    """DDIM steps the page starts with: the model's ``default_steps`` (fewer under the test profile)."""
    s = sizes(profile_name)["steps"]
    return int(model.default_steps if s is None else min(int(s), int(model.default_steps)))


# ---------------------------------------------------------------------------- the cached report
def report_params(model, n: int, seed: int, steps: int | None, likelihood: bool = True,
                  n_directions: int | None = None, radius: float | None = None,
                  duplicate_tol: float | None = None) -> dict:
    """The threshold-independent parameters that name a report in the cache (steps resolved)."""
    if int(n) < 1:
        raise ValueError(f"n (the number of samples) must be at least 1, got {n}")
    return {"model": model.name, "n": int(n), "seed": int(seed),
            "steps": int(model.default_steps if steps is None else steps), "map": "sampler",
            "likelihood": bool(likelihood), "n_directions": None if n_directions is None else int(n_directions),
            "radius": None if radius is None else float(radius),
            "duplicate_tol": None if duplicate_tol is None else float(duplicate_tol), "version": CACHE_VERSION}


def report_is_cached(model, n: int, seed: int, steps: int | None, likelihood: bool = True, **kw) -> bool:
    """Whether ``report_cached`` would read the samples and descriptors from disk (no confirm needed)."""
    return cache.exists("memorization", report_params(model, n, seed, steps, likelihood, **kw), model.weights_hash,
                        dtype="float64")


def report_cost(model, n: int, steps: int | None, likelihood: bool = True) -> float:
    """Estimated seconds of an uncached report on a contended 2-core CPU: the full Jacobian (D directions) and
    δ's cross-polytope through every sampler step, per sample (measured: 64 digit samples × 20 steps ≈ 8 s,
    64 ring samples × 50 steps ≈ 2 s; with a margin of 1.5)."""
    steps = int(model.default_steps if steps is None else steps)
    d = int(np.prod(model.sample_shape))
    per = 4.7e-4 + 9.3e-5 * d
    return 1.0 + 1.5 * int(n) * steps * per * (1.0 if likelihood else 0.9)


def _table_arrays(table: pd.DataFrame, prefix: str) -> dict[str, np.ndarray]:
    out = {f"{prefix}columns": np.array(list(table.columns), dtype=str)}
    for name in table.columns:
        col = table[name].to_numpy()
        out[f"{prefix}{name}"] = col.astype(str) if col.dtype == object else col
    return out


def _table_from(arrays: Mapping[str, np.ndarray], prefix: str) -> pd.DataFrame:
    return pd.DataFrame({str(c): arrays[f"{prefix}{c}"] for c in arrays[f"{prefix}columns"]})


def report_cached(model, n: int | None = None, seed: int = 0, steps: int | None = None, threshold: float = THRESHOLD,
                  progress: Callable | None = None, *, likelihood: bool = True, n_boot: int | None = None,
                  n_directions: int | None = None, radius: float | None = None, duplicate_tol: float | None = None,
                  batch_size: int = 64) -> tuple[MemorizationReport, dict]:
    """``memorization_report(model, n, seed, steps, ..., threshold)`` through the disk cache.

    Returns ``(report, record)``: the same report ``memorization_report`` gives for these arguments (the table's
    ``memorized`` column and the AUROC table at ``threshold``), and a record with ``hit`` (everything came from
    disk), ``seconds`` (compute time of the samples and descriptors), ``key`` and ``params``. ``n`` and
    ``n_boot`` default to the profile's sizes. ``progress(fraction, message)`` is called while computing.
    """
    size = sizes()
    n = size["n"] if n is None else int(n)
    n_boot = size["n_boot"] if n_boot is None else int(n_boot)
    if not 0 < float(threshold) <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    params = report_params(model, n, seed, steps, likelihood, n_directions, radius, duplicate_tol)
    fresh: dict = {}

    def compute():
        rep = memorization_report(model, n=n, seed=int(seed), steps=params["steps"], n_directions=n_directions,
                                  radius=radius, batch_size=batch_size, likelihood=likelihood,
                                  threshold=float(threshold), duplicate_tol=duplicate_tol, n_boot=n_boot,
                                  progress=progress)
        fresh["report"] = rep
        return {"samples": rep.samples, **_table_arrays(rep.table, "t_"),
                "params_json": np.array(json.dumps(cache._jsonable(rep.params)))}

    arrays, record = cache.cached("memorization", params, compute, weights_hash=model.weights_hash, dtype="float64")
    table = _table_from(arrays, "t_")
    table["memorized"] = table["ratio"].to_numpy() < float(threshold)
    rparams = {**json.loads(str(arrays["params_json"])), "threshold": float(threshold), "n_boot": n_boot}

    def compute_auroc():
        if "report" in fresh:  # just computed at this threshold: reuse its table
            return _table_arrays(fresh["report"].auroc, "a_")
        auroc = _separation_table({f: table[f].to_numpy() for f in FEATURES}, table["memorized"].to_numpy(),
                                  n_boot=n_boot, seed=int(seed))
        return _table_arrays(auroc, "a_")

    a_arrays, a_record = cache.cached("memorization_auroc", {**params, "threshold": float(threshold),
                                                             "n_boot": n_boot},
                                      compute_auroc, weights_hash=model.weights_hash, dtype="float64")
    auroc = _table_from(a_arrays, "a_")
    report = MemorizationReport(np.asarray(arrays["samples"]), table, auroc, rparams)
    return report, {**record, "hit": bool(record["hit"] and a_record["hit"]), "auroc_key": a_record["key"]}


# ---------------------------------------------------------------------------- gallery
def gallery_order(table: pd.DataFrame, sort_by: str = "ratio", descending: bool = False,
                  show: str = "all") -> np.ndarray:
    """Row positions of ``table`` for the gallery: the rows ``show`` keeps (all, memorized, novel), sorted by the
    column ``sort_by`` (ascending unless ``descending``); ties keep table order, NaN values go last."""
    if sort_by not in table.columns:
        raise ValueError(f"cannot sort by {sort_by!r}; valid: {', '.join(k for k in SORT_KEYS if k in table)}")
    mem = table["memorized"].to_numpy(bool)
    if show == "all":
        keep = np.ones(len(table), bool)
    elif show == "memorized":
        keep = mem
    elif show == "novel":
        keep = ~mem
    else:
        raise ValueError(f"show must be one of {', '.join(FILTERS)}; got {show!r}")
    pos = np.flatnonzero(keep)
    values = table[sort_by].to_numpy(np.float64)[pos]
    nan = np.isnan(values)
    key = np.where(nan, 0.0, -values if descending else values)
    return pos[np.lexsort((pos, key, nan))]


def page_slice(order: np.ndarray, shown: int) -> np.ndarray:
    """The first ``shown`` positions of the gallery order (at least none, at most all)."""
    return np.asarray(order)[:max(0, int(shown))]


def neighbours(train, samples, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest training images of each sample (Euclidean, exact): distances and indices, (m, k) each."""
    train = np.asarray(train)
    samples = np.asarray(samples)
    if len(samples) == 0:
        return np.zeros((0, k)), np.zeros((0, k), dtype=np.int64)
    return nearest_training(samples.reshape(len(samples), -1), train.reshape(len(train), -1),
                            k=min(int(k), len(train)))


def image_strip(vectors, image_shape: Sequence[int], scale: int = 8, gap: int = 6) -> np.ndarray:
    """Flat samples (m, D) side by side as one uint8 RGB image: each tile upscaled ``scale`` × (nearest), the
    first (the sample) followed by a wider gap than the rest (its neighbours); gaps are white."""
    tiles = list(upscale(to_grey(np.asarray(vectors).reshape(len(vectors), -1), image_shape), scale))
    h = tiles[0].shape[0]
    parts = []
    for i, tile in enumerate(tiles):
        if i:
            parts.append(np.full((h, 3 * gap if i == 1 else gap), 255, np.uint8))
        parts.append(tile)
    grey = np.concatenate(parts, axis=1)
    return np.repeat(grey[:, :, None], 3, axis=2)


def describe_sample(row: Mapping, nn_dist: Sequence[float], nn_index: Sequence[int], labels=None) -> str:
    """One caption line: seed, ratio and verdict, then each neighbour's index, distance (and label)."""
    verdict = "memorized" if bool(row["memorized"]) else "novel"
    parts = []
    for d, i in zip(nn_dist, nn_index, strict=True):
        lab = f", label {labels[int(i)]}" if labels is not None else ""
        parts.append(f"#{int(i)} (d {float(d):.3g}{lab})")
    return (f"seed {int(row['latent_seed'])} · ratio {float(row['ratio']):.3f} ({verdict}) · nearest: "
            + ", ".join(parts))


def gallery_table(table: pd.DataFrame, rows: np.ndarray, nn_dist: np.ndarray, nn_index: np.ndarray) -> pd.DataFrame:
    """The gallery's rows as a table: the score's columns, the descriptors and each shown neighbour."""
    cols = [c for c in ("latent_seed", "ratio", "memorized", "d_nearest", "d_second", "nearest_index",
                        "second_index", "nearest_label", "psi", "nu", "nu_eff", "delta", "log_p") if c in table]
    out = table.iloc[np.asarray(rows, dtype=np.int64)][cols].reset_index(drop=True)
    for j in range(nn_index.shape[1] if nn_index.ndim == 2 else 0):
        out[f"nn{j + 1}_index"] = nn_index[:, j]
        out[f"nn{j + 1}_distance"] = nn_dist[:, j]
    return out


# ---------------------------------------------------------------------------- scatter clicks and Local geometry
def selected_seed(customdata: Sequence, table: pd.DataFrame) -> int | None:
    """The latent seed of the first clicked point (customdata = latent seed) that is in ``table``, else None."""
    seeds = set(int(s) for s in table["latent_seed"])
    for cd in customdata:
        if isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
        try:
            s = int(cd)
        except (TypeError, ValueError):
            continue
        if s in seeds:
            return s
    return None


def row_of_seed(table: pd.DataFrame, seed: int) -> int | None:
    hits = np.flatnonzero(table["latent_seed"].to_numpy() == int(seed))
    return int(hits[0]) if len(hits) else None


def local_geometry_seeds(table: pd.DataFrame, seed: int) -> list[int]:
    """Three anchor seeds for the Local geometry page's latent plane around sample ``seed``: the seed itself,
    the next sample of the other class (so the plane spans a memorized and a novel latent) and the next sample of
    its own class, searching forward through the table and wrapping; missing ones are filled by seed + 1,
    seed + 2, … (the plane then still passes through the clicked latent)."""
    seed = int(seed)
    out = [seed]
    i = row_of_seed(table, seed)
    if i is not None:
        seeds = table["latent_seed"].to_numpy()
        mem = table["memorized"].to_numpy(bool)
        after = [(i + j) % len(table) for j in range(1, len(table))]
        for want_same in (False, True):
            nxt = next((int(seeds[r]) for r in after if (mem[r] == mem[i]) == want_same and int(seeds[r]) not in out),
                       None)
            if nxt is not None:
                out.append(nxt)
    extra = seed + 1
    while len(out) < 3:
        if extra not in out:
            out.append(extra)
        extra += 1
    return out


def describe_anchors(table: pd.DataFrame, seeds: Sequence[int]) -> str:
    """What the Local geometry plane goes through: each anchor seed with its class among these samples."""
    parts = []
    for k, s in enumerate(seeds):
        r = row_of_seed(table, s)
        what = "not among these samples" if r is None else (
            "memorized" if bool(table["memorized"].iloc[r]) else "novel")
        parts.append(f"{int(s)} ({'this sample, ' if k == 0 else ''}{what})")
    return "The latent plane through seeds " + ", ".join(parts) + "."


# ---------------------------------------------------------------------------- comparison
def default_compare(spec: str, available: Sequence[str]) -> str | None:
    """The model to compare ``spec`` with by default: the other digit model when both load, else none."""
    other = COMPARE_PAIRS.get(spec)
    return other if other in available and other != spec else None


def compare_options(spec: str, available: Sequence[str]) -> list[str | None]:
    """None (no comparison), then every other available model."""
    return [None, *[m for m in available if m != spec]]


def summary(report: MemorizationReport) -> dict:
    """Counts and the memorized fraction of a report."""
    c = report.counts
    return {**c, "memorized_fraction": c["memorized"] / c["n"] if c["n"] else math.nan}


def comparison_table(reports: Mapping[str, MemorizationReport]) -> pd.DataFrame:
    """The AUROC tables of several models in one long table (a ``model`` column first), with each model's
    memorized fraction, for a side-by-side view and one CSV."""
    frames = []
    for name, rep in reports.items():
        df = rep.auroc.copy()
        df.insert(0, "model", name)
        df["memorized_fraction"] = summary(rep)["memorized_fraction"]
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def auroc_display(auroc: pd.DataFrame) -> pd.DataFrame:
    """The AUROC table for the page: feature labels, AUROC with its 95% interval as one text column, counts and
    the note."""
    def fmt(r):
        if not np.isfinite(r["auroc"]):
            return "n/a"
        return f"{r['auroc']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"

    return pd.DataFrame({"feature": [SORT_KEYS.get(f, f) for f in auroc["feature"]],
                         "AUROC [95% CI]": [fmt(r) for _, r in auroc.iterrows()],
                         "memorized": auroc["n_memorized"].astype(int), "novel": auroc["n_novel"].astype(int),
                         "note": auroc["note"].astype(str)})


def na_note(auroc: pd.DataFrame) -> str | None:
    """A sentence for the page when some AUROC is undefined, else None."""
    bad = auroc[~np.isfinite(auroc["auroc"].to_numpy(np.float64))]
    if bad.empty:
        return None
    first = str(bad["note"].iloc[0])
    return (f"AUROC is n/a for {', '.join(map(str, bad['feature']))}: {first}. Each class needs enough samples "
            "with a defined value; draw more samples (n) or move the threshold.")


# ---------------------------------------------------------------------------- URL query parameters
#: Query key → (state key, decoder, encoder), in the format of ``app_state.QUERY_SCHEMA`` (which this page
#: cannot edit; the page writes these next to the model itself).
QUERY_SCHEMA: dict[str, tuple] = {
    "mn": ("mem_n", int, str),
    "mseed": ("mem_seed", int, str),
    "msteps": ("mem_steps", int, str),
    "mthr": ("mem_threshold", float, _fmt_float),
    "msort": ("mem_sort", str, str),
    "mdesc": ("mem_descending", lambda s: s.lower() in ("1", "true", "yes"), lambda v: "1" if v else "0"),
    "mshow": ("mem_show", str, str),
    "mvs": ("mem_compare", str, str),
    "mx": ("mem_scatter", str, str),
    "msel": ("mem_sel", int, str),
}
_VALID = {"mem_sort": SORT_KEYS, "mem_show": FILTERS, "mem_scatter": DESCRIPTORS}
STATE_KEYS = [state for state, _, _ in QUERY_SCHEMA.values()]


def decode_query(query: Mapping[str, object]) -> tuple[dict, list[str]]:
    """This page's state from URL query parameters: ``(state, problems)``; bad values are skipped and named."""
    state, problems = {}, []
    for q, raw in query.items():
        if q not in QUERY_SCHEMA:
            continue
        if isinstance(raw, list | tuple):
            raw = raw[-1] if raw else ""
        key, dec, _ = QUERY_SCHEMA[q]
        try:
            value = dec(str(raw))
            if isinstance(value, float) and not (math.isfinite(value) and 0 < value <= 1):
                raise ValueError("threshold outside (0, 1]")
            if isinstance(value, int) and not isinstance(value, bool) and key in ("mem_n", "mem_steps") and value < 1:
                raise ValueError("must be positive")
            if key in _VALID and value not in _VALID[key]:
                raise ValueError("not an option")
        except (TypeError, ValueError):
            problems.append(f"{q}={raw!r}")
            continue
        state[key] = value
    return state, problems


def encode_query(state: Mapping[str, object]) -> dict[str, str]:
    """URL query parameters (strings) of this page's entries of ``state``; None values are left out."""
    to_query = {s: q for q, (s, _, _) in QUERY_SCHEMA.items()}
    return {to_query[k]: QUERY_SCHEMA[to_query[k]][2](v) for k, v in state.items() if k in to_query and v is not None}


def page_query(spec: str, state: Mapping[str, object]) -> dict[str, str]:
    """The page's whole URL query: the model (as ``app_state.encode_query`` writes it) and this page's state."""
    from explorer.app_state import encode_query as encode_shared

    return {**encode_shared({"model": spec}), **encode_query(state)}


def download_params(spec: str, report: MemorizationReport) -> dict:
    """The parameters a download carries: the model spec and everything that produced the report."""
    return {**report.params, "model": spec, "counts": report.counts}

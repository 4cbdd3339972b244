"""The Memorization page's glue (pure, unit-tested): the gallery's order and neighbours, image tiles, the seeds it
hands to the Local geometry page, the model comparison and the AUROC table's display. The heavy report is the
library's (``explorer.views.memorization.report_cached``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from explorer.images import to_grey, upscale
from explorer.memorization import MemorizationReport, nearest_training
from webui.selections import _as_sequence

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


def selected_seed(customdata: Sequence, table: pd.DataFrame) -> int | None:
    """The latent seed of the first clicked point (customdata = latent seed) that is in ``table``, else None."""
    seeds = set(int(s) for s in table["latent_seed"])
    for cd in customdata:
        seq = _as_sequence(cd)
        if seq is not None:
            cd = seq[0] if seq else None
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


def download_params(spec: str, report: MemorizationReport) -> dict:
    """The parameters a download carries: the model spec and everything that produced the report."""
    return {**report.params, "model": spec, "counts": report.counts}

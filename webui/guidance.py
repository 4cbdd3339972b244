"""The Guidance page's glue (pure, no Streamlit): the rewards of a model already on disk, the job's parameters for a
reward, the chosen ρ on the report's grid, and the data of its charts (figures vs ρ with their intervals,
histograms at two values of ρ, RGB image grids)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from explorer import cache
from explorer.guidance.figures import FIGURE_LABELS

#: The figures-vs-ρ plots: (title, figures, what to look at, whether the figures share one plot: the same units).
#: A figure the report lacks is left out.
FIGURE_GROUPS: tuple[tuple[str, tuple[str, ...], str, bool], ...] = (
    ("ψ: measured and predicted", ("psi_measured", "psi_predicted"),
     "ρ > 0 should raise ψ; the reward's prediction should follow the measured ψ (the gap is its error)", True),
    ("log p", ("log_p", "log_p_median"),
     "log p = log N(z̃) − ψ(z̃): larger ψ means a lower likelihood, so these should fall as ρ grows", True),
    ("The model's own likelihood", ("log_p_model_median",),
     "the digits' probability-flow ODE likelihood of each sample (median: a few samples far off the data have "
     "log p of −10²⁰ and more, which swamp a mean)", False),
    ("Quality", ("swd_ratio", "confidence", "on_mode"),
     "SWD ratio 1 = as close to the data as a fresh draw (lower is better); confidence and on-mode: higher is better",
     False),
    ("Diversity", ("pairwise_distance", "modes_covered", "class_entropy"),
     "the paper's claim: larger ψ gives more diverse samples", False),
    ("Memorization", ("memorized",), "does steering toward larger ψ make the model copy less?", False),
)
#: The states a new reward can be trained on (``reward_training_set``'s ``states``).
STATES = {"noised": "forward-noised end points (learns E[ψ | x_t]; steers smoothly)",
          "trajectory": "each DDIM trajectory's own states (a sharper fit that overshoots)"}
#: The reward-related keys of the guidance job's parameters (``explorer.jobs.kinds._guidance_params``).
REWARD_KEYS = ("reward_n", "reward_seed", "reward_states", "reward_net", "reward_fit", "n_directions")


def cached_rewards(model, steps: int, map: str = "sampler", condition: dict | None = None) -> list[dict]:
    """The rewards of ``model`` on disk (the user's cache, then the shipped one) trained for ``steps`` DDIM steps on
    ``map`` under ``condition`` (canonical; none by default): ``{"key", "params", "record", "overrides"}`` each,
    newest first (a key once)."""
    wanted = cache.jsonable(condition or {})
    found: dict[str, dict] = {}
    for folder in cache.read_folders():
        if not Path(folder).is_dir():
            continue
        for js in sorted(Path(folder).glob("guidance_reward-*.json")):
            try:
                entry = json.loads(js.read_text())
                with np.load(js.with_suffix(".npz"), allow_pickle=False) as f:
                    record = json.loads(str(f["record_json"]))
            except (OSError, ValueError, KeyError):
                continue
            p = entry.get("params") or {}
            if (entry.get("key") in found or entry.get("weights_hash") != model.weights_hash
                    or p.get("model") != model.name or int(p.get("steps", -1)) != int(steps)
                    or p.get("map") != map or (p.get("condition") or {}) != wanted):
                continue
            found[entry["key"]] = {"key": entry["key"], "params": p, "record": record,
                                   "created": entry.get("created", ""), "overrides": reward_overrides(p)}
    return sorted(found.values(), key=lambda r: r["created"], reverse=True)


def reward_overrides(params: dict) -> dict:
    """The guidance job's parameters that name the reward of a ``guidance_reward`` entry's ``params``."""
    return {"reward_n": int(params["n"]), "reward_seed": int(params["seed"]), "reward_states": params["states"],
            "reward_net": params.get("net"), "reward_fit": params.get("fit"),
            "n_directions": params.get("n_directions")}


def describe_reward(params: dict, record: dict | None = None) -> str:
    """One line naming a reward: its training latents, states, iterations (and held-out R² when known)."""
    fit = params.get("fit") or params.get("reward_fit") or {}
    n = params.get("n", params.get("reward_n"))
    seed = params.get("seed", params.get("reward_seed"))
    states = params.get("states", params.get("reward_states"))
    text = f"N = {n} latents (seed {seed}), {states} states"
    if fit.get("iterations"):
        text += f", {int(fit['iterations']):,} iterations"
    if record and record.get("heldout_r2") is not None:
        text += f": held-out R² {record['heldout_r2']:.2f}"
    return text


def default_rho(rhos) -> float:
    """The ρ the page shows first beside ρ = 0: the middle one of the positive values of the grid (the lower of the
    two middle ones), else the largest |ρ|."""
    rhos = [float(r) for r in rhos]
    positive = sorted(r for r in rhos if r > 0)
    if positive:
        return positive[(len(positive) - 1) // 2]
    return max(rhos, key=abs)


def snap_rho(value, rhos) -> float:
    """The grid value nearest to ``value`` (a ρ from a link or an older grid)."""
    rhos = [float(r) for r in rhos]
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default_rho(rhos)
    if not np.isfinite(v):
        return default_rho(rhos)
    return min(rhos, key=lambda r: abs(r - v))


def reference_rho(rhos) -> float:
    """The ρ the chosen one is compared with: 0 (the plain sampler) when on the grid, else the |ρ| nearest to it."""
    return min((float(r) for r in rhos), key=abs)


def rho_index(arrays: dict, rho: float) -> int:
    """The row of ``rho`` in the report's arrays."""
    grid = np.asarray(arrays["rho"], np.float64)
    i = int(np.argmin(np.abs(grid - float(rho))))
    if not np.isclose(grid[i], float(rho)):
        raise ValueError(f"ρ = {rho} is not on the report's grid {grid.tolist()}")
    return i


def figure_series(record: dict, name: str) -> dict | None:
    """One figure vs ρ: ``rho``, ``value``, ``lo``, ``hi`` arrays (the 95% bootstrap interval), or None when the
    report does not have it (or it is NaN at every ρ)."""
    rows = [(f["rho"], f[name]) for f in record["figures"] if isinstance(f.get(name), dict)]
    if not rows:
        return None
    out = {"rho": np.array([r for r, _ in rows], np.float64),
           "value": np.array([v["value"] for _, v in rows], np.float64),
           "lo": np.array([v["ci_low"] for _, v in rows], np.float64),
           "hi": np.array([v["ci_high"] for _, v in rows], np.float64), "label": FIGURE_LABELS.get(name, name)}
    return out if np.isfinite(out["value"]).any() else None


def figure_groups(record: dict) -> list[dict]:
    """The plots of FIGURE_GROUPS the report can draw: ``{"title", "caption", "series": {name: figure_series},
    "together"}``."""
    out = []
    for title, names, caption, together in FIGURE_GROUPS:
        series = {n: s for n in names if (s := figure_series(record, n)) is not None}
        if series:
            out.append({"title": title, "caption": caption, "series": series, "together": together})
    return out


def error_bars(series: dict) -> dict:
    """Plotly ``error_y`` of a figure series: asymmetric bars from the value to its interval's ends (0 where NaN)."""
    v, lo, hi = series["value"], series["lo"], series["hi"]
    return {"type": "data", "symmetric": False, "array": np.nan_to_num(hi - v).tolist(),
            "arrayminus": np.nan_to_num(v - lo).tolist()}


def histogram_bins(a: np.ndarray, b: np.ndarray, nbins: int = 30) -> dict:
    """Shared Plotly ``xbins`` for two histograms (finite values of both; a robust range: 1st–99th percentile)."""
    both = np.concatenate([np.ravel(a), np.ravel(b)]).astype(np.float64)
    both = both[np.isfinite(both)]
    if not len(both):
        return {}
    lo, hi = np.percentile(both, [1, 99]) if len(both) >= 20 else (both.min(), both.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return {"start": float(lo), "end": float(hi), "size": float((hi - lo) / nbins)}


def rgb_grid(samples: np.ndarray, columns: int = 8, scale: int = 4, gap: int = 2) -> np.ndarray:
    """Image samples (n, C, H, W) in [−1, 1] → one uint8 (rows·H·scale, cols·W·scale, 3) picture: C = 3 as RGB,
    any other C as the first channel in grey; each pixel repeated ``scale``× (crisp), white gaps."""
    x = np.asarray(samples, np.float64)
    if x.ndim != 4:
        raise ValueError(f"rgb_grid needs (n, C, H, W) samples; got shape {x.shape}")
    n, c, h, w = x.shape
    img = x[:, :3] if c == 3 else np.repeat(x[:, :1], 3, axis=1)
    img = np.round(np.clip((img + 1.0) / 2.0, 0.0, 1.0) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    img = np.repeat(np.repeat(img, scale, axis=1), scale, axis=2)
    cols = max(1, min(int(columns), n))
    rows = -(-n // cols)
    H, W = h * scale, w * scale
    out = np.full((rows * H + (rows - 1) * gap, cols * W + (cols - 1) * gap, 3), 255, np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        out[r * (H + gap):r * (H + gap) + H, q * (W + gap):q * (W + gap) + W] = img[k]
    return out


def sample_hover(arrays: dict, i: int, rows) -> list[str]:
    """Hover lines of samples ``rows`` at row ``i`` of the report: index, measured and predicted ψ, log p."""
    psi, pred, logp = (arrays[k][i] for k in ("psi_measured", "psi_predicted", "log_p"))
    return [f"sample {j}: ψ {psi[j]:.3g} (predicted {pred[j]:.3g}), log p {logp[j]:.3g}" for j in rows]


__all__ = ["FIGURE_GROUPS", "REWARD_KEYS", "STATES", "cached_rewards", "default_rho", "describe_reward",
           "error_bars", "figure_groups", "figure_series", "histogram_bins", "reference_rho", "reward_overrides",
           "rgb_grid", "rho_index", "sample_hover", "snap_rho"]

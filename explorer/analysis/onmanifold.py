"""On- vs off-manifold descriptors, as Humayun et al. (2025) study them on a toy 2-D DDPM.

Inputs are an n × n grid over a box around the data, fed as x_t to the ``from_t`` or ``denoiser``
map at step t. An input is on-manifold when it lies within r_on of a training point, with
r_on = 0.05 × the data's scale (scale = sqrt of the mean per-coordinate variance of the data).
How well each descriptor separates the classes is its AUROC (on-manifold = positive class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.spatial import cKDTree
from sklearn.metrics import roc_auc_score

from explorer.descriptors import local_complexity, local_descriptors

DESCRIPTORS = ("psi", "nu", "nu_eff", "delta")


def data_scale(data: np.ndarray) -> float:
    """sqrt(mean_k Var(x_k)): the data's spread in its own units."""
    data = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    return float(np.sqrt(data.var(0).mean()))


def grid_over_data(data: np.ndarray, n: int, margin: float = 0.25) -> np.ndarray:
    """(n², 2) points on a grid over the data's bounding box, widened by ``margin`` × its size."""
    lo, hi = data.min(0), data.max(0)
    pad = margin * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    X, Y = np.meshgrid(xs, ys)
    return np.stack([X.ravel(), Y.ravel()], 1)


def on_manifold_labels(points: np.ndarray, data: np.ndarray, r_on: float) -> tuple[np.ndarray, np.ndarray]:
    """(label, distance): label is True where the nearest training point is within ``r_on``."""
    dist, _ = cKDTree(np.asarray(data, np.float64)).query(np.asarray(points, np.float64))
    return dist <= r_on, dist


@dataclass
class OnOffResult:
    """Per-input table (x, y, dist, on, psi, nu, nu_eff, delta) and the settings that made it."""

    table: pd.DataFrame
    params: dict

    @property
    def counts(self) -> dict[str, int]:
        on = int(self.table["on"].sum())
        return {"on": on, "off": len(self.table) - on}


def on_off_manifold(model, map: str = "from_t", t: int = 170, steps: int = 50, grid_n: int = 64,
                    r_on: float | None = None, r_on_factor: float = 0.05, margin: float = 0.25,
                    radius: float | None = None, seed: int = 0) -> OnOffResult:
    """Descriptors of ``map`` at step t over a grid of x_t around a 2-D model's data, labelled on/off."""
    data = model.training_data()
    if data.ndim != 2 or data.shape[1] != 2:
        raise ValueError("on/off-manifold grids need a model with 2-D data")
    if map not in ("from_t", "denoiser"):
        raise ValueError(f"map must be 'from_t' or 'denoiser' (inputs are x_t), got {map!r}")
    r_on = r_on_factor * data_scale(data) if r_on is None else float(r_on)
    pts = grid_over_data(data, grid_n, margin)
    on, dist = on_manifold_labels(pts, data, r_on)
    spacing = float(np.abs(pts[1, 0] - pts[0, 0]))
    radius = spacing / 4 if radius is None else float(radius)
    G = model.generator(map, steps=steps, t=t)
    x = torch.from_numpy(pts).float()
    desc = local_descriptors(G, x)
    lc = local_complexity(G, x, radius, seed=seed)
    table = pd.DataFrame({"x": pts[:, 0], "y": pts[:, 1], "dist": dist, "on": on, "psi": desc.psi,
                          "nu": desc.nu, "nu_eff": desc.nu_eff, "delta": lc.delta})
    params = {"map": map, "t": int(t), "steps": int(steps), "grid_n": grid_n, "r_on": r_on, "margin": margin,
              "radius": radius, "seed": seed}
    return OnOffResult(table, params)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the ``positive`` class; NaN when a class is empty."""
    positive = np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, np.asarray(scores, np.float64)))


def auroc_table(result: OnOffResult) -> pd.DataFrame:
    """One row per descriptor: AUROC of on- vs off-manifold, with the class counts."""
    c = result.counts
    return pd.DataFrame([{"t": result.params["t"], "descriptor": k, "auroc": auroc(result.table[k], result.table["on"]),
                          "n_on": c["on"], "n_off": c["off"]} for k in DESCRIPTORS])


def auroc_sweep(model, ts, map: str = "from_t", steps: int = 50, grid_n: int = 48, progress=None,
                **kwargs) -> pd.DataFrame:
    """AUROC of each descriptor at each t of ``ts`` (the paper finds the best t near 0.17·T)."""
    rows = []
    for i, t in enumerate(ts):
        rows.append(auroc_table(on_off_manifold(model, map, int(t), steps, grid_n, **kwargs)))
        if progress is not None:
            progress(i + 1, len(ts))
    return pd.concat(rows, ignore_index=True)

"""Quality, diversity and memorization figures of a set of samples, with percentile-bootstrap intervals.

Per sample (``sample_figures``): the digit classifier's confidence max_c p(c | x) and class (8×8 one-channel image
models), the nearest ring mode and whether the point lies on it (``toy2d/ring``), whether the memorization score calls
it a copy (image models with a training set: ``explorer.memorization.MemorizationScore``).

Per set (``set_statistics``), each a function of the sample indices so that one bootstrap resamples them all:
means of every per-sample figure, the sliced-Wasserstein ratio SWD(samples, data) / SWD(fresh data, data) (point
models: ``explorer.models.quality``; 1 = as close as a fresh draw of the data), the mean pairwise distance, the
ring modes covered (of 8: modes holding at least 1% of the samples within 3 standard deviations of their centre),
the digit class entropy (nats, of the predicted classes; ln 10 = 2.30 is uniform) and the memorized fraction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from explorer.models.datasets import RING_MODES, RING_STD, TOY2D_DATASETS, ring_centres, ring_mode_of, sample_toy2d

#: Bootstrap resamples and the interval's level, unless asked otherwise.
N_BOOT = 1000
LEVEL = 0.95
#: A ring mode is covered when at least this fraction of the samples lie within 3 standard deviations of its centre.
MODE_SHARE = 0.01


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap values (NaNs dropped; NaN when none are left)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap(stats: dict[str, Callable[[np.ndarray], float]], n: int, n_boot: int = N_BOOT, seed: int = 0,
              level: float = LEVEL, max_boot: dict[str, int] | None = None) -> dict[str, dict]:
    """Each statistic f(indices) on all n samples and on ``n_boot`` resamples of n indices with replacement (the
    same resamples for every statistic; ``max_boot`` caps the resamples of slow ones): ``{name: {"value", "ci_low",
    "ci_high", "n_boot"}}``."""
    rng = np.random.default_rng(int(seed))
    every = np.arange(int(n))
    draws = rng.integers(0, int(n), size=(int(n_boot), int(n))) if n else np.zeros((0, 0), int)
    out = {}
    for name, f in stats.items():
        b = min(int(n_boot), int((max_boot or {}).get(name, n_boot)))
        boot = np.array([f(idx) for idx in draws[:b]]) if n and b else np.zeros(0)
        lo, hi = percentile_interval(boot, level)
        out[name] = {"value": float(f(every)) if n else float("nan"), "ci_low": lo, "ci_high": hi, "n_boot": b}
    return out


class ReferenceSWD:
    """``explorer.models.quality.sliced_wasserstein(a, reference)`` with the reference's projections sorted once (the
    same directions, seed 0, and the same quantile grid: equal to it for every a, up to rounding).

    On the grid of K = max(|a|, |b|) midpoints the quantile function of a is constant over blocks of the grid, so
    Σ_k |q_a(u_k) − q_b(u_k)| is summed block by block from prefix sums of the sorted reference (a binary search within
    the block per value of a and projection), never by gathering K × P values: a bootstrap resample costs about
    n·P·log(K/n), not K·P."""

    def __init__(self, reference: np.ndarray, n_projections: int = 256, seed: int = 0):
        b = np.asarray(reference, np.float64).reshape(len(reference), -1)
        theta = np.random.default_rng(seed).standard_normal((b.shape[1], n_projections))
        self.theta = theta / np.linalg.norm(theta, axis=0, keepdims=True)
        self.pb = np.sort(b @ self.theta, axis=0)
        self._grid: dict[tuple[int, int], tuple] = {}

    def _grid_for(self, n: int):
        K = max(n, len(self.pb))
        key = (K, n)
        if key not in self._grid:
            u = (np.arange(K) + 0.5) / K
            qb = self.pb[(u * len(self.pb)).astype(int)]  # (K, P), sorted along the grid
            csum = np.vstack([np.zeros((1, qb.shape[1])), np.cumsum(qb, axis=0)])
            ia = (u * n).astype(int)  # a's sorted index at each grid point: non-decreasing
            bounds = np.searchsorted(ia, np.arange(n + 1))  # block i is grid points [bounds[i], bounds[i+1])
            self._grid[key] = (K, qb, csum, bounds[:-1, None], bounds[1:, None])
        return self._grid[key]

    def __call__(self, a: np.ndarray) -> float:
        a = np.asarray(a, np.float64).reshape(len(a), -1)
        pa = np.sort(a @ self.theta, axis=0)  # (n, P)
        K, qb, csum, k0, k1 = self._grid_for(len(a))
        P = qb.shape[1]
        cols = np.arange(P)[None]
        # binary search of each value within its own block of the (sorted) grid: m = the first k ≥ k0 with
        # q_b(u_k) ≥ value, at most k1
        lo, hi = np.broadcast_to(k0, pa.shape).copy(), np.broadcast_to(k1, pa.shape).copy()
        for _ in range(int(np.ceil(np.log2(max(int((k1 - k0).max()), 1)))) + 1):
            open_ = lo < hi
            mid = np.minimum((lo + hi) // 2, K - 1)
            below = open_ & (qb[mid, cols] < pa)
            lo = np.where(below, mid + 1, lo)
            hi = np.where(open_ & ~below, mid, hi)
        m = lo
        total = (pa * (m - k0) - (csum[m, cols] - csum[k0, cols]) + (csum[k1, cols] - csum[m, cols])
                 - pa * (k1 - m)).sum()
        return float(total) / (K * P)


def is_digit_model(model) -> bool:
    """Whether the digit classifier reads this model's samples (8×8, one channel)."""
    return tuple(model.image_shape or ()) == (8, 8) and int(model.channels) == 1


def is_ring_model(model) -> bool:
    return (model.meta or {}).get("dataset") == "ring" and int(np.prod(model.sample_shape)) == 2


def _mean(a):
    return lambda idx: float(np.nanmean(a[idx])) if len(idx) else float("nan")


class FigureContext:
    """What the figures of one model need once (the classifier, the memorization score, the SWD floor), reused over
    every ρ of a report."""

    def __init__(self, model, n: int, swd_repeats: int = 10, seed: int = 12345):
        self.model = model
        self.points = model.image_shape is None and int(np.prod(model.sample_shape)) <= 16
        self.digits = is_digit_model(model)
        self.ring = is_ring_model(model)
        self.classifier = None
        if self.digits:
            from explorer.models.digits import digit_classifier

            self.classifier = digit_classifier()
        self.score = None
        if model.image_shape is not None and model.training_set is not None:
            from explorer.memorization import MemorizationScore

            self.score = MemorizationScore().fit(model.training_data())
        self.reference = None
        self.swd_floor = None
        self.swd_floor_source = None
        if self.points and model.training_set is not None:
            self.reference = model.training_data().reshape(len(model.training_set), -1).astype(np.float64)
            self.swd = ReferenceSWD(self.reference)
            dataset = (model.meta or {}).get("dataset")
            floors = []
            for r in range(int(swd_repeats)):
                if dataset in TOY2D_DATASETS:
                    fresh = sample_toy2d(dataset, int(n), seed=seed + 1000 + r)[0]
                    self.swd_floor_source = f"fresh draws of {dataset}"
                else:  # random subsets of the training set stand in for fresh draws (biased low)
                    idx = np.random.default_rng(seed + r).choice(len(self.reference), int(n), replace=True)
                    fresh = self.reference[idx]
                    self.swd_floor_source = "random subsets of the training set"
                floors.append(self.swd(fresh))
            self.swd_floor = float(np.mean(floors))

    def sample_figures(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """Per-sample arrays (n,) for samples (n, *sample_shape)."""
        x = np.asarray(samples, np.float64).reshape(len(samples), -1)
        out: dict[str, np.ndarray] = {}
        if self.classifier is not None:
            proba = self.classifier.predict_proba(x.astype(np.float32))
            out["confidence"] = proba.max(1)
            out["digit_class"] = proba.argmax(1).astype(np.int64)
        if self.ring:
            mode = ring_mode_of(x)
            out["ring_mode"] = mode.astype(np.int64)
            out["on_mode"] = (np.linalg.norm(x - ring_centres()[mode], axis=1) <= 3 * RING_STD).astype(np.float64)
        if self.score is not None and len(x):
            table = self.score.score(x)
            out["memorized"] = table["memorized"].to_numpy().astype(np.float64)
            out["memorization_ratio"] = table["ratio"].to_numpy().astype(np.float64)
        return out

    def statistics(self, samples: np.ndarray, per_sample: dict[str, np.ndarray]) -> dict[str, Callable]:
        """Set statistics as functions of sample indices (see the module docstring)."""
        x = np.asarray(samples, np.float64).reshape(len(samples), -1)
        stats: dict[str, Callable] = {}
        for name in ("psi_measured", "psi_predicted", "log_p", "log_p_model", "confidence", "on_mode", "memorized"):
            if name in per_sample:
                stats[name] = _mean(np.asarray(per_sample[name], np.float64))
        for name in ("log_p", "log_p_model"):  # a few samples thrown off the data can dominate a mean of log p
            if name in per_sample:
                v = np.asarray(per_sample[name], np.float64)
                stats[f"{name}_median"] = lambda idx, v=v: float(np.nanmedian(v[idx])) if len(idx) else float("nan")
        if self.reference is not None and self.swd_floor:
            swd, floor = self.swd, self.swd_floor
            stats["swd_ratio"] = lambda idx: swd(x[idx]) / floor
        if len(x) > 1:
            sq = (x * x).sum(1)
            dist = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * x @ x.T, 0.0))

            def pairwise(idx):
                sub = dist[np.ix_(idx, idx)]
                m = len(idx)
                return float(sub.sum() / (m * (m - 1))) if m > 1 else float("nan")

            stats["pairwise_distance"] = pairwise
        if "ring_mode" in per_sample:
            mode, on = per_sample["ring_mode"], per_sample["on_mode"] > 0

            def covered(idx):
                counts = np.bincount(mode[idx][on[idx]], minlength=RING_MODES)
                return float((counts >= max(1.0, MODE_SHARE * len(idx))).sum())

            stats["modes_covered"] = covered
        if "digit_class" in per_sample:
            cls = per_sample["digit_class"]

            def entropy(idx):
                p = np.bincount(cls[idx], minlength=10) / max(len(idx), 1)
                p = p[p > 0]
                return float(-(p * np.log(p)).sum())

            stats["class_entropy"] = entropy
        return stats


#: What each figure means (the record's and the page's labels).
FIGURE_LABELS = {
    "psi_measured": "measured ψ (plain sampler, at the inverted latent)",
    "psi_predicted": "the reward's predicted ψ (at the last step's input)",
    "log_p": "log p = log N(z̃) − ψ(z̃) (the plain sampler's change of variables)",
    "log_p_model": "the model's default likelihood of the sample (of its x_0 for latent models, at guidance 1)",
    "log_p_median": "median of log p",
    "log_p_model_median": "median of the model's default likelihood",
    "confidence": "digit classifier confidence max_c p(c | x)",
    "on_mode": "fraction of points within 3σ of a ring mode",
    "memorized": "fraction memorized (ratio < 1/3)",
    "swd_ratio": "sliced-Wasserstein ratio to the data (1 = a fresh data draw)",
    "pairwise_distance": "mean pairwise distance",
    "modes_covered": "ring modes covered (of 8)",
    "class_entropy": "digit class entropy (nats; ln 10 = 2.30 uniform)",
}

#: Resamples of the slow statistics (each SWD gathers the reference's K × 256 sorted projections).
MAX_BOOT = {"swd_ratio": 200}

__all__ = ["FIGURE_LABELS", "MAX_BOOT", "FigureContext", "LEVEL", "N_BOOT", "ReferenceSWD", "bootstrap",
           "is_digit_model", "is_ring_model", "percentile_interval"]

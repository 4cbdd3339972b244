"""Memorized vs novel samples, and how well each local descriptor separates them.

**Score.** For a sample x and a training set {t_j} (all flattened to R^D, Euclidean distance),
let a = argmin_j ‖x − t_j‖ and b = the nearest training image that is *not a near-duplicate of a*. Then

    ratio(x) = ‖x − t_a‖ / ‖x − t_b‖  ∈ [0, 1],    x is memorized  ⇔  ratio(x) < threshold = 1/3.

This is the relative nearest-neighbour criterion of Carlini et al. 2023 ("Extracting training data from
diffusion models", USENIX Security 2023: a generation is a copy when its ℓ2 distance to a training image is
small relative to its distances to the nearest other training images), in the exact form used by later
diffusion-memorization studies (Yoon et al. 2023, "Diffusion probabilistic models generalize when they fail
to memorize"; Gu et al. 2023, "On memorization in diffusion models"; after Somepalli et al. 2023's
nearest-neighbour retrieval of copies): the ℓ2 distance to the nearest training image is below 1/3 of the
distance to the second nearest.

**Near-duplicates.** Two training images at distance ≤ ``duplicate_tol`` from each other are near-duplicates,
and duplicate groups are the connected components of that graph (single linkage). Without this rule a sample
that copies image a, when a has a near-twin a' (‖t_a − t_a'‖ small), is about as close to a' as to a unless it
reproduces a far more exactly than a and a' differ: its ratio is ≈ 1 and it would be called novel, although it
copies what is in effect one training image present twice. So the "second nearest" skips a's whole group.
Default: ``duplicate_tol_ = 1/3 × median nearest-neighbour distance within the training set`` (the same
fraction as the threshold: images that much closer than typical neighbours count as one). Exact duplicates
(distance 0) are always one group, also with ``duplicate_tol=0`` (which turns the rule off otherwise), so the
second distance is never 0 / 0; a sample equal to a training image has ratio 0 by definition (0 / d, d > 0).

**Separation.** For each feature f (ψ, ν, ν_eff, δ; baselines log p and d_nearest),
AUROC = P(f(memorized) > f(novel)) + ½ P(equal), i.e. ``sklearn.metrics.roc_auc_score`` with memorized as
the positive class: 1 = memorized samples have the larger values, 0.5 = no separation, 0 = the smaller ones.
Confidence intervals: percentile bootstrap, resampling memorized and novel samples separately.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import rankdata

from explorer import distributed

#: ratio < THRESHOLD ⇔ memorized (Yoon et al. 2023; Gu et al. 2023).
THRESHOLD = 1 / 3
#: Default near-duplicate tolerance, as a fraction of the median nearest-neighbour distance in the training set.
DUPLICATE_FRACTION = 1 / 3
#: Extra candidates re-ranked with exact distances after the fast matmul screening.
_SCREEN_MARGIN = 16


def _flat(a, name: str) -> np.ndarray:
    a = a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)
    if a.ndim < 2:
        raise ValueError(f"{name} must be a batch (N, *sample_shape), got shape {a.shape}; add a batch axis")
    a = a.reshape(len(a), -1).astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds non-finite values (NaN or inf)")
    return a


def _screen(x: torch.Tensor, t: torch.Tensor, t_sq: torch.Tensor) -> torch.Tensor:
    """Squared distances (b, N) by the matmul expansion (fast; error ≈ 1e-15·(‖x‖² + ‖t‖²))."""
    return ((x * x).sum(1, keepdim=True) - 2.0 * x @ t.T + t_sq[None]).clamp_min_(0.0)


def _exact(x: torch.Tensor, t: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Exact distances (b, m) from each row of x to the training rows ``cand`` (b, m), by differences."""
    return torch.linalg.vector_norm(x[:, None, :] - t[cand], dim=2)


def _top(x: torch.Tensor, t: torch.Tensor, approx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest by exact distance among the screened candidates; ties go to the lower index."""
    m = min(t.shape[0], k + _SCREEN_MARGIN)
    cand = torch.topk(approx, m, dim=1, largest=False).indices.sort(dim=1).values
    d = _exact(x, t, cand)
    d = torch.where(torch.isinf(approx.gather(1, cand)), torch.full_like(d, math.inf), d)
    d, order = torch.sort(d, dim=1, stable=True)
    return d[:, :k], cand.gather(1, order)[:, :k]


def nearest_training(samples, train, k: int = 2, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest training images of each sample, exactly (brute force, Euclidean, float64).

    ``samples`` (n, *shape) and ``train`` (N, *shape) are flattened to (·, D). Returns distances (n, k),
    ascending, and indices (n, k) into ``train``; equal distances are ordered by index. Candidates are screened
    by a float64 matmul in chunks of ``batch_size`` samples and re-ranked by exact differences, so a distance
    of 0 is exactly 0.
    """
    x, t = _flat(samples, "samples"), _flat(train, "train")
    if x.shape[1] != t.shape[1]:
        raise ValueError(f"samples have D = {x.shape[1]} values each but training images {t.shape[1]}")
    if not 1 <= k <= len(t):
        raise ValueError(f"k must be in [1, {len(t)}] (the training set size), got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    x, t = torch.from_numpy(x), torch.from_numpy(t)
    t_sq = (t * t).sum(1)
    dist, idx = [], []
    for s in range(0, len(x), batch_size):
        xc = x[s:s + batch_size]
        d, i = _top(xc, t, _screen(xc, t, t_sq), k)
        dist.append(d)
        idx.append(i)
    if not dist:
        return np.zeros((0, k)), np.zeros((0, k), dtype=np.int64)
    return torch.cat(dist).numpy(), torch.cat(idx).numpy()


def duplicate_groups(train, tol: float, batch_size: int = 256) -> np.ndarray:
    """Group id (N,) per training image: connected components of the graph ‖t_i − t_j‖ ≤ ``tol``."""
    t = torch.from_numpy(_flat(train, "train"))
    t_sq = (t * t).sum(1)
    rows, cols = [], []
    for s in range(0, len(t), batch_size):
        tc = t[s:s + batch_size]
        approx = _screen(tc, t, t_sq)
        slack = 1e-9 * (t_sq[s:s + batch_size, None] + t_sq[None]) + 1e-300
        i, j = torch.nonzero(approx <= tol * tol + slack, as_tuple=True)
        keep = torch.linalg.vector_norm(tc[i] - t[j], dim=1) <= tol
        rows.append((i[keep] + s).numpy())
        cols.append(j[keep].numpy())
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(len(t), len(t)))
    return connected_components(graph, directed=False)[1].astype(np.int64)


class MemorizationScore:
    """Memorized-sample detector: ratio = d(nearest) / d(second-nearest distinct) < ``threshold``.

    Parameters: ``threshold`` (default 1/3: Yoon et al. 2023, Gu et al. 2023, after Carlini et al. 2023's
    relative nearest-neighbour distance), ``duplicate_tol`` (training images at distance ≤ tol are one image;
    None: 1/3 of the median nearest-neighbour distance within the training set, see the module docstring for
    why), ``batch_size`` (samples per distance chunk).

    After ``fit(train)``: ``train_`` (N, D) float64, ``duplicate_tol_``, ``group_`` (N,) group id per image,
    ``duplicate_groups_`` (the groups of more than one image, as index arrays), ``n_groups_``.
    """

    def __init__(self, threshold: float = THRESHOLD, duplicate_tol: float | None = None, batch_size: int = 256):
        self.threshold = threshold
        self.duplicate_tol = duplicate_tol
        self.batch_size = batch_size

    def fit(self, train) -> MemorizationScore:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.duplicate_tol is not None and not self.duplicate_tol >= 0:
            raise ValueError(f"duplicate_tol must be ≥ 0 or None, got {self.duplicate_tol}")
        t = _flat(train, "train")
        if len(t) < 2:
            raise ValueError(f"the training set needs at least 2 images, got {len(t)}")
        if self.duplicate_tol is None:
            d, _ = nearest_training(t, t, k=2, batch_size=self.batch_size)
            self.duplicate_tol_ = float(DUPLICATE_FRACTION * np.median(d[:, 1]))
        else:
            self.duplicate_tol_ = float(self.duplicate_tol)
        group = duplicate_groups(t, self.duplicate_tol_, self.batch_size)
        n_groups = int(group.max()) + 1
        if n_groups < 2:
            raise ValueError(f"all {len(t)} training images are near-duplicates of each other (duplicate_tol = "
                             f"{self.duplicate_tol_:.3g}); the score needs two distinct images; lower duplicate_tol")
        sizes = np.bincount(group)
        self.train_ = t
        self.group_ = group
        self.n_groups_ = n_groups
        self.duplicate_groups_ = [np.flatnonzero(group == g) for g in np.flatnonzero(sizes > 1)]
        return self

    def score(self, samples) -> pd.DataFrame:
        """One row per sample: nearest_index, second_index, d_nearest, d_second, ratio, memorized.

        ``second_index`` is the nearest training image outside the nearest one's duplicate group;
        ratio = d_nearest / d_second (0 when d_nearest = 0; d_second > 0 always).
        """
        if not hasattr(self, "train_"):
            raise ValueError("MemorizationScore is not fitted; call fit(train) first")
        x = _flat(samples, "samples")
        if x.shape[1] != self.train_.shape[1]:
            raise ValueError(f"samples have D = {x.shape[1]} values each but the training images "
                             f"{self.train_.shape[1]}")
        x, t = torch.from_numpy(x), torch.from_numpy(self.train_)
        t_sq = (t * t).sum(1)
        group = torch.from_numpy(self.group_)
        out = {"nearest_index": [], "second_index": [], "d_nearest": [], "d_second": []}
        for s in range(0, len(x), self.batch_size):
            xc = x[s:s + self.batch_size]
            approx = _screen(xc, t, t_sq)
            d1, i1 = _top(xc, t, approx, 1)
            approx = approx.masked_fill(group[None] == group[i1], math.inf)
            d2, i2 = _top(xc, t, approx, 1)
            for key, v in zip(out, (i1, i2, d1, d2), strict=True):
                out[key].append(v[:, 0].numpy())
        cols = {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
        d1, d2 = cols["d_nearest"], cols["d_second"]
        ratio = np.divide(d1, d2, out=np.zeros_like(d1), where=d1 > 0)
        return pd.DataFrame({"nearest_index": cols["nearest_index"].astype(np.int64),
                             "second_index": cols["second_index"].astype(np.int64),
                             "d_nearest": d1, "d_second": d2, "ratio": ratio,
                             "memorized": ratio < self.threshold})


# ---------------------------------------------------------------------------- separation


def _auroc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUROC of positives over negatives per row ((B, n_pos), (B, n_neg)), by the Mann–Whitney U."""
    n_pos, n_neg = pos.shape[1], neg.shape[1]
    ranks = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    u = ranks[:, :n_pos].sum(1) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def separation_table(features: dict, memorized, n_boot: int = 1000, seed: int = 0, min_count: int = 20,
                     level: float = 0.95) -> pd.DataFrame:
    """How well each feature separates memorized from novel samples: one row per feature.

    auroc = P(f(memorized) > f(novel)) + ½ P(tie) (``roc_auc_score`` with memorized as positive);
    ci_low, ci_high: the ``level`` percentile bootstrap interval over ``n_boot`` resamples that draw the
    memorized and the novel samples separately (stratified), from ``seed``. NaN feature values are dropped per
    feature (n_memorized, n_novel count what is left); with fewer than ``min_count`` of either class auroc
    and the interval are NaN and ``note`` says why.
    """
    memorized = np.asarray(memorized)
    if memorized.ndim != 1 or memorized.dtype != bool:
        raise ValueError(f"memorized must be a 1-D bool array, got dtype {memorized.dtype}, "
                         f"shape {memorized.shape}")
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"need n_boot ≥ 1 and 0 < level < 1, got n_boot={n_boot}, level={level}")
    rows = []
    for name, values in features.items():
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.shape != memorized.shape:
            raise ValueError(f"feature {name!r} has {v.size} values but memorized has {memorized.size}")
        ok = ~np.isnan(v)
        pos, neg = v[ok & memorized], v[ok & ~memorized]
        row = {"feature": name, "auroc": math.nan, "ci_low": math.nan, "ci_high": math.nan,
               "n_memorized": len(pos), "n_novel": len(neg), "note": ""}
        if min(len(pos), len(neg)) < max(min_count, 1):
            row["note"] = f"n/a (n_memorized={len(pos)}, n_novel={len(neg)}; need ≥ {min_count} each)"
        else:
            rng = np.random.default_rng(seed)
            boot = _auroc_rows(pos[rng.integers(0, len(pos), (n_boot, len(pos)))],
                               neg[rng.integers(0, len(neg), (n_boot, len(neg)))])
            alpha = (1 - level) / 2
            row.update(auroc=float(_auroc_rows(pos[None], neg[None])[0]),
                       ci_low=float(np.quantile(boot, alpha)), ci_high=float(np.quantile(boot, 1 - alpha)))
        rows.append(row)
    columns = ["feature", "auroc", "ci_low", "ci_high", "n_memorized", "n_novel", "note"]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------- report

FEATURES = ("psi", "nu", "nu_eff", "delta", "log_p", "d_nearest")


@dataclass
class MemorizationReport:
    """``samples`` (n, D); ``table`` one row per sample (latent_seed, descriptors, log_p, the score's columns,
    nearest_label when the model has labels); ``auroc`` the separation_table of FEATURES; ``params``."""

    samples: np.ndarray
    table: pd.DataFrame
    auroc: pd.DataFrame
    params: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        mem = int(self.table["memorized"].sum())
        return {"n": len(self.table), "memorized": mem, "novel": len(self.table) - mem,
                "log_p_undefined": int(self.table["log_p"].isna().sum())}


def memorization_report(model, n: int = 512, seed: int = 0, steps: int | None = None,
                        n_directions: int | None = None, radius: float | None = None, batch_size: int = 64,
                        likelihood: bool = True, threshold: float = THRESHOLD, duplicate_tol: float | None = None,
                        n_boot: int = 1000, progress=None) -> MemorizationReport:
    """Samples of the latents of seeds ``seed``..``seed + n − 1`` (latent i = ``model.latent_of_seed(seed + i)``),
    their descriptors ψ, ν, ν_eff, δ on the ``sampler`` map with ``steps`` (default ``model.default_steps``),
    log p (with the full Jacobian, P = d = D, exactly by the change of variables log N(z) − ψ(z); with a sketch,
    the model's ``default_likelihood``; NaN where undefined or with ``likelihood=False``), the
    memorization score against ``model.training_data()`` and the AUROC of each feature.

    Jacobian: full (P = d) or a sketch of ``n_directions``; δ: the same P directions (a random orthonormal
    basis when full) from direction seed 0, with ``radius`` (default ``explorer.views.sizes.delta_radius(model)``,
    the model's one rule, the same as on the Local geometry view). ``progress(fraction, message)`` is called after
    each batch. Runs on the compute device (``explorer.device.compute_view``).
    """
    from explorer.descriptors import local_complexity, local_descriptors
    from explorer.device import compute_view
    from explorer.views.sizes import delta_radius

    if n < 1 or batch_size < 1:
        raise ValueError(f"n and batch_size must be positive, got n={n}, batch_size={batch_size}")
    steps = model.default_steps if steps is None else int(steps)
    radius = delta_radius(model) if radius is None else float(radius)
    say = progress or (lambda fraction, message: None)
    share = 0.7 if likelihood else 0.95
    t0 = time.perf_counter()

    view = compute_view(model)
    G = view.generator("sampler", steps=steps)
    z = torch.stack([model.latent_of_seed(seed + i) for i in range(n)])
    samples, cols = [], {"psi": [], "nu": [], "nu_eff": [], "delta": []}
    P = None
    backend = distributed.active()
    if backend is not None:  # the same batches, on the workers of a Ray cluster
        from explorer.distributed.compute import latent_descriptors

        d, lc, xs = latent_descriptors(
            backend, model, z, map_name="sampler", steps=steps, dtype=view.dtype, n_directions=n_directions, seed=0,
            radius=radius, samples_steps=steps, chunk=batch_size,
            progress=lambda done, total: say(share * done / total, f"descriptors of {done}/{total} samples "
                                                                   f"({time.perf_counter() - t0:.0f} s)"))
        samples, P = [xs.reshape(n, -1)], d.n_directions
        for key, v in (("psi", d.psi), ("nu", d.nu), ("nu_eff", d.nu_eff), ("delta", lc.delta)):
            cols[key].append(v)
    for s in range(0, n if backend is None else 0, batch_size):
        zb = z[s:s + batch_size]
        with torch.no_grad():
            samples.append(G(zb.to(view.device, view.dtype)).reshape(len(zb), -1).double().cpu().numpy())
        d = local_descriptors(G, zb, n_directions=n_directions, seed=0)
        lc = local_complexity(G, zb, radius, n_directions=n_directions, seed=0)
        P = d.n_directions
        for key, v in (("psi", d.psi), ("nu", d.nu), ("nu_eff", d.nu_eff), ("delta", lc.delta)):
            cols[key].append(v)
        done = min(s + batch_size, n)
        say(share * done / n, f"descriptors of {done}/{n} samples ({time.perf_counter() - t0:.0f} s)")
    x = np.concatenate(samples)

    log_p = np.full(n, np.nan)
    exact = likelihood and P == z[0].numel() == x.shape[1]
    if exact:  # change of variables at x = G(z), no inversion needed: log p(x) = log N(z; 0, I) − ψ(z)
        zf = z.reshape(n, -1).double()
        log_p = (-0.5 * (zf ** 2).sum(1) - 0.5 * zf.shape[1] * math.log(2 * math.pi)).numpy() - np.concatenate(
            cols["psi"])
        say(share + 0.25, "log p by the change of variables")
    elif likelihood:  # a sketched Jacobian has no determinant: the model's own likelihood
        kwargs = {**getattr(model, "default_likelihood", {"method": "discrete"})}
        if kwargs.get("method") == "discrete":
            kwargs["steps"] = steps
        if backend is not None:
            from explorer.distributed.compute import log_prob

            log_p[:] = log_prob(backend, model, x, kwargs, batch_size, progress=lambda done, total: say(
                share + 0.25 * done / total, f"log p of {done}/{total} samples ({time.perf_counter() - t0:.0f} s)"))
        for s in range(0, n if backend is None else 0, batch_size):
            log_p[s:s + batch_size] = model.log_prob(x[s:s + batch_size], **kwargs)
            done = min(s + batch_size, n)
            say(share + 0.25 * done / n, f"log p of {done}/{n} samples ({time.perf_counter() - t0:.0f} s)")

    say(0.95, "nearest training images")
    scorer = MemorizationScore(threshold=threshold, duplicate_tol=duplicate_tol).fit(model.training_data())
    score = scorer.score(x)
    table = pd.DataFrame({"latent_seed": np.arange(seed, seed + n), **{k: np.concatenate(v) for k, v in cols.items()},
                          "log_p": log_p})
    table = pd.concat([table, score], axis=1)
    labels = model.training_labels()
    if labels is not None:
        table["nearest_label"] = np.asarray(labels)[table["nearest_index"].to_numpy()]
    auroc = separation_table({f: table[f].to_numpy() for f in FEATURES}, table["memorized"].to_numpy(),
                             n_boot=n_boot, seed=seed)
    params = {"model": model.name, "weights_hash": model.weights_hash, "n": int(n), "seed": int(seed),
              "steps": steps, "map": "sampler", "P": int(P), "direction_seed": 0, "radius": radius,
              "likelihood": bool(likelihood), "log_p_method": ("change of variables: log N(z) - psi" if exact else
                                                               "model.default_likelihood" if likelihood else None),
              "threshold": float(threshold),
              "duplicate_tol": scorer.duplicate_tol_, "duplicate_fraction": None if duplicate_tol is not None
              else DUPLICATE_FRACTION, "n_train": len(scorer.train_), "n_duplicate_groups":
              len(scorer.duplicate_groups_), "sample_shape": list(model.sample_shape), "n_boot": int(n_boot)}
    say(1.0, "done")
    return MemorizationReport(x, table, auroc, params)

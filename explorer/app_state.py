"""The app's non-UI glue, Streamlit-free and unit-tested: size profiles, URL query parameters, chart
selections → app state, cost estimates, downloads with their parameters, and CSV upload validation.

Pages only arrange widgets; every decision that can be tested without a browser lives here.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from explorer.images import to_grey

# ---------------------------------------------------------------------------- profiles
#: Default sizes (the issue's): 2,000-point graph with k = 10 plus background points, 128 × 128 planes of
#: the 50-step sampler. The ``test`` profile keeps every page to a second or two for AppTest and CI.
PROFILES: dict[str, dict] = {
    "default": {
        "plane_n": 128, "steps": 50, "n_pool": 200, "n_samples": 300, "extent": 3.0, "seeds": (),
        "graph_n": 2000, "n_background": 500, "k": 10, "view_grid": 80,
        "embed_n": 1000, "embed_lams": (0.05, 0.3, 1.0, 3.0, 10.0), "onoff_grid": 40, "auroc_ts": 8,
        "confirm_seconds": 60.0, "warm_umap": True,
    },
    "test": {
        "plane_n": 6, "steps": 3, "n_pool": 24, "n_samples": 12, "extent": 3.0, "seeds": (),
        "graph_n": 150, "n_background": 40, "k": 10, "view_grid": 16,
        "embed_n": 40, "embed_lams": (0.1, 5.0), "onoff_grid": 8, "auroc_ts": 2,
        "confirm_seconds": 1e9, "warm_umap": False,
    },
}

#: Per-kind overrides of each profile (``model_kind``). Image models (8×8 digits: d = D = 64, a 20-step sampler
#: with a 512-wide MLP) cost about 0.2 s per latent for ψ, ν and δ with the full 64-direction Jacobian and
#: 20–60 points/s for the probability-flow ODE likelihood, so: a 16 × 16 plane through three anchor seeds (a
#: plane in 64-D needs them; extent 12 covers all three, whose latents are about 11 apart), 64 samples, a
#: 48-image pool, and 300–400-point graphs without uniform background points (a uniform point in a 64-D box has
#: density ≈ 0).
KIND_OVERRIDES: dict[str, dict[str, dict]] = {
    "default": {
        "image": {"plane_n": 16, "steps": 20, "n_pool": 48, "n_samples": 64, "extent": 12.0, "seeds": (0, 1, 2),
                  "graph_n": 400, "n_background": 0, "k": 10, "embed_n": 300},
    },
    "test": {
        "image": {"plane_n": 4, "steps": 3, "n_pool": 12, "n_samples": 8, "extent": 12.0, "seeds": (0, 1, 2),
                  "graph_n": 60, "n_background": 0, "k": 10, "embed_n": 40},
    },
}
KINDS = ("points", "image")


def profile_name() -> str:
    name = os.environ.get("EXPLORER_PROFILE", "default") or "default"
    if name not in PROFILES:
        raise ValueError(f"EXPLORER_PROFILE must be one of {', '.join(PROFILES)}; got {name!r}")
    return name


def profile(kind: str | None = None) -> dict:
    """The size profile named by ``$EXPLORER_PROFILE`` (``default`` or ``test``), with the overrides of a model
    ``kind`` (``points`` or ``image``; see ``model_kind``) when given; ``$EXPLORER_CONFIRM_SECONDS`` overrides
    the cost above which work waits for a confirm (benchmarks set it high)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    name = profile_name()
    out = {**PROFILES[name], **KIND_OVERRIDES.get(name, {}).get(kind or "points", {})}
    if os.environ.get("EXPLORER_CONFIRM_SECONDS"):
        out["confirm_seconds"] = float(os.environ["EXPLORER_CONFIRM_SECONDS"])
    return out


def model_kind(model) -> str:
    """``image`` for a model whose samples are flattened images (``model.image_shape`` set), else ``points``."""
    return "image" if getattr(model, "image_shape", None) else "points"


def sizes_for(model) -> dict:
    """The size profile for ``model``: ``profile(model_kind(model))``."""
    return profile(model_kind(model))


def latent_dim(model) -> int:
    return int(np.prod(model.latent_shape))


def default_directions(d: int, max_full: int = 64) -> int:
    """The default number P of Jacobian directions for descriptors of a d-dimensional latent: the full Jacobian
    (P = d) up to ``max_full`` (64: 0.2 s per latent for the digits), else a sketch of 16 directions."""
    return int(d) if d <= max_full else min(16, int(d))


def direction_options(d: int) -> list[int]:
    """P choices for a d-dimensional latent: powers of two from 4 below d, then d itself (the full Jacobian)."""
    return sorted({p for p in (4, 8, 16, 32, 64, 128, 256) if p < d} | {int(d)})


# ---------------------------------------------------------------------------- λ scale
#: λ (and p0) slider positions: log-spaced over 1e-3 … 1e2, 4 per decade, in units of p_ref by default.
LAM_OPTIONS: tuple[float, ...] = tuple(float(f"{v:.3g}") for v in np.logspace(-3, 2, 21))


def nearest_option(value: float, options: Sequence[float] = LAM_OPTIONS) -> float:
    """The option nearest to ``value`` on a log scale (for λ read from a URL or typed)."""
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"λ must be a positive number; got {value!r}")
    return min(options, key=lambda o: abs(math.log(o) - math.log(value)))


# ---------------------------------------------------------------------------- URL query parameters
def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip() != ""]


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip() != ""]


def _fmt_float(x: float) -> str:
    return f"{float(x):.6g}"


#: Query key → (state key, decoder, encoder). Only what a user would want to share goes in the URL.
QUERY_SCHEMA: dict[str, tuple] = {
    "model": ("model", str, str),
    "map": ("lg_map", str, str),
    "t": ("lg_t", int, str),
    "steps": ("lg_steps", int, str),
    "seeds": ("lg_seeds", _ints, lambda v: ",".join(map(str, v))),
    "extent": ("lg_extent", float, _fmt_float),
    "res": ("lg_res", int, str),
    "color": ("lg_color", str, str),
    "cell": ("lg_cell", _ints, lambda v: ",".join(map(str, v))),
    "dirs": ("lg_dirs", int, str),
    "pts": ("geo_points", str, str),
    "graph": ("geo_graph", str, str),
    "k": ("geo_k", int, str),
    "eps": ("geo_eps", float, _fmt_float),
    "nq": ("geo_nq", int, str),
    "lam": ("geo_lam", float, _fmt_float),
    "p0": ("geo_p0", float, _fmt_float),
    "ends": ("geo_ends", _ints, lambda v: ",".join(map(str, v))),
    "lams": ("geo_overlay", _floats, lambda v: ",".join(map(_fmt_float, v))),
    "src": ("geo_source", int, str),
    "elam": ("emb_lam", float, _fmt_float),
    "ecolor": ("emb_color", str, str),
    "sel": ("emb_sel", _ints, lambda v: ",".join(map(str, v))),
}
STATE_TO_QUERY = {state: q for q, (state, _, _) in QUERY_SCHEMA.items()}


def decode_query(query: Mapping[str, object]) -> tuple[dict, list[str]]:
    """State values from URL query parameters; returns ``(state, problems)``.

    Unknown keys are ignored; a value that does not parse is skipped and named in ``problems`` (the app
    shows them, it never crashes on a hand-edited link).
    """
    state, problems = {}, []
    for q, raw in query.items():
        if q not in QUERY_SCHEMA:
            continue
        if isinstance(raw, list | tuple):
            raw = raw[-1] if raw else ""
        key, dec, _ = QUERY_SCHEMA[q]
        try:
            value = dec(str(raw))
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("not finite")
        except (TypeError, ValueError):
            problems.append(f"{q}={raw!r}")
            continue
        if key in ("geo_lam", "geo_p0"):
            try:
                value = nearest_option(value)
            except ValueError:
                problems.append(f"{q}={raw!r}")
                continue
        state[key] = value
    return state, problems


def encode_query(state: Mapping[str, object]) -> dict[str, str]:
    """URL query parameters (strings) of the shareable entries of ``state``; None values are left out."""
    out = {}
    for key, value in state.items():
        q = STATE_TO_QUERY.get(key)
        if q is None or value is None or (isinstance(value, list | tuple) and len(value) == 0):
            continue
        out[q] = QUERY_SCHEMA[q][2](value)
    return out


# ---------------------------------------------------------------------------- selections
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
        cd = p.get("customdata")
        if cd is None:
            continue
        if isinstance(cd, list | tuple) and len(cd) == 1:
            cd = cd[0]
        out.append(cd)
    return out


def cell_from_selection(event, n: int) -> tuple[int, int] | None:
    """(row i ↔ v[i], column j ↔ u[j]) of the first selected heatmap cell, or None; customdata = [i, j]."""
    for cd in selected_customdata(event):
        if isinstance(cd, list | tuple) and len(cd) >= 2:
            i, j = int(cd[0]), int(cd[1])
            if 0 <= i < n and 0 <= j < n:
                return i, j
    return None


def indices_from_selection(event, n: int) -> list[int]:
    """Point indices (customdata) of a selection, valid in [0, n), in order, without repeats."""
    out: list[int] = []
    for cd in selected_customdata(event):
        if isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
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


# ---------------------------------------------------------------------------- heatmap as clickable grid
def grid_cells(u: np.ndarray, v: np.ndarray, values: np.ndarray) -> dict:
    """Scatter data for an (n, n) map drawn as square markers: ``x, y, value, customdata=[i, j]`` (row i ↔ v[i])."""
    values = np.asarray(values)
    n_v, n_u = values.shape
    if (len(v), len(u)) != (n_v, n_u):
        raise ValueError(f"map shape {values.shape} does not match len(v)={len(v)}, len(u)={len(u)}")
    ii, jj = np.meshgrid(np.arange(n_v), np.arange(n_u), indexing="ij")
    return {"x": np.asarray(u)[jj.ravel()], "y": np.asarray(v)[ii.ravel()], "value": values.ravel(),
            "customdata": np.stack([ii.ravel(), jj.ravel()], 1)}


# ---------------------------------------------------------------------------- image galleries
def grey_images(x: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Flat model-space images (…, h·w) in [−1, 1] → grey levels (N, h, w) in [0, 1] for display, clipped."""
    h, w = (int(s) for s in image_shape)
    return to_grey(np.asarray(x).reshape(-1, h * w), (h, w))


def mosaic(images: np.ndarray, ncols: int, gap: int = 1) -> dict:
    """Images (N, h, w) tiled row-major into one (H, W) array for a single heatmap trace (NaN in the gaps, drawn
    transparent), with each image's centre ``x``, ``y`` and its box ``[x0, y0, x1, y1]`` in heatmap coordinates
    (pixel (r, c) of the mosaic sits at x = c, y = r; draw with the y axis reversed)."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or not len(images):
        raise ValueError(f"images must be a non-empty (N, h, w) array; got shape {images.shape}")
    N, h, w = images.shape
    ncols = max(1, min(int(ncols), N))
    nrows = math.ceil(N / ncols)
    z = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.nan)
    rows, cols = np.divmod(np.arange(N), ncols)
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        z[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = images[k]
    x0, y0 = cols * (w + gap) - 0.5, rows * (h + gap) - 0.5
    return {"z": z, "x": x0 + w / 2, "y": y0 + h / 2, "boxes": np.stack([x0, y0, x0 + w, y0 + h], 1),
            "nrows": nrows, "ncols": ncols}


def sorted_by(values: np.ndarray, ascending: bool = True) -> np.ndarray:
    """Indices that sort ``values`` (NaN last), stable: the order of a gallery sorted by a descriptor."""
    v = np.asarray(values, dtype=np.float64)
    key = np.where(np.isnan(v), np.inf, v if ascending else -v)
    return np.argsort(key, kind="stable")


# ---------------------------------------------------------------------------- cost estimates
#: Seconds per unit on a contended 2-core CPU, measured for the toy 2-D models (conservative): e.g. 128² cells of
#: the 50-step sampler took 69 s; embeddings of 1,000 points over 5 λ values took 24 s. ``direction_step``: ψ, ν
#: and δ per latent, sampler step and Jacobian direction through the digits' 512-wide MLP (P = 16 and P = 64 both
#: gave 1.5e-4 s: 0.19 s per latent for the full 64-direction Jacobian of the 20-step sampler).
_COST = {"step_overhead": 0.3, "latent_step": 1.5e-4, "direction_step": 1.5e-4, "density_eval": 5.0e-6,
         "logprob_eval_step": 1.0e-5, "dijkstra_pair": 1.0e-6, "umap_point": 1.5e-3}


def descriptor_cost(n_latents: int, steps: int, map_name: str = "sampler", t: int | None = None,
                    T: int = 1000, n_directions: int = 2) -> float:
    """Estimated seconds for ψ/ν/δ of ``n_latents`` latents through a ``map_name`` with ``steps`` steps and
    ``n_directions`` Jacobian directions (2 for the toy models; up to 64 for the digits)."""
    if map_name == "denoiser":
        eff = 1
    elif map_name == "from_t" and t is not None:
        eff = max(1, math.ceil(steps * (t + 1) / T))
    else:
        eff = steps
    per = _COST["latent_step"] if n_directions <= 2 else n_directions * _COST["direction_step"]
    return 1.0 + eff * (_COST["step_overhead"] + n_latents * per)


def density_cost(n_points: int, model_density: bool, steps: int = 50,
                 seconds_per_point: float | None = None) -> float:
    """Estimated seconds to evaluate log p at ``n_points`` (model likelihood or KDE); ``seconds_per_point``
    (a measured model likelihood, e.g. the digits' ODE) replaces the toy models' DDIM inversion estimate."""
    if model_density and seconds_per_point is not None:
        per = float(seconds_per_point)
    else:
        per = _COST["logprob_eval_step"] * steps if model_density else _COST["density_eval"]
    return 1.0 + n_points * per


def graph_cost(n_nodes: int, k: int, n_quad: int, model_density: bool, steps: int = 50,
               seconds_per_point: float | None = None) -> float:
    """Estimated seconds to fit the geodesic graph: log p at the nodes and at E·n_quad quadrature points."""
    n_edges = n_nodes * k * 0.75
    return density_cost(int(n_nodes + n_edges * n_quad), model_density, steps, seconds_per_point)


def embedding_cost(n: int, n_lams: int, graph: float) -> float:
    """Estimated seconds for the embedding page: graph fit, (n_lams + 1) distance matrices, n_lams + 2 UMAPs."""
    return graph + (n_lams + 1) * n * n * _COST["dijkstra_pair"] + (n_lams + 2) * (1.0 + n * _COST["umap_point"])


def needs_confirm(seconds: float, limit: float = 60.0) -> bool:
    """Whether work of ``seconds`` must say its cost and wait for a confirm (issue: more than about a minute)."""
    return float(seconds) > float(limit)


def describe_seconds(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    return f"about {seconds / 60:.0f} min"


# ---------------------------------------------------------------------------- downloads
def params_json(params: Mapping) -> str:
    """The parameters of a download as JSON (non-JSON values as strings)."""
    from explorer.cache import _jsonable

    return json.dumps(_jsonable(dict(params)), sort_keys=True)


def csv_bytes(table, params: Mapping) -> bytes:
    """A CSV of ``table`` (a pandas DataFrame or dict of columns) whose first line is ``# params: {json}``.

    Read back with ``pandas.read_csv(f, comment="#")``; the parameters with ``read_params``.
    """
    import pandas as pd

    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    return (f"# params: {params_json(params)}\n" + df.to_csv(index=False)).encode()


def npz_bytes(arrays: Mapping[str, np.ndarray], params: Mapping) -> bytes:
    """An NPZ of ``arrays`` plus ``params_json`` (a 0-d string array with the parameters)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()}, params_json=np.array(params_json(params)))
    return buf.getvalue()


def read_params(data: bytes) -> dict:
    """The parameters carried by a download made by ``csv_bytes`` or ``npz_bytes``."""
    if data[:2] == b"PK":
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            return json.loads(str(f["params_json"]))
    first = data.split(b"\n", 1)[0].decode()
    if not first.startswith("# params: "):
        raise ValueError("not a download of this app: no '# params:' line")
    return json.loads(first[len("# params: "):])


# ---------------------------------------------------------------------------- CSV upload
MAX_UPLOAD_ROWS = 20000


def parse_points_csv(data: bytes, max_rows: int = MAX_UPLOAD_ROWS) -> np.ndarray:
    """Validated 2-D points from an uploaded CSV: two numeric columns (a header row is allowed), finite,
    at least 10 rows and at most ``max_rows``. Raises ValueError with one sentence saying what is wrong."""
    import pandas as pd

    if len(data) > 20 * 1024 * 1024:
        raise ValueError(f"the file is {len(data) / 1e6:.0f} MB; the limit is 20 MB")
    text = data.decode("utf-8", errors="replace")
    try:
        df = pd.read_csv(io.StringIO(text), header=None, comment="#")
    except Exception as err:  # pandas raises several parser errors
        raise ValueError(f"could not read the file as CSV: {err}") from None
    if df.shape[0] and not all(_is_number(x) for x in df.iloc[0]):
        df = df.iloc[1:]  # a header row
    if df.shape[1] != 2:
        raise ValueError(f"expected two columns (x, y); found {df.shape[1]}")
    try:
        X = df.astype(np.float64).to_numpy()
    except (TypeError, ValueError):
        raise ValueError("every value must be a number (found text in a data row)") from None
    if not np.isfinite(X).all():
        raise ValueError(f"{int((~np.isfinite(X)).any(1).sum())} rows hold NaN or infinite values")
    if len(X) < 10:
        raise ValueError(f"need at least 10 points; found {len(X)}")
    if len(X) > max_rows:
        raise ValueError(f"{len(X)} points is over the limit of {max_rows}; subsample the file")
    return X


def _is_number(x) -> bool:
    try:
        return math.isfinite(float(x)) or True
    except (TypeError, ValueError):
        return False


def log_p_color_range(log_p: np.ndarray, span: float = 25.0) -> dict:
    """Heatmap ``zmin``/``zmax`` for a log p map: the top ``span`` nats below its maximum. A model's exact
    density falls to log p ≈ −1e5 far from the data, which would otherwise wash the data region out."""
    finite = np.asarray(log_p, np.float64)[np.isfinite(log_p)]
    if not len(finite):
        return {}
    top = float(finite.max())
    return {"zmin": max(float(finite.min()), top - span), "zmax": top}

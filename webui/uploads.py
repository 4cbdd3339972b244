"""Validation of uploaded files (the Geodesics page's CSV of 2-D points)."""

from __future__ import annotations

import io
import math

import numpy as np

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

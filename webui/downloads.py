"""Downloads that carry the parameters that made them: a CSV whose first line is ``# params: {json}``, an NPZ with a
``params_json`` entry."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping

import numpy as np


def params_json(params: Mapping) -> str:
    """The parameters of a download as JSON (non-JSON values as strings)."""
    from explorer.cache import jsonable

    return json.dumps(jsonable(dict(params)), sort_keys=True)


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

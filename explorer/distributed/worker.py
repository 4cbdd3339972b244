"""The worker of a Ray backend: one actor per CPU slot or GPU, which loads each model once by name
(``explorer.models.load_model``, cached per process) and computes chunks (explorer.distributed.tasks).

Kept free of Ray imports: ``RayBackend`` wraps this class with ``ray.remote``."""

from __future__ import annotations

import os
import warnings

import numpy as np


class Worker:
    """Computes ``task`` on one chunk of rows with the model named ``spec``; checks the model's weights hash
    against the driver's (a node with other model files must not fill the driver's cache)."""

    def ping(self) -> dict:
        from explorer.device import device_report

        return {"pid": os.getpid(), "device": str(device_report())}

    def run(self, spec: str, weights_hash: str, task: str, shared: dict, rows: dict, index: int,
            fault: dict | None = None) -> dict:
        """``{"arrays": ..., "warnings": [(category, message)], "pid": ...}``, or ``{"weights_hash": other}`` when
        this worker's ``spec`` has other weights. ``fault`` (tests only): ``{"chunk": i, "marker": path}`` makes
        the worker process exit abruptly on chunk i, once (when ``marker`` does not exist yet; always when it is
        None), to test that a dead worker's chunk is computed again."""
        if fault is not None and index == fault["chunk"]:
            marker = fault.get("marker")
            if marker is None or not os.path.exists(marker):
                if marker is not None:
                    open(marker, "w").close()
                os._exit(1)
        from explorer.distributed.tasks import TASKS
        from explorer.models import load_model

        model = load_model(spec)
        if model.weights_hash != weights_hash:
            return {"weights_hash": model.weights_hash, "pid": os.getpid()}
        # writable copies of Ray's read-only buffers (torch warns about, and must not write into, those)
        rows = {k: np.array(v) for k, v in rows.items()}
        shared = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in shared.items()}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # every chunk's warnings, as a one-process loop would give them
            arrays = TASKS[task](model, shared, rows)
        said = [(w.category.__name__, str(w.message)) for w in caught
                if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)]
        return {"arrays": arrays, "warnings": said, "pid": os.getpid()}

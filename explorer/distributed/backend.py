"""A Ray backend: N worker actors (one CPU slot each, and one GPU each where the cluster has GPUs) that compute
chunks of a batch, and a driver loop that assembles the chunks in order.

``map_chunks`` splits the rows of a batch into consecutive chunks, keeps every live worker busy with up to
``tasks_per_worker`` chunks, and concatenates the results in chunk order. Failures:

- a worker process that dies is restarted by Ray (``max_restarts``) and its chunk retried on it
  (``max_task_retries``): Ray's own actor fault tolerance;
- a chunk whose worker stays dead (restarts used up, node lost) goes to another live worker, up to
  ``chunk_retries`` times; when no worker is left, or a chunk failed that often, the run stops with a UserError;
- an exception in the computation itself (a bad argument, a non-finite Jacobian) is re-raised as it is: it
  would fail the same way on every worker.

Either every chunk is in the result or ``map_chunks`` raises, so the caller (``explorer.cache.cached``) never
writes an entry with missing chunks.
"""

from __future__ import annotations

import builtins
import os
import sys
import warnings
from collections import deque

import numpy as np

from explorer.distributed import import_ray
from explorer.errors import UserError

#: Seconds to wait for the workers to start (a cluster may have to scale up, or lack the resources asked for).
START_TIMEOUT = 300.0


def _warning_class(name: str) -> type[Warning]:
    cls = getattr(builtins, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, Warning) else UserWarning


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}"


class RayBackend:
    """Workers on a Ray cluster: ``address="local"`` starts one on this machine with ``workers`` CPU slots
    (``ray.init(num_cpus=workers, include_dashboard=False)``, usage statistics off, worker logs not forwarded);
    any other address joins an existing cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:10001``). When Ray is
    already initialized in this process, its cluster is used (and left running on ``close``).

    ``workers``: actors to start (default: the cluster's GPUs when it has any, else its CPUs). Each takes one
    CPU slot, and one GPU when the cluster has GPUs (unless ``EXPLORER_DEVICE`` asks for the CPU)."""

    def __init__(self, address: str = "local", workers: int | None = None, *, max_restarts: int = 2,
                 chunk_retries: int = 2, tasks_per_worker: int = 2, start_timeout: float = START_TIMEOUT):
        ray = self.ray = import_ray()
        if workers is not None and int(workers) < 1:
            raise UserError(f"--workers must be at least 1; got {workers}")
        self.address = address
        self.chunk_retries = int(chunk_retries)
        self.tasks_per_worker = max(1, int(tasks_per_worker))
        #: tests only: ``{"chunk": i, "marker": path}`` kills the worker that computes chunk i (see Worker.run)
        self.fault: dict | None = None
        self._owns = False
        if not ray.is_initialized():
            self._init(address, workers)
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        self.use_gpu = gpus > 0 and not os.environ.get("EXPLORER_DEVICE", "").startswith("cpu")
        n = int(workers) if workers is not None else (gpus if self.use_gpu else max(1, cpus))
        if self.use_gpu and n > gpus:
            self.close()
            raise UserError(f"--workers {n} needs {n} GPUs (one per worker) but the cluster has {gpus}; give "
                            f"--workers {gpus} or fewer (or EXPLORER_DEVICE=cpu for CPU workers)")
        if n > cpus:
            self.close()
            raise UserError(f"--workers {n} needs {n} CPU slots (one per worker) but the cluster has {cpus}; give "
                            f"--workers {cpus} or fewer")
        from explorer.distributed.worker import Worker

        actor = ray.remote(Worker).options(num_cpus=1, num_gpus=1 if self.use_gpu else 0,
                                           max_restarts=int(max_restarts), max_task_retries=int(max_restarts))
        self.actors = [actor.remote() for _ in range(n)]
        try:
            self.info = ray.get([a.ping.remote() for a in self.actors], timeout=start_timeout)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise UserError(f"the Ray cluster did not start {n} workers (1 CPU{' and 1 GPU' if self.use_gpu else ''} "
                            f"each) within {start_timeout:.0f} s; check `ray status` for free resources, or give "
                            "fewer --workers") from None
        except ray.exceptions.RayError as err:
            self.close()
            raise UserError(f"the Ray workers could not start ({_one_line(err)}); every node needs this repository "
                            "(or explorer installed) with its requirements, see README 'Beyond one machine'") from None

    def _init(self, address: str, workers: int | None) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        try:
            if address == "local":
                self.ray.init(num_cpus=int(workers or len(os.sched_getaffinity(0))), **kwargs)
            else:
                from explorer.cache import REPO_ROOT

                path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
                self.ray.init(address=address, runtime_env={"env_vars": {"PYTHONPATH": path}},
                              **{k: v for k, v in kwargs.items() if k != "include_dashboard"})
        except (ConnectionError, RuntimeError, ValueError, OSError) as err:
            where = "start a local Ray cluster" if address == "local" else f"connect to the Ray cluster at {address!r}"
            raise UserError(f"could not {where} ({_one_line(err)}); start one with `ray start --head` and give "
                            "--ray auto, or use --ray local") from None
        self._owns = True

    @property
    def workers(self) -> int:
        return len(self.actors)

    def describe(self) -> str:
        where = "a local Ray cluster" if self.address == "local" else f"the Ray cluster at {self.address}"
        return f"{self.workers} worker(s) on {where}, {'one GPU' if self.use_gpu else 'one CPU'} each"

    # ------------------------------------------------------------------ the driver loop
    def map_chunks(self, model, task: str, shared: dict, rows: dict[str, np.ndarray], chunk: int,
                   progress=None) -> dict[str, np.ndarray]:
        """``explorer.distributed.tasks.TASKS[task](model, shared, rows[s:e])`` for consecutive chunks of ``chunk``
        rows, on the workers (which load ``model.name`` themselves), concatenated in order: one row per input
        row. ``progress(done_rows, total_rows)`` after each chunk. Raises unless every chunk came back."""
        ray = self.ray
        n = len(next(iter(rows.values())))
        chunk = max(1, int(chunk))
        bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
        shared_ref = ray.put(shared)
        pending = deque(range(len(bounds)))
        failures = [0] * len(bounds)
        results: dict[int, dict] = {}
        inflight: dict = {}  # ObjectRef -> (chunk index, actor index)
        alive = list(range(len(self.actors)))
        load = dict.fromkeys(alive, 0)
        done_rows = 0

        def submit(i: int, a: int) -> None:
            s, e = bounds[i]
            ref = self.actors[a].run.remote(model.name, model.weights_hash, task, shared_ref,
                                            {k: np.ascontiguousarray(v[s:e]) for k, v in rows.items()}, i,
                                            self.fault)
            inflight[ref] = (i, a)
            load[a] += 1

        try:
            while len(results) < len(bounds):
                for a in sorted(alive, key=lambda a: load[a]):
                    while pending and load[a] < self.tasks_per_worker:
                        submit(pending.popleft(), a)
                if not inflight:
                    raise UserError(f"every Ray worker died ({len(self.actors)} started); {len(bounds) - len(results)}"
                                    f" of {len(bounds)} chunks were not computed and nothing was written; check the "
                                    "workers' memory (`ray status`, the raylet logs) and run again")
                [ref], _ = ray.wait(list(inflight), num_returns=1)
                i, a = inflight.pop(ref)
                load[a] -= 1
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayTaskError as err:  # the computation raised: it would everywhere
                    cause = getattr(err, "cause", None)
                    raise (cause if isinstance(cause, Exception) else UserError(_one_line(err))) from None
                except ray.exceptions.RayError as err:  # the worker (or its node) died: compute elsewhere
                    failures[i] += 1
                    if a in alive:
                        alive.remove(a)
                        self._kill(self.actors[a])
                    if failures[i] > self.chunk_retries:
                        raise UserError(f"chunk {i + 1} of {len(bounds)} failed on {failures[i]} workers (last: "
                                        f"{_one_line(err)}); nothing was written") from None
                    print(f"warning: a Ray worker died ({type(err).__name__}); its chunk goes to another of the "
                          f"{len(alive)} left", file=sys.stderr)
                    pending.appendleft(i)
                    continue
                if "arrays" not in out:
                    raise UserError(f"a Ray worker (pid {out.get('pid')}) loaded {model.name!r} with weights "
                                    f"{out.get('weights_hash')}, not {model.weights_hash} as here; every node must "
                                    "have the same model files")
                s, e = bounds[i]
                for key, value in out["arrays"].items():
                    if len(value) != e - s:
                        raise UserError(f"a Ray worker returned {len(value)} rows of {key!r} for a chunk of {e - s}")
                for category, message in out["warnings"]:
                    warnings.warn(message, _warning_class(category), stacklevel=2)
                results[i] = out["arrays"]
                done_rows += e - s
                if progress is not None:
                    progress(done_rows, n)
        finally:
            for ref in inflight:
                ray.cancel(ref)
        if not bounds:
            return {}
        keys = results[0].keys()
        return {k: np.concatenate([results[i][k] for i in range(len(bounds))]) for k in keys}

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Stop the workers; shut the cluster down when this backend started it."""
        for a in getattr(self, "actors", []):
            self._kill(a)
        self.actors = []
        if self._owns:
            self.ray.shutdown()
            self._owns = False

    def _kill(self, actor) -> None:
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

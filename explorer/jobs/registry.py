"""The compute worker: one thread per process that runs every heavy job, one at a time, keyed by its cache key.

Why one thread: forward-mode AD levels in torch are process-wide, so two threads running ``vmap(jvp)`` at once
corrupt each other ("Trying to access a forward AD level with an invalid index"). All descriptor, likelihood and
embedding work therefore goes through this worker (the CLI calls the same job functions in the foreground).

A job is submitted with a key (what it computes, e.g. the cache kind and key of its result): a second submit of
the same key while it is queued, running or done returns the same job, so reruns, page switches and a second
browser session never duplicate work. Jobs report progress through ``Job.progress(fraction, message)``, which
also raises ``JobCancelled`` once ``cancel()`` was asked: a cancelled job stops at its next progress call and,
since the disk cache writes an entry only when its computation returns, leaves no partial entry. Finished results
stay in memory (the last ``keep`` jobs), so a page can draw them even when the disk cache cannot be written.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class JobCancelled(Exception):
    """Raised inside a job's progress callback once the job was asked to stop."""


@dataclass(eq=False)
class Job:
    """One unit of heavy work. ``fn(job)`` computes the result; it calls ``job.progress`` as it goes.

    Attributes: ``key``, ``label`` (what a user reads), ``status`` (queued, running, done, failed, cancelled),
    ``fraction`` (0 … 1), ``message``, ``submitted``/``started``/``finished`` (``time.time()``), ``result``,
    ``error`` (one line) and ``trace`` (the traceback, for developers), ``estimate`` (seconds, when known).
    """

    key: str
    fn: Callable[[Job], object]
    label: str = ""
    estimate: float | None = None
    meta: dict = field(default_factory=dict)
    status: str = QUEUED
    fraction: float = 0.0
    message: str = ""
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: object = None
    error: str | None = None
    trace: str | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    id: int = field(default_factory=itertools.count().__next__)

    # ------------------------------------------------------------------ inside the job
    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report ``fraction`` done (clipped to [0, 1]); raises ``JobCancelled`` when a stop was asked."""
        if self._cancel.is_set():
            raise JobCancelled(self.key)
        self.fraction = min(max(float(fraction), 0.0), 1.0)
        if message is not None:
            self.message = str(message)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    # ------------------------------------------------------------------ outside
    def cancel(self) -> None:
        """Ask the job to stop: a queued job never starts; a running one stops at its next progress call."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (done, failed or cancelled); False on timeout."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    @property
    def remaining(self) -> float | None:
        """Seconds left, from the job's own measured rate (elapsed / fraction done), else its estimate."""
        if self.status in FINISHED:
            return 0.0
        if self.started is not None and self.fraction >= 0.02 and self.elapsed > 0.5:
            return self.elapsed * (1.0 - self.fraction) / self.fraction
        if self.estimate is not None:
            return max(0.0, self.estimate - self.elapsed)
        return None

    def summary(self) -> dict:
        return {"key": self.key, "label": self.label, "status": self.status, "fraction": self.fraction,
                "message": self.message, "elapsed": self.elapsed, "remaining": self.remaining,
                "estimate": self.estimate, "error": self.error}


class JobRegistry:
    """The jobs of one process and the worker thread (a daemon, started on the first submit) that runs them in
    submission order. ``keep``: finished jobs kept (with their results) for pages to read."""

    def __init__(self, keep: int = 64, name: str = "explorer-compute"):
        self.keep = int(keep)
        self.name = name
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: list[Job] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self.on_finish: list[Callable[[Job], None]] = []

    # ------------------------------------------------------------------ submitting and finding
    def submit(self, key: str, fn: Callable[[Job], object], label: str = "", estimate: float | None = None,
               meta: dict | None = None) -> Job:
        """The job of ``key``: the existing one when it is queued, running or done; else a new one, queued (a
        failed or cancelled job of that key is replaced, so a retry runs again)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.status in (QUEUED, RUNNING, DONE):
                return job
            job = Job(key, fn, label or key, estimate, dict(meta or {}))
            self._jobs[key] = job
            self._jobs.move_to_end(key)
            self._queue.append(job)
            self._ensure_worker()
            self._wake.notify_all()
            return job

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def jobs(self, active_only: bool = False) -> list[Job]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if not active_only or j.status in (QUEUED, RUNNING)]

    def cancel(self, key: str) -> bool:
        """Ask the job of ``key`` to stop; True when there was an unfinished one."""
        job = self.get(key)
        if job is None or job.done:
            return False
        job.cancel()
        with self._lock:
            if job.status == QUEUED and job in self._queue:
                self._queue.remove(job)
                self._finish(job, CANCELLED)
        return True

    def clear(self) -> int:
        """Drop every finished job (and its result); returns how many. Unfinished jobs are kept."""
        with self._lock:
            done = [k for k, j in self._jobs.items() if j.done]
            for k in done:
                del self._jobs[k]
        return len(done)

    def forget(self, key: str) -> None:
        """Drop a finished job (its result too)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.done:
                del self._jobs[key]

    def run_here(self, key: str, fn: Callable[[Job], object], label: str = "",
                 progress: Callable[[Job], None] | None = None) -> object:
        """Run a job in the calling thread (the CLI, which owns its process), through the same job object:
        ``progress(job)`` is called on each report. Returns the result; re-raises the job's error."""
        job = Job(key, fn, label or key)
        if progress is not None:
            inner = job.progress

            def reporting(fraction, message=None):
                inner(fraction, message)
                progress(job)

            job.progress = reporting  # type: ignore[method-assign]
        job.status, job.started = RUNNING, time.time()
        try:
            job.result = fn(job)
        except BaseException:
            job.status, job.finished = FAILED, time.time()
            raise
        job.status, job.finished, job.fraction = DONE, time.time(), 1.0
        return job.result

    # ------------------------------------------------------------------ the worker
    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._wake.wait()
                job = self._queue.pop(0)
                if job.cancel_requested:
                    self._finish(job, CANCELLED)
                    continue
                job.status, job.started = RUNNING, time.time()
            try:
                result = job.fn(job)
            except JobCancelled:
                with self._lock:
                    self._finish(job, CANCELLED)
            except BaseException as err:  # noqa: BLE001 - a failed job reports its error; the worker goes on
                job.trace = traceback.format_exc()
                with self._lock:
                    job.error = (f"{type(err).__name__}: {err}" if not isinstance(err, ValueError)
                                 else str(err)).splitlines()[0] if str(err) else type(err).__name__
                    self._finish(job, FAILED)
            else:
                with self._lock:
                    job.result = result
                    job.fraction = 1.0
                    self._finish(job, DONE)

    def _finish(self, job: Job, status: str) -> None:
        """(under the lock) Mark ``job`` finished and trim the finished jobs beyond ``keep``."""
        job.status, job.finished = status, time.time()
        job._done.set()
        finished = [k for k, j in self._jobs.items() if j.done]
        for k in finished[: max(0, len(finished) - self.keep)]:
            del self._jobs[k]
        for hook in list(self.on_finish):
            try:
                hook(job)
            except Exception:  # noqa: BLE001 - a hook must never stop the worker
                pass


_default: JobRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> JobRegistry:
    """The process's registry (and its one compute worker), made on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = JobRegistry()
        return _default

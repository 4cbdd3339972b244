"""Heavy work from a page (Streamlit): results come from the process's compute worker (``explorer.jobs``), never
from the page script, so a rerun, a click, a page switch or a second session never interrupts or duplicates it.

``result_of(kind, model, params)`` returns the result when it is ready (on disk, just finished, or quick enough to
wait ``INLINE_SECONDS`` for); otherwise it shows the job's progress (fraction, elapsed, remaining from its
measured rate) with a Stop button in a fragment that polls the worker, and returns None (the page then stops
drawing that part). Work estimated above the profile's confirm limit asks first.
"""

from __future__ import annotations

import streamlit as st

from explorer.jobs import CANCELLED, DONE, FAILED, default_registry
from explorer.jobs.kinds import KINDS, estimate, job_key, probe_key, run_kind
from webui import costs, profiles
from webui.query import plain

#: A job that finishes within this many seconds is drawn at once, without a progress panel.
INLINE_SECONDS = 0.3
#: Waiting for a result already on disk (reading it is quick, but may queue behind a short job).
CACHED_SECONDS = 5.0
POLL_SECONDS = 1.0


def _fmt(seconds) -> str:
    if seconds is None:
        return "unknown"
    return costs.describe_seconds(seconds).replace("about ", "")


def result_of(name: str, model, params: dict, *, what: str | None = None, confirm: bool = True):
    """The job's result, or None while it waits (for a confirm, the worker or its computation)."""
    reg = default_registry()
    key = job_key(name, model, params)
    job = reg.get(key)
    if job is not None and job.status == DONE:
        return job.result
    kind = KINDS[name]
    label = what or kind.label(model, params)
    if job is not None and job.status in (FAILED, CANCELLED):
        if job.status == FAILED:
            st.error(f"Could not compute {plain(label)}: {plain(job.error)}")
        else:
            st.info(f"Stopped: {plain(label)}. Nothing was saved.")
        if not st.button("Try again" if job.status == FAILED else "Start again", key=f"retry-{key}"):
            return None
        reg.forget(key)
        job = None
    if job is None:
        cached = kind.cached(model, params)
        seconds = None
        limit = profiles.profile()["confirm_seconds"]
        if not cached and (not confirm or limit >= 1e8):  # no confirm can be needed: no probe either
            seconds = estimate(name, model, params, probe=False)
        elif not cached:
            seconds = _estimate(name, model, params, label)
            if seconds is None:
                return None
            if confirm and costs.needs_confirm(seconds, limit) and not st.session_state.get(f"_confirmed_{key}"):
                st.info(f"{label} will take about {_fmt(seconds)} on this machine ({_device_note(model)}; "
                        "then it is cached on disk and instant next time).")
                if not st.button(f"Compute {label}", key=f"confirm-{key}", type="primary"):
                    return None
                st.session_state[f"_confirmed_{key}"] = True
        job = reg.submit(key, lambda j: run_kind(name, model, params, j), label=label, estimate=seconds,
                         meta={"kind": name, "model": model.name})
        job.wait(CACHED_SECONDS if cached else INLINE_SECONDS)
    if job.status == DONE:
        return job.result
    if job.status == FAILED:
        st.error(f"Could not compute {plain(label)}: {plain(job.error)}")
        return None
    _progress_panel(key)
    return None


def _device_note(model) -> str:
    from explorer.device import compute_view

    v = compute_view(model)
    return f"{v.device}, {str(v.dtype).replace('torch.', '')}"


def _estimate(name: str, model, params: dict, label: str) -> float | None:
    """Seconds from the measured rates; a rate not measured yet is probed by a short job in the worker."""
    seconds = estimate(name, model, params, probe=False)
    if seconds is not None:
        return seconds
    reg = default_registry()
    pkey = probe_key(name, model, params)
    probe = reg.submit(pkey, lambda j: estimate(name, model, params, probe=True),
                       label=f"measuring this model's speed for {label}")
    probe.wait(3.0)
    if probe.status == DONE:
        reg.forget(pkey)  # a later estimate reads the rates, not this job
        return float(probe.result)
    if probe.status == FAILED:
        reg.forget(pkey)
        st.warning(f"Could not measure the speed of this model ({plain(probe.error)}); the cost is unknown.")
        return float("inf")
    st.info(f"Measuring this model's speed to estimate {plain(label)}…")
    _progress_panel(pkey)
    return None


def _progress_panel(key: str) -> None:
    """The job's progress, polled every POLL_SECONDS by a fragment; the whole page reruns once it finished."""

    @st.fragment(run_every=POLL_SECONDS)
    def panel():
        job = default_registry().get(key)
        if job is None or job.done:
            st.rerun(scope="app")
            return
        ahead = [j for j in default_registry().jobs(active_only=True) if j.status == "running" and j.key != key]
        if job.status == "queued":
            st.progress(0.0, text=f"Queued: {job.label}" + (f" (after {ahead[0].label})" if ahead else ""))
        else:
            st.progress(job.fraction, text=f"{job.label}: {job.fraction:.0%}" + (f" — {job.message}" if job.message
                                                                                  else ""))
        st.caption(f"Elapsed {_fmt(job.elapsed)}; remaining about {_fmt(job.remaining)} (from the job's measured "
                   "rate). It runs in the server's compute worker: clicks and page switches do not stop it.")
        if st.button("Stop", key=f"stop-{key}", help="Cancel this computation; nothing partial is saved"):
            default_registry().cancel(key)
            st.rerun(scope="app")

    panel()


def jobs_panel() -> None:
    """The sidebar's list of running and queued jobs: rate, elapsed, remaining, Cancel (refreshed while any runs)."""
    reg = default_registry()
    if not reg.jobs(active_only=True):
        return

    @st.fragment(run_every=2.0)
    def panel():
        active = reg.jobs(active_only=True)
        if not active:
            st.caption("No computation running.")
            return
        for job in active:
            rate = f"{job.fraction / job.elapsed * 100:.2g}%/s" if job.elapsed > 0 and job.fraction > 0 else "—"
            st.caption(f"**{plain(job.label)}** ({job.status}): {job.fraction:.0%}, {rate}, elapsed "
                       f"{_fmt(job.elapsed)}, remaining about {_fmt(job.remaining)}")
            if st.button("Cancel", key=f"cancel-{job.key}"):
                reg.cancel(job.key)
                st.rerun(scope="app")

    st.header("Computations")
    panel()

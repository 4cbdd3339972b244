"""The compute backend: one worker, jobs shared by key, progress and Stop without partial cache entries, errors
reported, forward-mode AD safe across threads, and estimates from measured costs."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from explorer import cache
from explorer.jobs import CANCELLED, DONE, FAILED, JobCancelled, JobRegistry
from explorer.jobs.kinds import estimate, job_key, run_kind
from explorer.jobs.rates import Cost, Rates
from explorer.models import load_model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """torch on one thread: with two intra-op threads on a loaded 2-core machine, a probe and the run it estimates
    can see wall-clock speeds 2–15× apart (the estimate test compares them within a factor of 2)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_same_key_is_one_job_and_runs_once():
    reg = JobRegistry()
    runs = []
    gate = threading.Event()

    def fn(job):
        runs.append(1)
        gate.wait(5)
        return 42

    a = reg.submit("k", fn, "answer")
    b = reg.submit("k", fn, "answer")  # a rerun or a second session while it runs
    assert a is b
    gate.set()
    assert a.wait(5) and a.status == DONE and a.result == 42
    assert reg.submit("k", fn) is a, "a finished job is reused, not run again"
    assert runs == [1]


def test_stop_cancels_and_leaves_no_cache_entry(isolated_cache):
    reg = JobRegistry()
    started = threading.Event()

    def compute_slowly(job):
        def compute():
            for i in range(200):
                started.set()
                job.progress(i / 200, f"step {i}")
                time.sleep(0.01)
            return {"x": np.ones(3)}

        return cache.cached("slow", {"a": 1}, compute, weights_hash="w")

    job = reg.submit("slow", compute_slowly, "slow work")
    assert started.wait(5)
    assert reg.cancel("slow")
    assert job.wait(5) and job.status == CANCELLED
    assert not cache.exists("slow", {"a": 1}, "w") and not list(isolated_cache.glob("slow-*"))
    again = reg.submit("slow", compute_slowly, "slow work")
    assert again is not job, "a stopped job can be started again"
    reg.cancel("slow")


def test_failures_are_one_line_and_the_worker_goes_on():
    reg = JobRegistry()
    bad = reg.submit("bad", lambda job: (_ for _ in ()).throw(ValueError("n must be positive\nmore")))
    good = reg.submit("good", lambda job: "fine")
    assert bad.wait(5) and bad.status == FAILED and bad.error == "n must be positive" and "ValueError" in bad.trace
    assert good.wait(5) and good.result == "fine"


def test_a_queued_job_cancelled_never_starts_and_progress_estimates_remaining():
    reg = JobRegistry()
    gate = threading.Event()
    first = reg.submit("first", lambda job: gate.wait(5))
    second = reg.submit("second", lambda job: pytest.fail("a cancelled queued job must not run"))
    assert reg.cancel("second") and second.status == CANCELLED
    gate.set()
    first.wait(5)
    seen = []

    def fn(job):
        job.progress(0.5)
        time.sleep(0.6)
        seen.append(job.remaining)
        with pytest.raises(JobCancelled):
            job.cancel()
            job.progress(0.6)
        return None

    reg.run_here("here", fn)
    assert seen and 0.3 < seen[0] < 1.5, "remaining = elapsed · (1 − f) / f"


def test_forward_mode_ad_from_two_threads_at_once_is_safe(ring):
    """Two threads in vmap(jvp) at once broke torch's process-wide forward-AD levels; the lock serialises them."""
    from explorer.descriptors import local_descriptors

    G = ring.generator("sampler", steps=10)
    z = ring.latents(64, seed=0)
    ref = local_descriptors(G, z).psi
    errors, out = [], {}

    def work(k):
        try:
            for _ in range(3):
                out[k] = local_descriptors(G, z).psi
        except Exception as err:  # noqa: BLE001 - the test reports any failure
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for v in out.values():
        np.testing.assert_array_equal(v, ref)


def test_costs_fit_record_and_persist(tmp_path):
    rates = Rates(tmp_path / "rates.json")
    c = rates.fit("log_prob", "m", "cpu", "torch.float32", 2, 0.12, 258, 0.38)
    assert c.b == pytest.approx(0.26 / 256) and c.a == pytest.approx(0.12 - 2 * 0.26 / 256)
    assert Cost(c.a, c.b).seconds(1000, 2) == pytest.approx(2 * c.a + 1000 * c.b)
    rates.record("log_prob", "m", "cpu", "torch.float32", units=1000, seconds=2 * c.a + 2000 * c.b, calls=2)
    again = Rates(tmp_path / "rates.json").get("log_prob", "m", "cpu", "torch.float32")
    assert again.b == pytest.approx(1.5 * c.b) and again.a == pytest.approx(c.a)


def test_estimates_come_from_measured_costs_within_a_factor_of_two(isolated_cache):
    """A descriptor plane of the toy sampler: the estimate (probe of two batch sizes) against the time it takes."""
    m = load_model("toy2d/ring")
    params = {"map": "sampler", "steps": 20, "t": None, "seeds": [], "n": 24, "extent": 3.0, "n_directions": 2,
              "radius": 0.0118}
    assert estimate("descriptor_plane", m, params, probe=False) is None
    seconds = estimate("descriptor_plane", m, params)
    start = time.perf_counter()
    arrays, record = run_kind("descriptor_plane", m, params)
    took = time.perf_counter() - start
    assert not record["hit"] and arrays["psi"].shape == (24, 24)
    assert took / 2 <= seconds <= 2 * took + 1.0, (seconds, took)
    assert job_key("descriptor_plane", m, params) == job_key("descriptor_plane", m, dict(params))


def test_cancelled_cli_style_run_here_raises_and_keeps_nothing(isolated_cache):
    m = load_model("toy2d/ring")
    params = {"map": "sampler", "steps": 5, "t": None, "seeds": [], "n": 12, "extent": 3.0, "n_directions": 2,
              "radius": 0.0118}
    reg = JobRegistry()

    def cancel_at_start(job):
        job.cancel()
        return run_kind("descriptor_plane", m, params, job)

    with pytest.raises(JobCancelled):
        reg.run_here("x", cancel_at_start)
    assert not cache.entries()


def test_a_descriptor_plane_reports_progress_often_and_stops_midway(isolated_cache):
    """A 90 × 90 plane of a 2-D toy fits the memory budget in one chunk; its job must still report progress in
    steps (``explorer.device.progress_chunk``) so that the page's remaining time means something and Stop acts
    before the end: the job is cancelled halfway through ψ/ν and leaves no cache entry."""
    model = load_model("toy2d/spiral")
    params = {"map": "sampler", "steps": 5, "t": None, "seeds": [], "n": 90, "extent": 3.0}
    reg = JobRegistry()
    seen = []
    key = job_key("descriptor_plane", model, params)

    def fn(job):
        real = job.progress

        def progress(fraction, message=None):
            seen.append(fraction)
            if 0.2 < fraction < 0.5:
                job.cancel()
            real(fraction, message)

        job.progress = progress
        return run_kind("descriptor_plane", model, params, job)

    job = reg.submit(key, fn, "plane")
    assert job.wait(120) and job.status == CANCELLED, job.error
    assert len([f for f in seen if 0 < f < 0.5]) >= 4, seen  # several steps within the first half (ψ/ν)
    assert max(seen) < 0.5, "stopped within ψ/ν, not after the whole plane"
    assert not list(isolated_cache.glob("descriptor_maps-*"))

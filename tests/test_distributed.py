"""Batch computations sharded over a local Ray cluster (``--ray local --workers 2``) against the one-process run.

Oracle: the one-process run of the same command or view function, in float64, in another cache folder. The sharded
run must write the same cache entries (same kinds and keys, so the app finds them) with arrays equal to 1e-10, also
when a worker process dies mid-run (killed deterministically on a given chunk), and must write nothing when every
worker dies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the optional Ray extra is not installed (pip install -r "
                                        "requirements-distributed.txt; .ci/run installs it)")

from explorer import cli, distributed  # noqa: E402
from explorer.distributed.backend import RayBackend  # noqa: E402
from explorer.errors import UserError  # noqa: E402

TOL = 1e-10
GRID = ["--model", "toy2d/ring", "--grid", "8", "--steps", "4", "--dtype", "float64", "--n-directions", "1"]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPU slots for this module (the commands' ``--ray local`` joins it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _entries(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """{entry name: arrays} of a cache folder."""
    out = {}
    for npz in sorted(folder.glob("*.npz")):
        with np.load(npz, allow_pickle=False) as f:
            out[npz.stem] = {k: f[k] for k in f.files}
    return out


def _assert_same_entries(a: Path, b: Path, kind: str) -> None:
    ea, eb = _entries(a), _entries(b)
    assert sorted(ea) == sorted(eb), "the sharded run wrote other cache entries (keys) than the one-process run"
    assert any(name.startswith(kind + "-") for name in ea), f"no {kind} entry was written"
    for name, arrays in ea.items():
        assert sorted(arrays) == sorted(eb[name])
        for k, v in arrays.items():
            w = eb[name][k]
            assert v.shape == w.shape and v.dtype == w.dtype, (name, k)
            if v.dtype.kind in "fiu" and v.size:
                np.testing.assert_allclose(w, v, rtol=0, atol=TOL, err_msg=f"{name}:{k}")
            else:
                assert np.array_equal(v, w), (name, k)


def _run(monkeypatch, cache: Path, argv: list[str]) -> int:
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(cache))
    return cli.main(argv)


def test_descriptors_cli_matches_one_process(cluster, tmp_path, monkeypatch):
    assert _run(monkeypatch, tmp_path / "one", ["descriptors", *GRID, "--out", str(tmp_path / "one.npz")]) == 0
    argv = ["descriptors", *GRID, "--out", str(tmp_path / "ray.npz"), "--ray", "local", "--workers", "2"]
    assert _run(monkeypatch, tmp_path / "ray", argv) == 0
    _assert_same_entries(tmp_path / "one", tmp_path / "ray", "descriptor_maps")
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "ray.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_allclose(b[k], a[k], rtol=0, atol=TOL, err_msg=k)
    record = json.loads((tmp_path / "ray.json").read_text())
    assert record["ray"].startswith("2 worker(s)") and not record["cache_hit"]
    assert ray.is_initialized()  # --ray local joined the running cluster and left it running


def _plane(tmp_path, monkeypatch, folder: str, backend=None):
    """The Local geometry view's plane (float64, 8 × 8, P = 1), with ``backend`` active when given."""
    import torch

    from explorer.models import load_model
    from explorer.views.local_geometry import descriptor_plane

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / folder))
    model = load_model("toy2d/ring")

    def compute():
        return descriptor_plane(model, "sampler", 4, None, [], 8, 3.0, 1, dtype=torch.float64)

    if backend is None:
        return compute()
    with distributed.using(backend):
        return compute()


def _alive(actor) -> bool:
    try:
        ray.get(actor.ping.remote(), timeout=60)
        return True
    except ray.exceptions.RayError:
        return False


def _killed_run(tmp_path, monkeypatch, backend):
    """The plane with the worker that takes chunk 3 of 8 exiting abruptly once; checked complete and equal."""
    one, _ = _plane(tmp_path, monkeypatch, "one")
    marker = tmp_path / "killed"
    backend.fault = {"chunk": 2, "marker": str(marker)}
    try:
        got, record = _plane(tmp_path, monkeypatch, "ray", backend)
    finally:
        backend.fault = None
    assert marker.exists(), "the fault was not triggered: the test did not kill a worker"
    assert not record["hit"]
    _assert_same_entries(tmp_path / "one", tmp_path / "ray", "descriptor_maps")
    for k in ("psi", "nu", "nu_eff", "delta", "singular_values"):
        np.testing.assert_allclose(got[k], one[k], rtol=0, atol=TOL, err_msg=k)


def test_a_lost_worker_s_chunk_goes_to_the_other_worker(cluster, tmp_path, monkeypatch):
    """No restarts: the killed worker stays dead and its chunks go to the other one."""
    with RayBackend("local", 2, max_restarts=0) as backend:
        _killed_run(tmp_path, monkeypatch, backend)
        assert [_alive(a) for a in backend.actors].count(True) == 1


def test_every_worker_dead_stops_clearly_and_writes_nothing(cluster, tmp_path, monkeypatch):
    with RayBackend("local", 2, max_restarts=0) as backend:
        backend.fault = {"chunk": 2, "marker": None}  # chunk 3 kills whichever worker takes it
        with pytest.raises(UserError, match="every Ray worker died|chunk 3 of 8 failed"):
            _plane(tmp_path, monkeypatch, "ray", backend)
    assert not list((tmp_path / "ray").glob("descriptor_maps-*")), "a cache entry was written with missing chunks"


# ---------------------------------------------------------------------------- one backend for the rest of the module
# (created after the tests above closed theirs: the cluster has 2 CPU slots, one per worker)
@pytest.fixture(scope="module")
def backend(cluster):
    with RayBackend("local", 2) as b:  # Ray restarts a dead worker (max_restarts=2)
        yield b


def test_a_killed_worker_is_restarted_by_ray_and_its_chunk_retried(backend, tmp_path, monkeypatch):
    _killed_run(tmp_path, monkeypatch, backend)
    assert all(_alive(a) for a in backend.actors)


@pytest.mark.filterwarnings("ignore:the knn graph has:RuntimeWarning")
def test_geodesic_density_cache_matches_one_process(backend, tmp_path, monkeypatch):
    """The graph's log p at its nodes and quadrature points (the model's exact DDIM density, in float64, in chunks
    of 256 points): the same logp cache entry, equal to 1e-10, and the same distances."""
    import torch

    from explorer.density.cached import make_density
    from explorer.geodesics import GenerativeGeodesics
    from explorer.models import load_model

    model = load_model("toy2d/ring")
    X = np.asarray(model.training_data(), dtype=np.float64)[::40][:100]

    def fit(folder: str, active=None):
        monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / folder))
        density = make_density(model, "model")
        density.fn = model.log_density(dtype=torch.float64)
        density.ident = {**density.ident, "dtype": "float64"}
        density.remote, density.chunk = (model, {"dtype": torch.float64}), 256
        if active is None:
            return GenerativeGeodesics(lam=1.0, k=5, n_quad=3).fit(X, density)
        with distributed.using(active):
            return GenerativeGeodesics(lam=1.0, k=5, n_quad=3).fit(X, density)

    one, got = fit("one"), fit("ray", backend)
    _assert_same_entries(tmp_path / "one", tmp_path / "ray", "logp")
    assert one.n_density_evals_ > 2 * 256  # at least three chunks
    np.testing.assert_allclose(got.log_p_quad_, one.log_p_quad_, rtol=0, atol=TOL)
    np.testing.assert_allclose(got.distances(0), one.distances(0), rtol=0, atol=TOL)


def test_memorization_report_matches_one_process(backend, tmp_path, monkeypatch):
    """Samples, descriptors (a 1-direction sketch) and the model's log p of the samples, in batches of 8 on the
    workers; the compute dtype is float32 here, so equal to float32 rounding."""
    from explorer.models import load_model
    from explorer.views.memorization import report_cached

    model = load_model("toy2d/ring")

    def report(folder: str, active=None):
        monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / folder))
        kw = dict(n=24, steps=3, n_directions=1, n_boot=50, batch_size=8)
        if active is None:
            return report_cached(model, **kw)[0]
        with distributed.using(active):
            return report_cached(model, **kw)[0]

    with pytest.warns(RuntimeWarning, match="DDIM inversion did not converge"):
        one = report("one")
    with pytest.warns(RuntimeWarning, match="DDIM inversion did not converge"):  # forwarded from the workers
        got = report("ray", backend)
    assert sorted(_entries(tmp_path / "one")) == sorted(_entries(tmp_path / "ray"))
    np.testing.assert_allclose(got.samples, one.samples, rtol=1e-5, atol=1e-6)
    for col in ("psi", "nu", "nu_eff", "delta", "log_p", "ratio"):
        np.testing.assert_allclose(got.table[col], one.table[col], rtol=1e-5, atol=1e-5, err_msg=col)


@pytest.mark.parametrize("command", ["descriptors", "geodesics", "memorization", "precompute"])
def test_the_batch_commands_take_ray_and_workers(command):
    from explorer.cli import build_parser

    extra = {"descriptors": ["--out", "x.npz"], "geodesics": ["--out", "x.npz"], "memorization": ["--out", "x"],
             "precompute": []}[command]
    args = build_parser(command).parse_args([command, *extra, "--ray", "auto", "--workers", "3"])
    assert (args.ray, args.workers) == ("auto", 3)
def test_errors_without_ray_or_with_bad_arguments(tmp_path, monkeypatch):
    """--workers without --ray is refused before any work; a missing extra says what to install."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    assert cli.main(["descriptors", *GRID, "--out", str(tmp_path / "x.npz"), "--workers", "2"]) == 2
    assert not list(tmp_path.glob("*.npz"))
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UserError, match="requirements-distributed.txt"):
        distributed.import_ray()

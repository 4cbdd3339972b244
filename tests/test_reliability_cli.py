"""The CLI turns every expected mistake into one ``error:`` line (issue 11): errors, arguments, outputs."""

from __future__ import annotations

import pytest

import explorer.commands.convergence as convergence_command
from explorer.cli import main


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_os_errors_and_bugs_are_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "conv.json").mkdir()  # the record beside --out cannot be written
    rc = main(["convergence", "--sizes", "20", "--lams", "1", "--ref-grid", "41", "--repeats", "1",
               "--out", str(tmp_path / "conv.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and len(error_lines(err)) == 1 and "Traceback" not in err, err
    assert "Is a directory" in err
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exc:  # a folder that cannot be made is refused before any work
        main(["convergence", "--out", str(blocker / "sub" / "conv.csv")])
    assert exc.value.code == 2 and "not a folder" in capsys.readouterr().err

    def bug(args):
        raise TypeError("a bug")

    monkeypatch.setattr(convergence_command, "run", bug)
    monkeypatch.delenv("EXPLORER_DEBUG", raising=False)
    assert main(["convergence"]) == 1
    err = capsys.readouterr().err
    assert error_lines(err) == [error_lines(err)[0]] and "internal error (TypeError: a bug)" in err
    assert "EXPLORER_DEBUG=1" in err
    monkeypatch.setenv("EXPLORER_DEBUG", "1")
    with pytest.raises(TypeError, match="a bug"):  # a developer sees the traceback
        main(["convergence"])


# ---------------------------------------------------------------------------- item 11
import json  # noqa: E402
import math  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import explorer.models  # noqa: E402
from explorer import files  # noqa: E402
from explorer.errors import UserError  # noqa: E402
from explorer.models import Capabilities, GenerativeModel, TrainingSet  # noqa: E402


class TwoBlobs(GenerativeModel):
    """A tiny stand-in model for the density commands: 2 × 40 points, labels, no log_prob."""

    def __init__(self):
        rng = np.random.default_rng(0)
        X = np.r_[rng.normal(size=(40, 2)) * 0.2, rng.normal(size=(40, 2)) * 0.2 + [2.0, 0.0]].astype(np.float32)
        self.name, self.weights_hash = "fake/two-blobs", "fake-two-blobs"
        self.latent_shape = self.sample_shape = (2,)
        self.training_set = TrainingSet(X, np.r_[np.zeros(40, int), np.ones(40, int)])
        self.capabilities = Capabilities(training_set=True)

    def generator(self, map="sampler", steps=None, t=None, **condition):
        return torch.nn.Identity()


@pytest.fixture
def blobs(monkeypatch, isolated_cache):
    monkeypatch.setattr(explorer.models, "load_model", lambda spec: TwoBlobs())


def strict_json(path):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_non_finite_floats_are_refused_on_the_command_line(tmp_path, capsys):
    for argv in (["descriptors", "--radius", "inf"], ["descriptors", "--extent", "nan"],
                 ["descriptors", "--radius", "1e309"], ["geodesics", "--lam", "-inf"],
                 ["memorization", "--threshold", "nan"], ["convergence", "--lams", "1", "inf"]):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--out", str(tmp_path / "x")])
        assert exc.value.code == 2 and f"argument {argv[1]}" in capsys.readouterr().err, argv
    assert not list(tmp_path.iterdir())
    G = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    from explorer.descriptors import local_complexity

    with pytest.raises(ValueError, match="radius"):
        local_complexity(G, torch.zeros(1, 2), radius=math.inf)


def test_written_json_is_strict(tmp_path, blobs):
    files.write_json(tmp_path / "r.json", {"a": math.inf, "b": [math.nan, -math.inf], "c": np.float32(1.5)})
    assert strict_json(tmp_path / "r.json") == {"a": "inf", "b": [None, "-inf"], "c": 1.5}
    out = tmp_path / "g.npz"
    assert main(["geodesics", "--density", "kde", "--n", "80", "--k", "3", "--background", "0", "--source", "0",
                 "--target", "79", "--out", str(out)]) == 1  # two blobs, k = 3: not connected
    assert strict_json(out.with_suffix(".json"))["summary"]["connected"] is False
    assert main(["cluster", "--density", "kde", "--n", "80", "--k", "3", "--out", str(tmp_path / "c.csv")]) == 0
    assert strict_json(tmp_path / "c.json")["n_infinite_distances"] > 0


def test_bad_anchors_are_refused():
    from explorer.descriptors import latent_plane

    good = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    assert latent_plane((3,), anchors=good, n=4).latents.isfinite().all()
    nan = good.clone()
    nan[1, 0] = math.nan
    with pytest.raises(UserError, match="NaN"):
        latent_plane((3,), anchors=nan, n=4)
    for far in (good + 1e200, good * 1e200, good + 1e12):
        with pytest.raises(UserError, match="moderate size"):
            latent_plane((3,), anchors=far, n=4)


def test_a_huge_grid_is_refused_by_a_memory_estimate(tmp_path, capsys):
    assert main(["descriptors", "--model", "toy2d/ring", "--grid", "100000", "--out", str(tmp_path / "d.npz")]) == 2
    err = capsys.readouterr().err
    assert "would need about" in err and "--grid" in err, err
    assert not list(tmp_path.iterdir())


def test_a_huge_quadrature_is_refused_by_a_memory_estimate(tmp_path, capsys, blobs):
    assert main(["geodesics", "--density", "kde", "--n", "80", "--n-quad", "100000", "--background", "0",
                 "--out", str(tmp_path / "g.npz")]) == 2
    err = capsys.readouterr().err
    assert "would need about" in err and "n_quad" in err, err
    assert not list(tmp_path.iterdir())


def test_out_naming_a_folder_is_refused(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    for out in (str(tmp_path / "runs"), str(tmp_path / "new") + "/"):
        for command in ("descriptors", "geodesics", "cluster", "convergence", "memorization"):
            with pytest.raises(SystemExit) as exc:
                main([command, "--out", out])
            assert exc.value.code == 2 and "not a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"] and not list((tmp_path / "runs").iterdir())


def test_a_tiny_bandwidth_is_a_clear_error(tmp_path, capsys, blobs):
    assert main(["geodesics", "--density", "kde", "--bandwidth", "1e-300", "--n", "80",
                 "--out", str(tmp_path / "g.npz")]) == 2
    err = capsys.readouterr().err
    assert "bandwidth" in err and "too small" in err and "math domain" not in err

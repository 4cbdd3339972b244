"""Model files and training cannot lose or corrupt anything (issue 11): checked loads, safe training writes."""

from __future__ import annotations

import json
import os
import shutil
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from explorer.cli import main
from explorer.errors import UserError
from explorer.models import ASSETS, load_model


def copy_model(spec: str, folder, name: str = "m"):
    """A copy of a shipped model's two files in ``folder``; returns the .safetensors path."""
    st = folder / f"{name}.safetensors"
    shutil.copy(ASSETS / f"{spec}.safetensors", st)
    shutil.copy(ASSETS / f"{spec}.json", st.with_suffix(".json"))
    return st


def edit_record(st, **changes):
    js = st.with_suffix(".json")
    record = json.loads(js.read_text())
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    js.write_text(json.dumps(record))


def edit_tensors(st, **changes):
    tensors = load_file(str(st))
    tensors.update(changes)
    save_file(tensors, str(st))


BAD_MODEL_FILES = {
    "truncated": lambda st: st.write_bytes(st.read_bytes()[:200]),
    "random bytes": lambda st: st.write_bytes(np.random.default_rng(0).bytes(5000)),
    "no net": lambda st: edit_record(st, net=None),
    "record is a list": lambda st: st.with_suffix(".json").write_text("[]"),
    "record is null": lambda st: st.with_suffix(".json").write_text("null"),
    "record bad utf-8": lambda st: st.with_suffix(".json").write_bytes(b'{"net": "\xff\xfe"}'),
    "wrong tensor shape": lambda st: edit_tensors(st, **{"denoiser.x_proj.weight": torch.zeros(128, 3)}),
    "3-column data": lambda st: edit_tensors(st, data=torch.zeros(100, 3)),
    "NaN data": lambda st: edit_tensors(st, data=torch.full((100, 2), float("nan"))),
    "NaN weights": lambda st: edit_tensors(st, **{"denoiser.body.1.bias": torch.full((128,), float("nan"))}),
    "wrong sample_shape": lambda st: edit_record(st, sample_shape=[3]),
    "default_steps 0": lambda st: edit_record(st, default_steps=0),
    "beta_end 2": lambda st: edit_record(st, schedule={"num_train_timesteps": 1000, "beta_end": 2.0}),
}


@pytest.mark.parametrize("name", list(BAD_MODEL_FILES))
def test_every_bad_model_file_is_one_error_line_at_load(name, tmp_path, capsys):
    st = copy_model("toy2d/ring", tmp_path)
    BAD_MODEL_FILES[name](st)
    with pytest.raises(UserError, match=str(st.stem)):
        load_model(str(st), cache=False)
    out = tmp_path / "out.npz"
    rc = main(["descriptors", "--model", str(st), "--grid", "4", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1, err
    assert not out.exists()


def test_a_fifo_named_safetensors_does_not_hang(tmp_path):
    st = copy_model("toy2d/ring", tmp_path)
    st.unlink()
    os.mkfifo(st)
    result = {}

    def load():
        try:
            load_model(str(st), cache=False)
        except Exception as err:  # noqa: BLE001 - recorded for the assertion
            result["err"] = err

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "load_model blocked on a FIFO"
    assert isinstance(result.get("err"), UserError) and "not a regular file" in str(result["err"])


def test_the_model_hash_covers_the_record(tmp_path, ring):
    from explorer import cache

    st = copy_model("toy2d/ring", tmp_path)
    same = load_model(str(st), cache=False)
    assert same.weights_hash == ring.weights_hash, "a copy of the files is the same model"
    record = json.loads(st.with_suffix(".json").read_text())
    edit_record(st, schedule={**record["schedule"], "beta_end": 0.03})
    edited = load_model(str(st), cache=False)
    assert edited.weights_hash != ring.weights_hash
    params = {"model": "x", "n": 4}
    assert cache.cache_key("logp", params, edited.weights_hash) != cache.cache_key("logp", params, ring.weights_hash)
    edit_record(st, schedule=record["schedule"], weights_hash="anything")  # the stored hash itself does not count
    assert load_model(str(st), cache=False).weights_hash == ring.weights_hash


def test_shipped_cache_entries_are_keyed_by_the_shipped_models():
    from explorer import cache
    from explorer.models import BUILTIN_MODELS

    hashes = {load_model(spec).weights_hash for spec in BUILTIN_MODELS}
    hashes.add("ring_density")  # figure 4's convergence study: the ring's analytic density, not a model's weights
    records = [json.loads(p.read_text()) for p in sorted(cache.ASSETS_CACHE.glob("*.json"))]
    assert records and all(r["weights_hash"] in hashes for r in records)
    for r in records:
        assert r["key"] == cache.cache_key(r["kind"], r["params"], r["weights_hash"], r["dtype"])


# ---------------------------------------------------------------------------- training (items 1, 7, 8)
import explorer.models.toy2d as toy2d  # noqa: E402
from explorer import files  # noqa: E402
from explorer.models.datasets import sample_toy2d  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch):
    """EXPLORER_HOME in a temporary folder, and a temporary copy of assets/toy2d standing in for assets/."""
    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path / "home"))
    assets = tmp_path / "assets"
    shutil.copytree(ASSETS / "toy2d", assets / "toy2d")
    monkeypatch.setattr(files, "ASSETS", assets)
    return tmp_path


def ring_csv(folder, n=60, name="mine"):
    data, _ = sample_toy2d("ring", n, seed=3)
    csv = folder / f"{name}.csv"
    csv.write_text("x,y\n" + "\n".join(f"{a},{b}" for a, b in data))
    return csv, data


@pytest.fixture
def quick_quality(monkeypatch):
    """A failing quality figure and log p_ref without sampling (test_models covers the real ones)."""
    monkeypatch.setattr(toy2d, "quality_report", lambda *a, **k: {"swd_ratio": 201.0})
    monkeypatch.setattr(toy2d, "reference_log_density", lambda model: -1.0)


def no_training(*args, **kwargs):
    raise AssertionError("training started although the command must be refused first")


def test_train_writes_to_the_user_folder_and_enforces_the_gate(home, capsys, quick_quality):
    csv, data = ring_csv(home)
    target = home / "home" / "models" / "toy2d" / "mine.safetensors"
    assert main(["train", "toy2d", "--csv", str(csv), "--iterations", "20"]) == 2
    err = capsys.readouterr().err
    assert "failed its quality gate" in err and "--allow-failed-gate" in err and not target.parent.exists()
    assert main(["train", "toy2d", "--csv", str(csv), "--iterations", "20", "--allow-failed-gate"]) == 0
    record = json.loads(target.with_suffix(".json").read_text())
    assert record["gate_passed"] is False and "> 1.5" in record["gate"]
    model = load_model(str(target), cache=False)
    np.testing.assert_array_equal(model.training_data(), data)
    assert model.weights_hash == record["weights_hash"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["mine.json", "mine.safetensors"], "no temp files"


def test_train_never_overwrites_without_being_asked(home, capsys, monkeypatch):
    csv, _ = ring_csv(home)
    before = {p.name: p.read_bytes() for p in (files.ASSETS / "toy2d").iterdir()}
    monkeypatch.setattr(toy2d, "train_ddpm", no_training)
    for argv in (["--dataset", "ring", "--out", str(files.ASSETS)],  # an explicit --out assets
                 ["--csv", str(csv), "--out", str(files.ASSETS / "toy2d" / "..")],
                 ["--csv", str(csv), "--replace-builtin"]):
        assert main(["train", "toy2d", *argv, "--iterations", "20", "--allow-failed-gate"]) == 2, argv
        assert "error:" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (files.ASSETS / "toy2d").iterdir()} == before
    (home / "a-file").write_text("")
    assert main(["train", "toy2d", "--dataset", "ring", "--out", str(home / "a-file" / "sub")]) == 2
    assert "not a folder" in capsys.readouterr().err  # refused before training, not after
    mine = home / "home" / "models" / "toy2d" / "mine.json"
    mine.parent.mkdir(parents=True)
    mine.write_text("{}")  # an existing user model (even half of one) is not replaced without --overwrite
    assert main(["train", "toy2d", "--csv", str(csv), "--iterations", "20"]) == 2
    assert "--overwrite" in capsys.readouterr().err and mine.read_text() == "{}"


def test_replace_builtin_and_overwrite(home, monkeypatch, quick_quality):
    csv, _ = ring_csv(home)
    monkeypatch.setattr(toy2d, "builtin_quality", lambda model, dataset: {"swd_ratio": 1.2})  # a passing model
    monkeypatch.setitem(toy2d.DEFAULT_TRAIN, "n_data", 200)
    old = (files.ASSETS / "toy2d" / "ring.safetensors").read_bytes()
    assert main(["train", "toy2d", "--dataset", "ring", "--iterations", "2", "--replace-builtin"]) == 0
    assert (files.ASSETS / "toy2d" / "ring.safetensors").read_bytes() != old
    assert json.loads((files.ASSETS / "toy2d" / "ring.json").read_text())["gate_passed"] is True
    args = ["train", "toy2d", "--csv", str(csv), "--iterations", "20", "--allow-failed-gate"]
    assert main(args) == 0 and main(args) == 2 and main([*args, "--overwrite"]) == 0


def test_an_interrupted_write_leaves_no_half_written_file(tmp_path, monkeypatch):
    from explorer.models.weights import save_model_files

    tensors, record = {"w": torch.ones(3)}, {"name": "x"}
    save_model_files(tmp_path / "kept", tensors, record)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    for stem, overwrite in ((tmp_path / "new", False), (tmp_path / "kept", True)):
        with pytest.raises(KeyboardInterrupt):
            save_model_files(stem, {"w": torch.zeros(5)}, record, overwrite=overwrite)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, "old files intact, no temp files"


def test_iterations_must_be_positive(home, capsys, monkeypatch):
    csv, data = ring_csv(home)
    monkeypatch.setattr(toy2d, "train_ddpm", no_training)
    for value in ("0", "-5"):
        with pytest.raises(SystemExit) as exc:
            main(["train", "toy2d", "--csv", str(csv), f"--iterations={value}"])
        assert exc.value.code == 2 and "--iterations" in capsys.readouterr().err
    monkeypatch.undo()
    for value in (0, -5):
        with pytest.raises(UserError, match="iterations must be a positive integer"):
            toy2d.train_toy2d(data, iterations=value)


def test_identical_points_are_refused_before_training(home, capsys, monkeypatch):
    csv = home / "same.csv"
    csv.write_text("x,y\n" + "1.5,2.5\n" * 40)
    monkeypatch.setattr(toy2d, "train_ddpm", no_training)
    assert main(["train", "toy2d", "--csv", str(csv), "--iterations", "20"]) == 2
    assert "1 distinct point" in capsys.readouterr().err
    monkeypatch.undo()
    few = np.repeat(np.arange(9.0)[:, None] * [1.0, 0.5], 5, axis=0)  # nine distinct points, each five times
    with pytest.raises(UserError, match="9 distinct"):
        toy2d.train_toy2d(few, iterations=10)


def test_csv_first_row_of_nan_is_data_not_a_header(tmp_path):
    for first in ("nan,1", "inf,2", "1,-inf"):
        csv = tmp_path / "p.csv"
        csv.write_text(first + "\n" + "\n".join(f"{i},{i * 0.5}" for i in range(20)))
        with pytest.raises(ValueError, match="finite"):
            toy2d.read_points_csv(csv)
    csv.write_text("x,y\n" + "\n".join(f"{i},{i * 0.5}" for i in range(20)))
    assert toy2d.read_points_csv(csv).shape == (20, 2)


def test_digit_gates_follow_the_readme():
    from explorer.models.digits import gate

    assert gate("full", {"confident_fraction": 0.92, "memorized_fraction": 0.0})[0]
    assert not gate("full", {"confident_fraction": 0.7, "memorized_fraction": 0.0})[0]
    assert not gate("full", {"confident_fraction": 0.92, "memorized_fraction": 0.3})[0]
    assert gate("memorized", {"confident_fraction": 0.5, "memorized_fraction": 0.885})[0]
    passed, verdict = gate("memorized", {"confident_fraction": 0.9, "memorized_fraction": 0.5})
    assert not passed and verdict == "memorized_fraction 0.5 < 0.8"

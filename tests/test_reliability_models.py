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
    records = [json.loads(p.read_text()) for p in sorted(cache.ASSETS_CACHE.glob("*.json"))]
    assert records and all(r["weights_hash"] in hashes for r in records)
    for r in records:
        assert r["key"] == cache.cache_key(r["kind"], r["params"], r["weights_hash"], r["dtype"])

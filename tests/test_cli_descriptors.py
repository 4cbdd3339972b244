"""The descriptors CLI writes exactly the library's arrays, with every parameter in its JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.descriptors import descriptor_maps, latent_plane
from explorer.views.sizes import delta_radius


def test_cli_arrays_equal_the_library(tmp_path, ring, isolated_cache):
    out = tmp_path / "maps.npz"
    rc = main(["descriptors", "--model", "toy2d/ring", "--map", "from_t", "--t", "500", "--steps", "10",
               "--grid", "6", "--extent", "2", "--anchors", "1,2,3", "--out", str(out)])
    assert rc == 0
    saved = np.load(out)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["weights_hash"] == ring.weights_hash and record["map"] == "from_t" and record["t"] == 500
    assert record["steps"] == 10 and record["P"] == 2 and record["dtype"] == "float32"
    anchors = torch.stack([ring.latent_of_seed(s, torch.float64) for s in (1, 2, 3)])
    plane = latent_plane((2,), anchors=anchors, n=6, extent=2.0)
    lib = descriptor_maps(ring.generator("from_t", steps=10, t=500), plane, radius=delta_radius(ring))
    for key in ("psi", "nu", "nu_eff", "delta"):
        np.testing.assert_array_equal(saved[key], lib.maps[key])
    np.testing.assert_array_equal(saved["u"], plane.u)
    assert record["radius"] == delta_radius(ring) and "versions" in record and not record["cache_hit"]
    assert main(["descriptors", "--model", "toy2d/ring", "--map", "from_t", "--t", "500", "--steps", "10",
                 "--grid", "6", "--extent", "2", "--anchors", "1,2,3", "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["cache_hit"], "the CLI fills the app's disk cache"


def test_cli_help_and_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["descriptors", "--help"])
    assert exc.value.code == 0 and "--anchors" in capsys.readouterr().out
    assert main(["descriptors", "--model", "toy2d/nope", "--out", "x.npz"]) == 2
    assert "valid: toy2d/ring" in capsys.readouterr().err

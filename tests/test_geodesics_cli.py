"""The geodesics, cluster and convergence subcommands through ``explorer.cli.main``, on a fake model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import explorer.cli as cli
import explorer.models
from explorer.density import GaussianMixtureDensity
from explorer.geodesics.convergence import reference_distances, ring_density
from explorer.models import Capabilities, GenerativeModel, TrainingSet


class FakeModel(GenerativeModel):
    """Two blobs with labels; ``log_prob`` is an analytic mixture (stands in for the model likelihood)."""

    def __init__(self, with_log_prob: bool = True):
        rng = np.random.default_rng(0)
        X = np.r_[rng.normal(size=(150, 2)) * 0.2, rng.normal(size=(150, 2)) * 0.2 + [2.0, 0.0]]
        self._gmm = GaussianMixtureDensity([[0.0, 0.0], [2.0, 0.0]], 0.2)
        self.name, self.weights_hash = "fake/two-blobs", f"fake-two-blobs-{with_log_prob}"
        self.latent_shape = self.sample_shape = (2,)
        self.training_set = TrainingSet(X.astype(np.float32), np.r_[np.zeros(150, int), np.ones(150, int)])
        self.capabilities = Capabilities(likelihoods=("discrete",) if with_log_prob else (), training_set=True)
        self.calls = 0

    def generator(self, map="sampler", steps=None, t=None, **condition):
        return torch.nn.Identity()

    def log_prob(self, X, method="discrete", **kwargs):
        assert method == "discrete"
        self.calls += 1
        return self._gmm(X)


@pytest.fixture
def fake(monkeypatch, isolated_cache):
    model = FakeModel()
    monkeypatch.setattr(explorer.models, "load_model", lambda spec: model)
    mine = ("geodesics", "convergence", "cluster")
    monkeypatch.setattr(cli, "COMMANDS", {k: v for k, v in cli.COMMANDS.items() if k in mine})
    return model


def test_geodesics_command_writes_npz_and_json(fake, tmp_path):
    out = tmp_path / "geo.npz"
    rc = cli.main(["geodesics", "--model", "toy2d/ring", "--n", "200", "--lam", "0.05", "--source", "0",
                   "--target", "1", "--density", "kde", "--background", "60", "--k", "8", "--out", str(out)])
    assert rc == 0
    z = np.load(out)
    assert z["X"].shape == (260, 2) and z["is_background"].sum() == 60
    path = z["path"]
    assert path[0] == 0 and path[-1] == 1 and len(z["distances"]) == 260
    assert z["distances"][1] == pytest.approx(json.loads(out.with_suffix(".json").read_text())["summary"]["geodesic"])
    np.testing.assert_allclose(z["euclidean_distances"], np.linalg.norm(z["X"] - z["X"][0], axis=1))
    d = z["distances"]
    sigma = np.median(d[np.isfinite(d) & (d > 0)])
    np.testing.assert_allclose(z["affinity"], np.exp(-d ** 2 / (2 * sigma ** 2)))
    assert (z["graph_distances"] >= z["euclidean_distances"] - 1e-12).all()
    np.testing.assert_array_equal(z["path_points"], z["X"][path])
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["parameters"]["lam"] == 0.05 and rec["parameters"]["density"] == "kde"
    assert rec["density"]["log_p_ref_source"].startswith("median KDE")
    assert rec["summary"]["connected"] and rec["summary"]["connectivity"]["n_components"] == 1
    assert fake.calls == 0  # the KDE, not the model
    # both lengths: the graph's, and the refined one (on by default: the KDE has an exact gradient)
    summ = rec["summary"]
    assert summ["length_graph"] == summ["geodesic"] and summ["length"] == summ["length_refined"]
    ref = summ["refinement"]
    assert summ["length_refined"] <= min(ref["candidates_measured"].values()) and ref["start"] in ("graph", "straight")
    assert summ["n_quad"] == 5 and summ["k"] == 8  # λ = 0.05 (absolute, below p_ref here): more nodes per edge
    assert z["refined_path"].shape[1] == 2 and np.array_equal(z["refined_path"][[0, -1]], z["X"][[0, 1]])


def test_refined_length_matches_the_eikonal_distance_where_the_graph_length_does_not(fake, tmp_path):
    """Across the gap between the two blobs (λ = 0.05, absolute) the graph path zig-zags: its length is about 23 %
    above the continuum distance d_{Ψ,λ}, which the eikonal solution (fast marching on the same KDE, tested on
    closed forms in test_eikonal.py) gives independently; the reported, refined length is within 1 % of it."""
    from explorer.density import KernelDensity
    from explorer.geodesics.eikonal import eikonal_distance, grid_axes, grid_log_density

    out = tmp_path / "geo.npz"
    assert cli.main(["geodesics", "--n", "200", "--lam", "0.05", "--source", "0", "--target", "199", "--density",
                     "kde", "--background", "60", "--k", "8", "--out", str(out)]) == 0
    summ = json.loads(out.with_suffix(".json").read_text())["summary"]
    z = np.load(out)
    a, b = z["X"][0], z["X"][199]
    assert np.linalg.norm(b - a) > 1.5  # one point in each blob
    x, y = grid_axes((-1.2, 3.2, -1.6, 1.6), 121)
    kde = KernelDensity(fake.training_data().astype(np.float64))  # what --density kde fits (Scott's rule)
    d = eikonal_distance(a, b, 0.05, 1.0, 0.0, log_p=grid_log_density(kde, x, y), x=x, y=y)["distance"]
    assert summ["length"] == summ["length_refined"]
    assert summ["length_refined"] == pytest.approx(d, rel=0.01)
    assert summ["length_graph"] > 1.1 * d


def test_geodesics_command_default_sizes_and_no_refinement(fake, tmp_path):
    from explorer.geodesics.graph import default_k

    out = tmp_path / "geo.npz"
    rc = cli.main(["geodesics", "--n", "200", "--relative", "--lam", "5", "--density", "kde", "--background", "60",
                   "--refine", "0", "--out", str(out)])
    assert rc == 0
    summ = json.loads(out.with_suffix(".json").read_text())["summary"]
    assert summ["k"] == default_k(260) and summ["n_quad"] == 3
    assert summ["length_refined"] is None and summ["length"] == summ["length_graph"] and "refinement" not in summ
    assert np.load(out)["refined_path"].shape == (0, 2)


def test_geodesics_command_model_density_and_disconnection(fake, tmp_path, capsys):
    out = tmp_path / "geo2.npz"  # also checks that a suffix-less --out gets .npz
    rc = cli.main(["geodesics", "--n", "300", "--relative", "--density", "model", "--k", "5", "--background", "0",
                   "--out", str(tmp_path / "geo2"), "--source", "0", "--target", "299"])
    assert rc == 1  # the two blobs are disconnected without background points
    err = capsys.readouterr().err
    assert "not connected" in err and "k >= " in err and "log_p_ref" in err
    rec = json.loads(out.with_suffix(".json").read_text())
    assert not rec["summary"]["connected"] and rec["density"]["log_p_ref_source"].startswith("median model")
    assert rec["density"]["log_p_ref"] == pytest.approx(np.median(fake._gmm(fake.training_data())), abs=1e-6)
    assert np.isinf(np.load(out)["distances"][299]) and fake.calls > 0


def test_cluster_command_table(fake, tmp_path, capsys):
    out = tmp_path / "cl.csv"
    rc = cli.main(["cluster", "--n", "120", "--density", "kde", "--lam", "0.01", "--k", "8", "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["distance"] for r in rows] == ["geodesic", "graph", "euclidean"]
    assert float(rows[0]["ari"]) == pytest.approx(1.0)
    assert "ARI" in capsys.readouterr().out


def test_convergence_command_csv(fake, tmp_path):
    out = tmp_path / "conv.csv"
    rc = cli.main(["convergence", "--sizes", "60", "120", "--lams", "10", "0.01", "--ref-grid", "101",
                   "--repeats", "1", "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and {r["sampling"] for r in rows} == {"uniform", "density"}
    # the reference column is the eikonal distance on the --ref-grid grid, computed here on its own
    refs = reference_distances(ring_density(), (1.0, 0.0), (-1.0, 0.0), (10.0, 0.01), grid=101)
    for r in rows:
        lam, d, ref = float(r["lam"]), float(r["distance"]), float(r["reference"])
        assert ref == pytest.approx(refs[lam], rel=1e-9)
        if int(r["n_disconnected"]) == 0:  # one draw: the error is |d − d_ref| / d_ref of that draw
            assert float(r["rel_error"]) == pytest.approx(abs(d - ref) / ref, rel=1e-9)
            assert d > 0.995 * ref  # a graph path is a polyline: never shorter than the continuum distance
    # λ = 10 (absolute, p ≤ 0.5 here): 1 < c ≤ (p0 + λ)/λ = 1.1 everywhere, so ‖a − b‖ = 2 < d_ref ≤ 2.2
    assert 2.0 < refs[10.0] < 2.2 and refs[0.01] > 1.5 * refs[10.0]  # at small λ the way round the ring
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["parameters"]["ref_grid"] == 101 and rec["reference"].startswith("eikonal")


def test_bad_arguments_give_error_code(fake, tmp_path, capsys):
    rc = cli.main(["geodesics", "--n", "50", "--density", "kde", "--source", "999", "--out", str(tmp_path / "x")])
    assert rc == 2 and "--source" in capsys.readouterr().err

"""Built-in 2-D diffusion models: loading, the DDIM maps against diffusers, quality gates, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.models import ASSETS, TOY2D_MODELS, load_model
from explorer.models.datasets import RING_MODES, ring_mode_of, sample_toy2d
from explorer.models.ddim import make_scheduler, step_chain
from explorer.models.quality import sliced_wasserstein
from explorer.models.toy2d import builtin_quality, read_points_csv, train_toy2d


def test_unknown_spec_lists_valid_ones():
    with pytest.raises(ValueError, match="toy2d/ring.*toy2d/moons"):
        load_model("toy2d/nope")


def test_json_records_conventions_and_quality():
    for spec in TOY2D_MODELS:
        record = json.loads((ASSETS / f"{spec}.json").read_text())
        conv = record["scheduler_conventions"]
        assert conv["clip_sample"] is False and conv["timestep_spacing"] == "trailing"
        assert conv["set_alpha_to_one"] is True
        assert record["train"]["seed"] == 0 and record["quality"]["swd_ratio"] < 1.5


def test_interface(ring):
    assert ring.latent_shape == (2,)
    z = ring.latents(5, seed=3)
    assert torch.equal(z, ring.latents(5, seed=3)) and not torch.equal(z, ring.latents(5, seed=4))
    with torch.no_grad():
        x = ring.generator("sampler", 50)(z)
    np.testing.assert_allclose(ring.sample(5, seed=3), x.numpy(), rtol=1e-5, atol=1e-6)
    assert ring.training_data().shape == (8000, 2) and ring.training_labels().max() == RING_MODES - 1
    for mp, kw in [("sampler", {}), ("from_t", {"t": 500}), ("denoiser", {"t": 500})]:
        assert ring.generator(mp, steps=10, **kw)(z).shape == (5, 2)
    with pytest.raises(ValueError, match="valid: sampler, from_t, denoiser"):
        ring.generator("decoder")
    with pytest.raises(ValueError, match=r"\[0, 1000\)"):
        ring.generator("from_t", t=1000)


@pytest.mark.parametrize("steps", [50, 30])
def test_unrolled_sampler_equals_scheduler_step_loop(ring, steps):
    z = ring.latents(64, seed=1).double()
    r64 = ring.at("cpu", torch.float64)
    den = r64.eps_model()
    with torch.no_grad():
        ours = r64.generator("sampler", steps)(z)
        sch = make_scheduler(ring.schedule_config)  # a fresh diffusers scheduler, not the model's own
        sch.set_timesteps(steps)
        x = z.clone()
        for t in sch.timesteps:
            x = sch.step(den(x, int(t)), t, x, eta=0.0).prev_sample
    # diffusers keeps ᾱ in float32, so its step coefficients carry float32 rounding (~1e-7)
    torch.testing.assert_close(ours, x, rtol=1e-5, atol=1e-6)


def test_from_t_is_the_trailing_part_of_the_schedule(ring):
    chain = step_chain(ring.schedule.scheduler, 50)
    taus = [t for t, _ in chain]
    assert taus[0] == 999 and taus[-1] == 19 and chain[-1][1] == -1
    assert step_chain(ring.schedule.scheduler, 50, t=179) == chain[taus.index(179):]
    off = step_chain(ring.schedule.scheduler, 50, t=185)  # not on the schedule: one step down to 179 first
    assert off[0] == (185, 179) and off[1:] == chain[taus.index(179):]
    z = ring.latents(8, seed=2)
    with torch.no_grad():  # from_t at the first timestep is the whole sampler
        torch.testing.assert_close(ring.generator("from_t", 50, t=999)(z), ring.generator("sampler", 50)(z))


@pytest.mark.parametrize("spec", TOY2D_MODELS)
def test_quality_gate(spec):
    model = load_model(spec)
    dataset = spec.split("/")[1]
    q = builtin_quality(model, dataset, seed=777)  # other seeds than the training record's
    assert q["swd_ratio"] <= 1.5, q
    if dataset == "ring":
        samples = model.sample(2000, seed=777)
        share = np.bincount(ring_mode_of(samples), minlength=RING_MODES) / len(samples)
        assert share.min() >= 0.08 and share.max() <= 0.17, share


def test_swd_detects_a_bad_model():  # the gate can fail: a slightly shifted copy of the data is far off
    data, _ = sample_toy2d("moons", 2000, seed=1)
    data2, _ = sample_toy2d("moons", 8000, seed=2)
    assert sliced_wasserstein(data + 0.1, data2) > 1.5 * sliced_wasserstein(data, data2)


def test_swd_of_unequal_sizes_equals_equal_size_on_repeated_points():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 2)), rng.normal(size=(2000, 2)) + 0.3
    b4 = np.repeat(b[:500], 4, axis=0)  # the same measure as b[:500], four times the points
    assert abs(sliced_wasserstein(a, b4) - sliced_wasserstein(a, b[:500])) < 1e-12
    # a shift s moves every projection θ·x by θ·s, so SWD = mean over the directions of |θ·s|
    theta = np.random.default_rng(0).standard_normal((2, 256))  # the directions sliced_wasserstein draws (seed 0)
    theta /= np.linalg.norm(theta, axis=0)
    assert abs(sliced_wasserstein(a, a + [0.3, 0.0]) - 0.3 * np.abs(theta[0]).mean()) < 1e-9


def test_training_is_reproducible():
    data, _ = sample_toy2d("moons", 256, seed=0)
    a = train_toy2d(data, iterations=30, batch_size=64, seed=5, net={"hidden": 16})
    b = train_toy2d(data, iterations=30, batch_size=64, seed=5, net={"hidden": 16})
    c = train_toy2d(data, iterations=30, batch_size=64, seed=6, net={"hidden": 16})
    sa, sb, sc = (m.denoiser.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_csv_validation(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("x,y\n" + "\n".join(f"{i},{i * 0.5}" for i in range(20)))
    assert read_points_csv(good).shape == (20, 2)
    for text, msg in [("x,y\n1,a\n", "two numbers"), ("1,2,3\n" * 20, "2 columns"),
                      ("1,nan\n" * 20, "finite"), ("1,2\n" * 3, "between 10")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(ValueError, match=msg):
            read_points_csv(bad)


def test_train_on_csv_then_load_by_path(tmp_path):
    from explorer.cli import main

    data, _ = sample_toy2d("ring", 60, seed=3)
    csv = tmp_path / "mine.csv"
    csv.write_text("x,y\n" + "\n".join(f"{a},{b}" for a, b in data))
    assert main(["train", "toy2d", "--csv", str(csv), "--iterations", "20", "--out", str(tmp_path),
                 "--allow-failed-gate"]) == 0  # 20 iterations are far from the quality gate
    path = tmp_path / "toy2d" / "mine.safetensors"
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["dataset"] == "csv:mine.csv" and record["train"]["iterations"] == 20
    assert record["gate_passed"] is False and record["quality"]["swd_ratio"] > 1.5
    model = load_model(str(path), cache=False)
    np.testing.assert_array_equal(model.training_data(), data)
    assert model.sample(3).shape == (3, 2) and model.weights_hash == record["weights_hash"]

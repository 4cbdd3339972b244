"""The shipped diffusers UNet pipeline on digits: folder contract, write refusals, DDIM against diffusers' own step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMPipeline

from explorer.models import ASSETS
from explorer.models.ddim import DDIMChain, step_chain
from explorer.models.digits import digit_classifier
from explorer.models.unet_digits import (
    CHECK_SEED,
    DEFAULT_STEPS,
    N_CHECK,
    RECORD_FILE,
    ddim_sample,
    ddim_scheduler,
    gate,
    latents,
    pipeline_folder,
    train_digits_unet,
    train_unet,
)

SHIPPED = ASSETS / "pipelines" / "digits-unet"
TINY = {"block_out_channels": (8, 16), "norm_num_groups": 4}  # ~20k parameters: a few ms per iteration
TINY_RUN = {"iterations": 3, "batch_size": 8, "n_check": 32, "num_threads": 1, "unet_config": TINY}
FILES = ("model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
         "scheduler/scheduler_config.json", RECORD_FILE)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Torch and BLAS on one thread for this module: its problems are small, and on a shared 2-core machine
    two threads spend more on hand-offs than they gain (measured: 19 s for the module against 49 s)."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def classifier():
    return digit_classifier()


@pytest.fixture(scope="module")
def shipped():
    return DDPMPipeline.from_pretrained(SHIPPED, use_safetensors=True)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_an_untrained_unet_is_refused_then_written_with_the_flag(tmp_path, classifier):
    folder = pipeline_folder(tmp_path)
    with pytest.raises(RuntimeError, match="failed the quality gate"):
        train_digits_unet(tmp_path, classifier=classifier, **TINY_RUN)
    assert list(tmp_path.rglob("*")) == []  # nothing written, not even a temporary folder

    record = train_digits_unet(tmp_path, classifier=classifier, allow_failed_gate=True, **TINY_RUN)
    assert set(FILES) <= set(_files(folder)) and not list(folder.rglob("*.bin"))
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    on_disk = json.loads((folder / RECORD_FILE).read_text())
    assert on_disk == json.loads(json.dumps(record))
    assert record["gate_passed"] is False and record["quality"]["gate_passed"] is False
    for key in ("train", "train_seconds", "versions", "default_steps", "unet", "activation", "schedule", "sampler"):
        assert key in record, key
    assert record["train"]["seed"] == 0 and record["train"]["iterations"] == 3 and record["default_steps"] == 20
    assert record["quality"]["n"] == 32 and record["quality"]["samples_seed"] == CHECK_SEED
    assert set(record["versions"]) == {"torch", "diffusers"} and record["activation"] == "silu"
    pipe = DDPMPipeline.from_pretrained(folder, use_safetensors=True)
    assert tuple(pipe.unet.config.block_out_channels) == (8, 16)
    assert pipe.scheduler.config.num_train_timesteps == 1000 and pipe.scheduler.config.beta_end == 0.02

    with pytest.raises(FileExistsError, match="overwrite=True"):  # refused before any training
        train_digits_unet(tmp_path, classifier=classifier, allow_failed_gate=True, **TINY_RUN)
    before = (folder / "unet/diffusion_pytorch_model.safetensors").read_bytes()
    train_digits_unet(tmp_path, seed=1, classifier=classifier, allow_failed_gate=True, overwrite=True, **TINY_RUN)
    assert (folder / "unet/diffusion_pytorch_model.safetensors").read_bytes() != before
    assert json.loads((folder / RECORD_FILE).read_text())["train"]["seed"] == 1
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_training_is_reproducible():
    with torch.random.fork_rng(devices=[]):
        a, _ = train_unet(seed=3, iterations=2, batch_size=4, unet_config=TINY)
        b, _ = train_unet(seed=3, iterations=2, batch_size=4, unet_config=TINY)
        c, _ = train_unet(seed=4, iterations=2, batch_size=4, unet_config=TINY)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_latents_follow_the_diffusion_model_convention():
    z = latents(3, seed=7)
    gen = torch.Generator().manual_seed(7)
    torch.testing.assert_close(z, torch.randn((3, 1, 8, 8), generator=gen, dtype=torch.float64).float(),
                               rtol=0, atol=0)
    with pytest.raises(ValueError, match="non-negative"):
        latents(-1, seed=0)


def test_shipped_folder_contract():
    assert set(FILES) <= set(_files(SHIPPED)) and not list(SHIPPED.rglob("*.bin"))
    assert sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file()) < 5 * 2 ** 20
    record = json.loads((SHIPPED / RECORD_FILE).read_text())
    assert record["gate_passed"] is True and record["default_steps"] == DEFAULT_STEPS
    q = record["quality"]
    assert q["n"] == N_CHECK and q["samples_seed"] == CHECK_SEED and q["confident_fraction"] >= 0.8
    assert min(q["class_counts"]) >= 0.02 * sum(q["class_counts"])
    assert record["train_seconds"] < 30 * 60 and record["attention"] is False


def test_ddim_sampler_equals_diffusers_step_and_ddim_chain(shipped):
    """Our loop against an independent one from ``DDIMScheduler.step`` (eta = 0, the pinned conventions,
    float32 arithmetic), and against the project's ``DDIMChain`` that the other models' maps use."""
    ours = ddim_sample(shipped.unet, shipped.scheduler, n=6, seed=5)
    ddim = DDIMScheduler.from_config(shipped.scheduler.config, clip_sample=False, timestep_spacing="trailing",
                                     set_alpha_to_one=True)
    ddim.set_timesteps(DEFAULT_STEPS)
    assert [int(t) for t in ddim.timesteps] == list(range(999, 0, -50))
    gen = torch.Generator().manual_seed(5)
    x = torch.randn((6, 1, 8, 8), generator=gen, dtype=torch.float64).float()
    with torch.no_grad():
        for t in ddim.timesteps:
            x = ddim.step(shipped.unet(x, t).sample, t, x, eta=0.0).prev_sample
    np.testing.assert_allclose(ours, x.numpy(), rtol=0, atol=1e-5)

    class Eps(torch.nn.Module):
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, x, t):
            return self.unet(x, t).sample

    chain = DDIMChain(Eps(shipped.unet), ddim.alphas_cumprod, step_chain(ddim_scheduler(shipped.scheduler), 20))
    with torch.no_grad():
        np.testing.assert_allclose(ours, chain(latents(6, seed=5)).numpy(), rtol=0, atol=1e-6)


def test_shipped_unet_makes_recognisable_digits(shipped, classifier):
    q = gate(ddim_sample(shipped.unet, shipped.scheduler, n=128, seed=2024), classifier)
    assert q["confident_fraction"] >= 0.75, q
    assert min(q["class_counts"]) >= 1, q  # no digit missing

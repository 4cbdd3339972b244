"""``descriptors --model FOLDER --map decoder --n-directions P`` on each tiny pipeline, with conditioning flags: the
arrays equal the library's (through the same job the app runs), the record holds the conditioning."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.descriptors import descriptor_maps, latent_plane
from explorer.models import load_model
from explorer.views.sizes import delta_radius
from tests.tiny_pipelines import tiny_folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(tmp_path, kind, *args, folder=None):
    out = tmp_path / f"{kind}.npz"
    rc = main(["descriptors", "--model", str(folder or tiny_folder(kind)), "--grid", "2", "--anchors", "0,1,2",
               "--out", str(out), *args])
    return rc, out


def _labelled_dit(tmp_path):
    """A copy of the tiny DiT folder with a ``labels.json`` beside it (``save_pretrained`` keeps no ``id2label``)."""
    folder = tmp_path / "dit-labelled"
    shutil.copytree(tiny_folder("dit"), folder)
    (folder / "labels.json").write_text(json.dumps({"0": "tench, Tinca tinca", "1": "goldfish, Carassius auratus"}))
    return folder


def _x0_anchors(m, seeds, steps, condition):
    """The oracle's decoder anchors: x_0 of each seed's sample by the sampler's own DDIM loop up to x_0, checked
    through the decoder: decoder(x_0) must equal the sampler's image of the seed."""
    z = torch.stack([m.latent_of_seed(s, torch.float64) for s in seeds]).float()
    with torch.no_grad():
        x0 = m.x0_generator(steps, **condition)(z)
        np.testing.assert_allclose(m.generator("decoder")(x0).numpy(),
                                   m.generator("sampler", steps=steps, **condition)(z).numpy(), atol=1e-4)
    return x0.double()


@pytest.mark.parametrize("kind, args, condition", [
    ("dit", ["--map", "decoder", "--n-directions", "3"], {}),
    ("sd", ["--map", "decoder", "--n-directions", "3"], {}),
    ("dit", ["--map", "sampler", "--steps", "2", "--n-directions", "2", "--class-label", "4",
             "--guidance-scale", "2"], {"class_label": "4", "guidance_scale": 2.0}),
    ("sd", ["--map", "denoiser", "--t", "500", "--n-directions", "2", "--prompt", "a photo of cat",
            "--negative-prompt", "dog", "--guidance-scale", "3"],
     {"prompt": "a photo of cat", "negative_prompt": "dog", "guidance_scale": 3.0}),
    ("ddpm", ["--map", "sampler", "--steps", "2", "--n-directions", "3"], {}),
])
def test_cli_on_each_tiny_pipeline(tmp_path, isolated_cache, kind, args, condition):
    rc, out = _run(tmp_path, kind, *args)
    assert rc == 0
    saved, record = np.load(out), json.loads(out.with_suffix(".json").read_text())
    m = load_model(str(tiny_folder(kind)))
    assert record["weights_hash"] == m.weights_hash and record["condition"] == condition
    P = int(args[args.index("--n-directions") + 1])
    assert record["P"] == P
    map_name = args[args.index("--map") + 1]
    steps = int(args[args.index("--steps") + 1]) if "--steps" in args else 50
    if map_name == "decoder":  # the decoder's plane passes through the x_0 latents of the seeds' samples
        assert record["anchor_inputs"] == "x0"
        anchors = _x0_anchors(m, (0, 1, 2), steps, condition)
    else:
        assert record["anchor_inputs"] == "z"
        anchors = torch.stack([m.latent_of_seed(s, torch.float64) for s in (0, 1, 2)])
    plane = latent_plane(m.latent_shape, anchors=anchors, n=2, extent=3.0)
    t = int(args[args.index("--t") + 1]) if "--t" in args else None
    G = m.generator(map_name, steps=steps, t=t, **condition)
    lib = descriptor_maps(G, plane, n_directions=P, radius=delta_radius(m))
    for key in ("psi", "nu", "nu_eff", "delta"):
        np.testing.assert_allclose(saved[key], lib.maps[key], rtol=1e-6, err_msg=key)
    assert np.isfinite(saved["psi"]).all() and saved["delta"].shape == (2, 2)


def test_cli_refuses_the_decoder_of_a_pixel_model_and_foreign_conditioning(tmp_path, isolated_cache, capsys):
    rc, _ = _run(tmp_path, "ddpm", "--map", "decoder", "--n-directions", "2")
    assert rc == 2 and "map 'decoder' is the VAE decoder of a latent diffusion model" in capsys.readouterr().err
    rc, _ = _run(tmp_path, "ddpm", "--map", "sampler", "--steps", "2", "--prompt", "a cat")
    assert rc == 2 and "takes no conditioning prompt" in capsys.readouterr().err
    labelled = _labelled_dit(tmp_path)
    rc, _ = _run(tmp_path, "dit", "--map", "decoder", "--steps", "2", "--class-label", "goldfish", folder=labelled)
    assert rc == 0  # the decoder's anchors are the x_0 of class-conditional samples: a label name is accepted
    rc, _ = _run(tmp_path, "dit", "--map", "sampler", "--steps", "2", "--class-label", "axolotl", folder=labelled)
    err = capsys.readouterr().err
    assert rc == 2 and "'axolotl' is not a label of" in err and "goldfish" in err
    rc, _ = _run(tmp_path, "dit", "--map", "sampler", "--steps", "2", "--class-label", "goldfish")
    assert rc == 2 and "this folder has no labels" in capsys.readouterr().err

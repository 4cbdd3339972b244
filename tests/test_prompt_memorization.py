"""Memorization from a prompt list on the tiny Stable Diffusion: reading prompt lists and reference images, Wen et
al.'s ‖ε(x_t, c) − ε(x_t, ∅)‖ against the pipeline's own UNet and DDIMScheduler.step, the per-prompt report with and
without reference images, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.errors import UserError
from explorer.models import load_model
from explorer.prompt_memorization import prompt_report, read_prompts, read_reference_images, wen_scores
from tests.tiny_pipelines import tiny_folder

PROMPTS = ["a photo of cat", "a red dog", "blue painting of tree", "a dog"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _jsonl(path, labels=(True, False, True, False)):
    path.write_text("\n".join(json.dumps({"caption": c, "memorized": m, "url": "x"})
                              for c, m in zip(PROMPTS, labels, strict=True)) + "\n")
    return path


def test_read_prompts_csv_and_jsonl(tmp_path):
    got = read_prompts(_jsonl(tmp_path / "p.jsonl"))
    assert list(got["caption"]) == PROMPTS and got["memorized"].dtype == bool
    assert list(got["memorized"]) == [True, False, True, False]
    (tmp_path / "p.csv").write_text('caption,memorized\n"a photo, of cat",yes\na dog,0\n')
    got = read_prompts(tmp_path / "p.csv")
    assert list(got["caption"]) == ["a photo, of cat", "a dog"] and list(got["memorized"]) == [True, False]
    (tmp_path / "plain.csv").write_text("caption\na cat\n")
    assert list(read_prompts(tmp_path / "plain.csv").columns) == ["caption"]  # no labels: no AUROC later
    for name, text, match in [("no.csv", "prompt\na\n", "no 'caption' field"),
                              ("bad.csv", "caption,memorized\na,maybe\n", "true/false"),
                              ("half.csv", "caption,memorized\na,1\nb,\n", "label all or none"),
                              ("empty.csv", "caption\n", "lists no prompts"),
                              ("bad.jsonl", "{not json\n", "not JSON")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(UserError, match=match):
            read_prompts(tmp_path / name)
    with pytest.raises(UserError, match="no prompt list"):
        read_prompts(tmp_path / "missing.csv")


def test_read_reference_images(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "b.png")
    Image.fromarray(np.full((16, 16, 3), 0, np.uint8)).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    images, names = read_reference_images(tmp_path, (3, 8, 8))
    assert names == ["a.jpg", "b.png"] and images.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(images[1, 0], 1.0) and np.testing.assert_allclose(images[1, 1:], -1.0)
    np.testing.assert_allclose(images[0], -1.0, atol=0.02)  # JPEG of black
    (tmp_path / "c.png").write_text("not a png")
    with pytest.raises(UserError, match="cannot read reference image"):
        read_reference_images(tmp_path, (3, 8, 8))
    with pytest.raises(UserError, match="no PNG or JPEG"):
        read_reference_images(_empty(tmp_path), (3, 8, 8))
    with pytest.raises(UserError, match="no reference image folder"):
        read_reference_images(tmp_path / "nowhere", (3, 8, 8))


def _empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def _unet_eps(m, prompt):
    """ε straight from the pipeline's UNet, the prompt embedded as StableDiffusionPipeline does."""
    tok = m.tokenizer([prompt], padding="max_length", max_length=m.tokenizer.model_max_length, truncation=True,
                      return_tensors="pt")
    with torch.no_grad():
        emb = m.text_encoder(tok.input_ids)[0]
    return lambda x, t: m.unet(x, t, encoder_hidden_states=emb.expand(len(x), -1, -1)).sample


@pytest.mark.parametrize("n_first, scale", [(1, 1.0), (2, 3.0)])
def test_wen_scores_equal_the_norm_computed_from_the_unet(n_first, scale):
    from diffusers import DDIMScheduler

    m = load_model(str(tiny_folder("sd")))
    z = torch.stack([m.latent_of_seed(s) for s in range(3)])
    got = wen_scores(m, "a photo of cat", z, steps=3, n_first=n_first, guidance_scale=scale)
    sched = DDIMScheduler.from_pretrained(str(tiny_folder("sd")), subfolder="scheduler", clip_sample=False,
                                          timestep_spacing="trailing", set_alpha_to_one=True)
    sched.set_timesteps(3)
    ec_fn, eu_fn = _unet_eps(m, "a photo of cat"), _unet_eps(m, "")
    x, norms = z.clone(), []
    with torch.no_grad():
        for t in sched.timesteps[:n_first]:
            ec, eu = ec_fn(x, t), eu_fn(x, t)
            norms.append(torch.sqrt(((ec - eu) ** 2).sum(dim=(1, 2, 3))).numpy())
            x = sched.step(eu + scale * (ec - eu), t, x, eta=0.0).prev_sample
    want = np.mean(norms, axis=0)
    assert want.min() > 0
    np.testing.assert_allclose(got, want, rtol=1e-4)
    # the empty prompt against itself has no text signal
    np.testing.assert_allclose(wen_scores(m, "", z, steps=3, n_first=n_first), 0.0, atol=1e-6)


def test_prompt_report_per_prompt_with_labels_and_reference_images(tmp_path):
    m = load_model(str(tiny_folder("sd")))
    prompts = read_prompts(_jsonl(tmp_path / "p.jsonl"))
    # reference images: the first prompt's own sample (a copy) and an unrelated image, as PNG files
    z = m.latent_of_seed(0)[None]
    with torch.no_grad():
        copy = m.generator("sampler", steps=2, prompt=PROMPTS[0])(z)[0].numpy()
    ref = tmp_path / "ref"
    ref.mkdir()
    Image.fromarray(np.round((copy.transpose(1, 2, 0).clip(-1, 1) + 1) * 127.5).astype(np.uint8)).save(ref / "a.png")
    Image.fromarray(np.full((8, 8, 3), 30, np.uint8)).save(ref / "b.png")
    images, _ = read_reference_images(ref, m.sample_shape)
    rep = prompt_report(m, prompts, per_prompt=2, steps=2, wen_steps=1, reference=images, n_directions=2,
                        n_boot=20, min_count=1)
    t = rep.prompts
    assert list(t["caption"]) == PROMPTS and list(t["memorized"]) == [True, False, True, False]
    assert rep.images.shape == (8, 192) and len(rep.samples) == 8
    # per prompt: the mean over its samples of each descriptor and of Wen's score (checked above), min of ratio
    for k, caption in enumerate(PROMPTS):
        rows = rep.samples[rep.samples["prompt"] == k]
        zz = torch.stack([m.latent_of_seed(s) for s in (0, 1)])
        np.testing.assert_allclose(rows["wen"], wen_scores(m, caption, zz, 2, 1), rtol=1e-5)
        assert t["psi"][k] == pytest.approx(rows["psi"].mean()) and t["ratio"][k] == pytest.approx(rows["ratio"].min())
    from explorer.descriptors import local_descriptors

    G = m.generator("sampler", steps=2, prompt=PROMPTS[1])
    zz = torch.stack([m.latent_of_seed(s) for s in (0, 1)])
    np.testing.assert_allclose(rep.samples["psi"][2:4], local_descriptors(G, zz, n_directions=2).psi, rtol=1e-4)
    # the copied sample is found (8-bit rounding of the PNG only)
    assert t["ratio"][0] < 0.05 and bool(t["copied"][0])
    assert set(rep.auroc["feature"]) >= {"psi", "wen", "ratio"} and rep.auroc["auroc"].notna().all()
    assert rep.params["nearest"] == "against 2 reference images"
    # without references: the nearest-neighbour columns are off and say so
    bare = prompt_report(m, prompts.drop(columns="memorized"), per_prompt=1, steps=2, n_directions=2)
    assert bare.auroc is None and bare.prompts["ratio"].isna().all() and bare.params["nearest"].startswith("off")
    with pytest.raises(UserError, match="takes no prompts"):
        prompt_report(load_model(str(tiny_folder("dit"))), prompts)


def test_cli_memorization_with_a_prompt_list(tmp_path, capsys):
    from explorer.cli import main

    prompts = _jsonl(tmp_path / "p.jsonl")
    out = tmp_path / "out" / "mem"
    rc = main(["memorization", "--model", str(tiny_folder("sd")), "--prompts", str(prompts), "--per-prompt", "1",
               "--steps", "2", "--n-directions", "2", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr()
    assert "nearest-neighbour score off" in text.out and "wen" in text.out
    table = __import__("pandas").read_csv(tmp_path / "out" / "mem.prompts.csv")
    assert list(table["caption"]) == PROMPTS and "wen" in table.columns
    record = json.loads((tmp_path / "out" / "mem.json").read_text())
    assert record["n_prompts"] == 4 and record["nearest"].startswith("off")


def test_the_cached_report_is_the_report(tmp_path, isolated_cache):
    """The page's entry point stores what prompt_report computes and reads it back (a second call hits the disk)."""
    from explorer.views.memorization import prompt_report_cached, prompt_report_is_cached

    m = load_model(str(tiny_folder("sd")))
    ref = tmp_path / "ref"
    ref.mkdir()
    for k, level in enumerate((20, 200)):
        Image.fromarray(np.full((8, 8, 3), level, np.uint8)).save(ref / f"{k}.png")
    args = (m, PROMPTS[:2], [True, False], 1, 0, 2, 1, 1.0, str(ref), None, 2)
    assert not prompt_report_is_cached(*args)
    rep, rec = prompt_report_cached(*args, min_count=1)
    assert not rec["hit"] and prompt_report_is_cached(*args)
    again, rec2 = prompt_report_cached(*args, min_count=1)
    assert rec2["hit"]
    direct = prompt_report(m, read_prompts(_jsonl(tmp_path / "p.jsonl")).iloc[:2], per_prompt=1, steps=2,
                           reference=read_reference_images(ref, m.sample_shape)[0], n_directions=2, min_count=1,
                           n_boot=200)
    for col in ("psi", "nu_eff", "delta", "wen", "ratio", "d_nearest"):
        np.testing.assert_allclose(again.prompts[col].to_numpy(float), direct.prompts[col].to_numpy(float),
                                   rtol=1e-5)
    np.testing.assert_allclose(again.auroc["auroc"].to_numpy(float), direct.auroc["auroc"].to_numpy(float))
    # another reference folder is another entry
    (ref / "2.png").write_bytes((ref / "0.png").read_bytes())
    assert not prompt_report_is_cached(*args)

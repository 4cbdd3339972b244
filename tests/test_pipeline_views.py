"""The views on pipelines: sizes per kind and device, the default conditioning, conditioning as part of every cache
key, the decoder's planes and sample descriptors at x_0 latents, and geodesic graphs / embeddings over the latents
of samples or of given images (tiny DiT and SD, the test preset)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.models import load_model
from explorer.views import sizes
from tests.tiny_pipelines import tiny_folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny(kind, ref_points=4):
    """A private copy of a tiny pipeline (not the shared one) with p_ref over a few samples."""
    m = load_model(str(tiny_folder(kind)), cache=False)
    m.ref_points = ref_points
    return m


def test_pipelines_have_their_own_sizes_per_device_and_stay_image_models(ring):
    digits_unet = load_model("assets/pipelines/digits-unet")
    for m in (digits_unet, load_model(str(tiny_folder("sd"))), load_model(str(tiny_folder("dit")))):
        assert sizes.size_kind(m) == "pipeline" and sizes.model_kind(m) == "image"
    assert sizes.size_kind(load_model("digits/full")) == "image" and sizes.size_kind(ring) == "points"
    cpu, cuda = sizes.sizes("default", "pipeline", "cpu"), sizes.sizes("default", "pipeline", "cuda")
    assert (cpu["plane_n"], cpu["n_directions"], cpu["n_samples"], cpu["igraph_n"]) == (8, 8, 16, 60)
    assert cuda["plane_n"] == 16 and cuda["n_directions"] is None and cuda["igraph_n"] == 200
    assert sizes.sizes("default", "image", "cpu") == sizes.sizes("default", "image", "cuda")  # others: one size
    # sizes_for fills the pipeline's extent (1.5·sqrt(d)) and caps the steps by the model's
    s = sizes.sizes_for(digits_unet, "default", "cpu")
    assert s["extent"] == 12.0 and s["steps"] == 20 and sizes.directions_for(digits_unet, s) == 8
    assert sizes.directions_for(digits_unet, sizes.sizes_for(digits_unet, "default", "cuda")) == 64
    # δ's radius is one rule per model, on every device (and what the digit models' rule gives at d = 64)
    assert sizes.delta_radius(digits_unet) == pytest.approx(0.4) == sizes.delta_radius(load_model("digits/full"))


def test_default_condition(tmp_path):
    import json
    import shutil

    assert sizes.default_condition(load_model(str(tiny_folder("dit")))) == {"class_label": 0}
    assert sizes.default_condition(load_model(str(tiny_folder("sd")))) == {"prompt": sizes.DEFAULT_PROMPT}
    assert sizes.default_condition(load_model(str(tiny_folder("ddpm")))) == {}
    folder = tmp_path / "sd"
    shutil.copytree(tiny_folder("sd"), folder)
    (folder / "explorer_record.json").write_text(json.dumps({"default_condition": {"prompt": "a red tree"}}))
    assert sizes.default_condition(load_model(str(folder), cache=False)) == {"prompt": "a red tree"}
    from explorer.views.local_geometry import local_geometry_defaults

    d = local_geometry_defaults(load_model(str(tiny_folder("dit"))), "test")
    assert d["condition"] == {"class_label": 0} and d["n"] == 3 and d["n_directions"] == 2 and d["extent"] == 12.0


def test_the_built_in_models_keep_their_cache_keys(ring):
    """Conditioning and anchors enter a key only when set: unconditional models' shipped entries stay valid."""
    from explorer.views import local_geometry as lg

    assert lg.pool_params(ring, 5, 10) == {"n": 5, "steps": 10, "model": "toy2d/ring"}
    plane = lg._plane_params(ring, "sampler", 10, None, [], 4, 3.0)
    assert "condition" not in plane and "anchors" not in plane
    assert "condition" not in lg._sample_params(ring, "sampler", 10, None, 4, 0.1) == lg._sample_params(
        ring, "sampler", 10, None, 4, 0.1, condition={})


def test_conditioning_is_part_of_the_pool_and_sample_keys(isolated_cache):
    from explorer.views.local_geometry import pool, sample_descriptors

    m = load_model(str(tiny_folder("dit")))
    a, rec_a = pool(m, 2, 2, {"class_label": 1})
    b, _ = pool(m, 2, 2, {"class_label": 2})
    again, rec_again = pool(m, 2, 2, {"class_label": "1", "guidance_scale": 1})  # the same condition, spelled out
    assert not rec_a["hit"] and rec_again["hit"] and rec_a["key"] == rec_again["key"]
    assert not np.allclose(a["samples"], b["samples"])
    z = torch.stack([m.latent_of_seed(s) for s in range(2)])
    with torch.no_grad():
        want = m.generator("sampler", 2, class_label=1)(z).numpy()
    np.testing.assert_allclose(a["samples"], want, rtol=1e-5, atol=1e-6)
    s1, _ = sample_descriptors(m, "sampler", 2, None, 2, 0.4, n_directions=2, condition={"class_label": 1})
    s2, _ = sample_descriptors(m, "sampler", 2, None, 2, 0.4, n_directions=2, condition={"class_label": 2})
    assert not np.allclose(s1["psi"], s2["psi"])


def test_the_decoder_plane_and_samples_sit_at_x0_latents(isolated_cache):
    from explorer.descriptors import descriptor_maps, latent_plane, local_descriptors
    from explorer.views.local_geometry import descriptor_plane, sample_descriptors

    m = load_model(str(tiny_folder("sd")))
    cond = {"prompt": "a photo of cat"}
    arrays, record = descriptor_plane(m, "decoder", 2, None, [0, 1, 2], 3, 12.0, n_directions=2, condition=cond)
    assert record["params"]["anchors"] == "x0" and record["params"]["condition"] == cond
    z = torch.stack([m.latent_of_seed(s) for s in (0, 1, 2)])
    with torch.no_grad():
        x0 = m.x0_generator(2, **cond)(z).double()
    np.testing.assert_allclose(arrays["origin"], x0[0].reshape(-1).numpy(), rtol=1e-5, atol=1e-6)
    plane = latent_plane(m.latent_shape, anchors=x0, n=3, extent=12.0)
    want = descriptor_maps(m.generator("decoder"), plane, n_directions=2, radius=0.4)
    np.testing.assert_allclose(arrays["psi"], want.maps["psi"], rtol=1e-4, atol=1e-4)
    # the noise-latent plane is another entry
    noise, rec = descriptor_plane(m, "decoder", 2, None, [0, 1, 2], 3, 12.0, n_directions=2, condition=cond,
                                  anchors="z")
    assert "anchors" not in rec["params"] and not np.allclose(noise["origin"], arrays["origin"])
    s, rec = sample_descriptors(m, "decoder", 2, None, 2, 0.4, n_directions=2, condition=cond)
    assert rec["params"]["inputs"] == "x0"
    np.testing.assert_allclose(s["latents"], x0[:2].float().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s["psi"], local_descriptors(m.generator("decoder"), x0[:2].float(),
                                                           n_directions=2).psi, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s["samples"], m.decode(x0[:2].float()), rtol=1e-4, atol=1e-5)


def test_graph_points_are_latents_of_samples_or_of_given_images():
    from explorer.views.geodesics import geodesic_points, space_points

    m = load_model(str(tiny_folder("sd")))
    X, is_bg, labels = geodesic_points(m, "samples", 3, 0, seed=0, steps=2, condition={"prompt": "dog"})
    assert X.shape == (3, 64) and not is_bg.any() and labels is None
    np.testing.assert_allclose(X, m.sample_x0(3, seed=1, steps=2, prompt="dog").reshape(3, -1), rtol=1e-6)
    images = m.sample(4, seed=2, steps=2)
    X, _, _ = geodesic_points(m, "data", 4, 0, data=images)
    np.testing.assert_allclose(X, m.encode(images).reshape(4, -1), rtol=1e-6)
    np.testing.assert_array_equal(space_points(m, X), X)  # latents are taken as they are
    with pytest.raises(ValueError, match="no training set"):
        geodesic_points(m, "data", 4, 0)
    with pytest.raises(ValueError, match="images of 192 values or latents of 64"):
        space_points(m, np.zeros((2, 10)))


def test_image_graph_and_three_paths_over_samples_of_a_prompt(isolated_cache):
    from explorer.density.cached import make_density
    from explorer.views import image_geodesics as ig
    from explorer.views.geodesics import geodesic_view

    m = _tiny("sd")
    S = ig.image_graph_defaults(m, "test")
    assert S["points"] == "samples" and S["condition"] == {"prompt": sizes.DEFAULT_PROMPT} and S["steps"] == 2
    density = make_density(m, "model", condition=S["condition"])
    state = ig.fit_image_graph(m, density, 8, 3, 1, S["points"], S["condition"], S["steps"])
    assert state.X.shape == (8, 64) and state.params["condition"] == S["condition"]
    assert ig.graph_is_cached(m, density, 8, 3, 1, S["points"], S["condition"], S["steps"])
    assert not ig.graph_is_cached(m, density, 8, 3, 1, "samples", {"prompt": "cat"}, 2)
    view = geodesic_view(state, 1.0, 1.0, 0, 1)
    assert view["ok"], view.get("message")
    out = ig.compare(m, density, state, 0, 1, 1.0, 1.0, 3, 1)
    for name in ("geodesic", "straight", "slerp"):
        pts = out[name]["points"]
        assert pts.shape == (3, 64) and np.isfinite(out[name]["log_p"]).all()
        assert m.to_display(pts).shape == (3, 8, 8, 3)  # latents are shown as decoded images
    # the slerp path starts where the graph path does (its endpoint inverted exactly and regenerated)
    np.testing.assert_allclose(out["slerp"]["points"][0], state.X[0], atol=1e-4)


def test_embedding_over_samples_of_a_class(isolated_cache):
    from explorer.density.cached import make_density
    from explorer.views.embedding import embedding_defaults, embedding_grid

    m = _tiny("dit")
    e = embedding_defaults(m, "test")
    assert (e["source"], e["points"], e["condition"], e["n_quad"]) == ("model", "samples", {"class_label": 0}, 1)
    density = make_density(m, e["source"], condition=e["condition"])
    arrays, record = embedding_grid(m, density, 10, [1.0], k=3, n_quad=1, n_neighbors=4, points="samples",
                                    condition=e["condition"], steps=2)
    assert arrays["X"].shape == (10, 64) and arrays["Y_geodesic"].shape == (1, 10, 2)
    assert record["params"]["points"] == "samples" and record["params"]["condition"] == {"class_label": 0}

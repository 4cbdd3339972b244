"""Local geometry on diffusers pipelines: δ against a brute-force count of every nonlinearity's input, vertex by
vertex; the randomized SVD against the autograd Jacobian's singular values; sketched ψ of guided generators against
autograd (the unguided maps are in the contract suite)."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explorer.descriptors import local_complexity, local_descriptors, random_directions
from explorer.descriptors.complexity import activation_modules, cross_polytope, preactivation_points
from explorer.descriptors.randomized import randomized_singular_values
from explorer.models import load_model
from tests.tiny_pipelines import tiny_folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model64(kind):
    return load_model(str(tiny_folder(kind))).at("cpu", torch.float64)


@contextmanager
def recorded_nonlinearities():
    """Every input of F.silu / F.gelu / F.relu / F.mish while the block runs (torch's activation modules and
    diffusers' GELU units all end in these), in call order: an oracle that does not know which modules δ hooks."""
    calls: list[torch.Tensor] = []
    names = ("silu", "gelu", "relu", "mish")
    originals = {n: getattr(F, n) for n in names}

    def recording(fn):
        def wrapped(x, *args, **kwargs):
            calls.append(x.detach().clone())
            return fn(x, *args, **kwargs)
        return wrapped

    for n in names:
        setattr(F, n, recording(originals[n]))
    try:
        yield calls
    finally:
        for n in names:
            setattr(F, n, originals[n])


def brute_force_delta(G, z: torch.Tensor, radius: float, P: int, seed: int = 0) -> np.ndarray:
    """δ by running each vertex of the cross-polytope alone and comparing the signs of every recorded input."""
    d = int(np.prod(z.shape[1:]))
    B = random_directions(d, P, seed)
    out = []
    for zi in z:
        verts = cross_polytope(zi[None], B, radius)[0]
        per_vertex = []
        for v in verts:
            with recorded_nonlinearities() as calls, torch.no_grad():
                G(v[None])
            per_vertex.append(calls)
        count = 0
        for k in range(len(per_vertex[0])):
            pos = torch.stack([calls[k] > 0 for calls in per_vertex])  # (2P+1, *shape)
            count += int((pos.any(0) & ~pos.all(0)).sum())
        out.append(count)
    return np.array(out)


@pytest.mark.parametrize("kind, map_name, condition", [
    ("ddpm", "sampler", {}),
    ("dit", "sampler", {"class_label": 3, "guidance_scale": 2.5}),
    ("dit", "denoiser", {"class_label": 7}),
    ("sd", "sampler", {"prompt": "a photo of cat", "guidance_scale": 3.0}),
    ("sd", "decoder", {}),
])
def test_delta_equals_a_brute_force_count(kind, map_name, condition):
    m = _model64(kind)
    G = m.generator(map_name, steps=2, t=600, **condition)
    z = m.latents(2, seed=5).double()
    radius, P = 0.05, 3
    lc = local_complexity(G, z, radius, n_directions=P, seed=1)
    ref = brute_force_delta(G, z, radius, P, seed=1)
    np.testing.assert_array_equal(lc.delta, ref)
    assert (lc.delta > 0).all() and lc.n_layer_calls > 0


def test_sd_unet_gelu_units_are_hooked_at_their_gate():
    """The SD UNet's transformer blocks use GEGLU, DiT's use diffusers' GELU: both are counted, at .proj."""
    from diffusers.models.activations import GEGLU, GELU

    for kind, cls in (("sd", GEGLU), ("dit", GELU)):
        G = _model64(kind).generator("sampler", steps=1)
        units = [m for m in activation_modules(G) if isinstance(m, cls)]
        assert units, kind
        proj_points = [(mod, where) for mod, where, _ in preactivation_points(G) if where == "output"]
        assert {id(u.proj) for u in units} <= {id(mod) for mod, _ in proj_points}


def test_a_batch_that_is_not_whole_copies_is_refused():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.SiLU()

        def forward(self, x):  # drops a row before its activation
            return self.act(x[:-1])

    with pytest.raises(ValueError, match="whole copies of the batch"):
        local_complexity(Odd(), torch.randn(2, 3), 0.1, n_directions=2, chunk_size=2)


# ---------------------------------------------------------------------------- randomized SVD
def _jacobian_svdvals(G, z, shape) -> np.ndarray:
    out = []
    for zi in z:
        J = torch.autograd.functional.jacobian(lambda v: G(v.reshape(1, *shape)).reshape(-1), zi, vectorize=True)
        out.append(torch.linalg.svdvals(J.reshape(-1, zi.numel())).numpy())
    return np.stack(out)


def test_randomized_svd_is_exact_when_its_range_covers_the_jacobian():
    m = _model64("sd")
    G = m.generator("decoder")
    z = m.latents(2, seed=2).double()
    exact = _jacobian_svdvals(G, z, m.latent_shape)
    d = z[0].numel()
    est = randomized_singular_values(G, z, rank=10, oversample=d - 10, n_iter=0)
    np.testing.assert_allclose(est, exact[:, :10], rtol=1e-9)


def test_randomized_svd_estimates_the_top_singular_values():
    m = _model64("dit")
    G = m.generator("sampler", steps=2, class_label=1)
    z = m.latents(2, seed=3).double()
    exact = _jacobian_svdvals(G, z, m.latent_shape)[:, :6]
    for n_iter in (0, 2):
        est = randomized_singular_values(G, z, rank=6, oversample=10, n_iter=n_iter, seed=4)
        assert (est <= exact * (1 + 1e-9)).all(), "a projection never exceeds J's singular values"
        if n_iter:
            np.testing.assert_allclose(est[:, :3], exact[:, :3], rtol=1e-3)  # measured: 4e-5
    desc = local_descriptors(G, z, n_directions=6, seed=4, svd="randomized", n_iter=2, oversample=10)
    np.testing.assert_allclose(desc.singular_values, est)
    np.testing.assert_allclose(desc.psi, np.log(est).sum(1))
    assert desc.svd == "randomized" and "randomized SVD" in desc.label and desc.n_directions == 6
    sketch = local_descriptors(G, z, n_directions=6, seed=4)
    assert sketch.svd == "sketch" and "sketch" in sketch.label


def test_randomized_svd_refuses_bad_settings():
    G = _model64("sd").generator("decoder")
    z = torch.zeros(1, 4, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"rank must be in \[1, 64\]"):
        randomized_singular_values(G, z, rank=65)
    with pytest.raises(ValueError, match="unknown svd 'full'"):
        local_descriptors(G, z, n_directions=2, svd="full")
    with pytest.raises(ValueError, match="give n_directions only"):
        local_descriptors(G, z, directions=random_directions(64, 2), svd="randomized")


# ---------------------------------------------------------------------------- guided generators
@pytest.mark.parametrize("kind, condition", [
    ("dit", {"class_label": 5, "guidance_scale": 4.0}),
    ("sd", {"prompt": "a red dog", "negative_prompt": "blue", "guidance_scale": 7.5}),
])
def test_sketched_psi_of_guided_generators_matches_autograd(kind, condition):
    m = _model64(kind)
    G = m.generator("sampler", steps=2, **condition)
    z = m.latents(2, seed=8).double()
    P = 5
    desc = local_descriptors(G, z, n_directions=P, seed=2)
    B = random_directions(z[0].numel(), P, 2)
    for i, zi in enumerate(z):
        J = torch.autograd.functional.jacobian(lambda v: G(v.reshape(1, *m.latent_shape)).reshape(-1), zi,
                                               vectorize=True)
        ref = torch.linalg.svdvals(J.reshape(-1, zi.numel()) @ B.T).numpy()
        np.testing.assert_allclose(desc.singular_values[i], ref, rtol=1e-8)
        np.testing.assert_allclose(desc.psi[i], np.log(ref).sum(), rtol=1e-10)


def test_the_default_sketch_size_follows_the_device():
    from explorer.device import default_sketch_size
    from explorer.views.sizes import default_directions

    assert default_sketch_size("cuda") == 16 and default_sketch_size("cpu") == 8
    assert default_directions(64) == 64 and default_directions(4 * 64 * 64) == default_sketch_size()

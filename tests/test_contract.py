"""One contract suite for every model kind (diffusers' ``PipelineTesterMixin`` habit): every protocol member, every
map's Jacobian against ``torch.autograd.functional.jacobian``, ``at()`` dtype and non-mutation, ``to_display``.

A new model kind joins by adding a factory to ``KINDS`` (tests/model_kinds.py).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from explorer.descriptors import local_descriptors
from explorer.models import Capabilities, GenerativeModel, TrainingSet
from tests.model_kinds import KINDS, kind_steps

pytestmark = pytest.mark.parametrize("kind", list(KINDS), indirect=True)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Torch and BLAS on one thread: these models are small, and on a shared 2-core machine two threads spend more
    on hand-offs than they gain (the diffusers kinds' Jacobians: 21 s on one thread, about 4 minutes on two)."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture
def kind(request):
    return request.param, KINDS[request.param]()


def _map_kwargs(model, map_name: str) -> dict:
    kw = {"steps": kind_steps(model)}
    if map_name in ("from_t", "denoiser"):
        kw["t"] = model.num_train_timesteps // 2
    return kw


def test_members(kind):
    _, m = kind
    assert isinstance(m, GenerativeModel)
    assert isinstance(m.name, str) and m.name and isinstance(m.weights_hash, str) and m.weights_hash
    assert all(isinstance(s, int) for s in (*m.latent_shape, *m.sample_shape)) and m.latent_shape and m.sample_shape
    assert isinstance(m.capabilities, Capabilities) and "sampler" in m.capabilities.maps
    assert (m.training_set is not None) == m.capabilities.training_set
    if m.capabilities.diffusion:
        assert m.schedule is not None and m.num_train_timesteps > 0 and m.diffusion_shape
    with pytest.raises(ValueError, match="unknown map"):
        m.generator("no-such-map")
    with pytest.raises(ValueError, match="takes no conditioning"):
        m.generator("sampler", not_a_condition=1)


def test_latents_and_samples(kind):
    _, m = kind
    z = m.latents(3, seed=7)
    assert z.device.type == "cpu" and z.dtype == torch.float32 and tuple(z.shape) == (3, *m.latent_shape)
    assert torch.equal(z, m.latents(3, seed=7)) and not torch.equal(z, m.latents(3, seed=8))
    assert torch.equal(m.latent_of_seed(7), z[0])
    x = m.sample(3, seed=7, steps=kind_steps(m))
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.shape == (3, *m.sample_shape)
    with torch.no_grad():
        ref = m.generator("sampler", steps=kind_steps(m))(z).numpy()
    np.testing.assert_allclose(x, ref, rtol=1e-5, atol=1e-5)


def test_every_map_and_its_jacobian(kind):
    _, m = kind
    m64 = m.at("cpu", torch.float64)
    z = m.latents(2, seed=3).double()
    d = int(np.prod(m.latent_shape))
    P = min(d, 6)
    for map_name in m.capabilities.maps:
        G = m64.generator(map_name, **_map_kwargs(m, map_name))
        assert isinstance(G, nn.Module)
        params = list(G.parameters())
        assert params and all(p.dtype == torch.float64 for p in params), "G owns its networks, in the view's dtype"
        with torch.no_grad():
            out = G(z)
        assert tuple(out.shape) == (2, *m.sample_shape), map_name
        desc = local_descriptors(G, z, n_directions=P, seed=0)
        from explorer.descriptors import random_directions

        B = random_directions(d, P, 0)
        for i in range(len(z)):
            J = torch.autograd.functional.jacobian(lambda v, G=G: G(v.reshape(1, *m.latent_shape)).reshape(-1), z[i],
                                                   vectorize=True)  # reverse mode, all rows in one batched pass
            ref = torch.linalg.svdvals(J.reshape(-1, d) @ B.T)
            np.testing.assert_allclose(desc.singular_values[i], ref.numpy(), rtol=1e-7, atol=1e-10,
                                       err_msg=map_name)


def test_views_convert_and_never_mutate(kind):
    _, m = kind
    before = [p.clone() for p in m.generator("sampler", steps=kind_steps(m)).parameters()]
    v = m.at("cpu", torch.float64)
    assert v is m.at("cpu", torch.float64), "one view per (device, dtype)"
    assert v.at("cpu", torch.float32) is m and m.at() is m
    assert v.dtype == torch.float64 and v.weights_hash == m.weights_hash and v.name == m.name
    after = list(m.generator("sampler", steps=kind_steps(m)).parameters())
    assert all(a.dtype == torch.float32 for a in after)
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True)), "the shared model is unchanged"
    # views made concurrently from several threads are one object
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(m.at("cpu", torch.float16))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in seen}) == 1


def test_likelihoods(kind):
    _, m = kind
    x = m.encode(m.sample(4, seed=1, steps=kind_steps(m)))  # the density's space: latent models' VAE latents
    for method in m.capabilities.likelihoods:
        kw, pts = {}, x
        if method == "discrete":  # the exact inversion of the default sampler, of its own float64 samples
            with torch.no_grad():
                pts = m.at("cpu", torch.float64).generator("sampler")(m.latents(4, seed=1).double()).numpy()
            kw = {"dtype": torch.float64}
        elif method == "ode":
            kw = {"n_steps": 4}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an inversion that does not converge warns
            lp = m.log_prob(pts, method=method, **kw)
        assert lp.shape == (4,) and lp.dtype == np.float64, method
        if method == m.default_likelihood["method"]:  # the one the pages use is defined everywhere
            assert np.isfinite(lp).all(), method
        else:  # another may be undefined (NaN) where it does not apply, never ±inf garbage
            assert not np.isinf(lp).any() and np.isfinite(lp).any(), method
    if m.capabilities.likelihoods:
        assert callable(m.log_density()) and m.default_likelihood.get("method") in m.capabilities.likelihoods
    else:
        with pytest.raises(ValueError, match="no likelihood"):
            m.log_prob(x)


def test_the_diffusion_space(kind):
    """``encode`` / ``decode`` / ``sample_x0`` move between samples and the space densities and graphs work in."""
    _, m = kind
    steps = kind_steps(m)
    x = m.sample(2, seed=4, steps=steps)
    space = m.diffusion_shape or m.sample_shape
    e = m.encode(x)
    assert e.shape == (2, *space) and e.dtype == np.float32
    x0 = m.sample_x0(2, seed=4, steps=steps)
    assert x0.shape == (2, *space) and x0.dtype == np.float32
    np.testing.assert_allclose(m.decode(x0), x, rtol=1e-4, atol=1e-5)
    if m.decode_module() is None:  # sample space: both are the identity
        np.testing.assert_array_equal(e, x.reshape(e.shape))
        np.testing.assert_array_equal(m.decode(x), x.reshape(2, *space))
    if m.image_shape is not None:
        np.testing.assert_array_equal(m.to_display(x0), m.to_display(x))


def test_training_set_and_display(kind):
    _, m = kind
    if m.training_set is not None:
        ts = m.training_set
        assert isinstance(ts, TrainingSet) and len(ts) > 0
        part = ts.data([0, 1])
        assert part.shape == (2, *m.sample_shape) and part.dtype == np.float32
        assert len(m.training_data()) == len(ts)
        labels = ts.labels()
        assert labels is None or len(labels) == len(ts)
    shown = m.to_display(m.sample(2, seed=0, steps=kind_steps(m)))
    if m.image_shape is None:
        assert shown is None
    else:
        h, w = m.image_shape
        assert shown.dtype == np.uint8 and shown.shape == (2, h, w, m.channels)

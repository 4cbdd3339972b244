"""ψ, ν, ν_eff and δ against independent oracles: linear maps, autograd Jacobians, analytic counts,
dense sampling, and the change-of-variables area of certified linear squares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explorer.descriptors import (
    descriptor_maps,
    latent_plane,
    local_complexity,
    local_descriptors,
    random_directions,
)
from tests.conftest import tiny_relu_net


class Linear(nn.Module):
    def __init__(self, A):
        super().__init__()
        self.A = A

    def forward(self, z):
        return z @ self.A.T


def test_linear_generator_has_known_psi_and_rank():
    torch.manual_seed(0)
    d, D = 6, 9
    A = torch.randn(D, 4, dtype=torch.float64) @ torch.randn(4, d, dtype=torch.float64)  # rank 4
    s = torch.linalg.svdvals(A)
    z = torch.randn(5, d, dtype=torch.float64)
    out = local_descriptors(Linear(A), z)
    assert (out.nu == 4).all() and (out.n_psi == 4).all()
    np.testing.assert_allclose(out.psi, np.log(s[:4].numpy()).sum(), rtol=1e-12)
    p = s[:4] / s[:4].sum()
    np.testing.assert_allclose(out.nu_eff, torch.exp(-(p * p.log()).sum()).item(), rtol=1e-6)
    full_rank = local_descriptors(Linear(torch.randn(D, d, dtype=torch.float64)), z)
    assert (full_rank.nu == d).all()
    # a sketch with P = d orthonormal directions has the same singular values as J
    sketch = local_descriptors(Linear(A), z, n_directions=d, seed=3)
    np.testing.assert_allclose(sketch.singular_values, out.singular_values, atol=1e-12)
    np.testing.assert_allclose(sketch.psi, out.psi, rtol=1e-12)
    # a smaller sketch sees less: its singular values are those of A·Bᵀ
    B = random_directions(d, 3, seed=1)
    small = local_descriptors(Linear(A), z[:1], directions=B)
    np.testing.assert_allclose(small.singular_values[0], torch.linalg.svdvals(A @ B.T).numpy(), rtol=1e-10)


@pytest.mark.parametrize("map_kw", [("sampler", {}), ("from_t", {"t": 340}), ("denoiser", {"t": 340})])
def test_jacobian_of_every_map_equals_autograd(ring, map_kw):
    mp, kw = map_kw
    ring64 = ring.at("cpu", torch.float64)
    G = ring64.generator(mp, steps=20, **kw)
    z = ring.latents(4, seed=9).double()
    ours = local_descriptors(G, z).singular_values
    for i in range(4):
        J = torch.autograd.functional.jacobian(lambda x: G(x[None])[0], z[i], vectorize=False)
        np.testing.assert_allclose(ours[i], torch.linalg.svdvals(J).numpy(), rtol=1e-9)


def test_delta_one_hidden_layer_equals_analytic_count():
    torch.manual_seed(1)
    d, H, r = 5, 200, 0.3
    net = nn.Sequential(nn.Linear(d, H), nn.ReLU(), nn.Linear(H, 2)).double()
    W, b = net[0].weight, net[0].bias
    z = torch.randn(40, d, dtype=torch.float64)
    B = random_directions(d, 4, seed=2)
    lc = local_complexity(net, z, r, directions=B)
    pre = z @ W.T + b  # (N, H)
    reach = r * (W @ B.T).abs().max(1).values  # max_p |w_k · v_p|
    expected = (pre.abs() <= reach).sum(1).numpy()
    np.testing.assert_array_equal(lc.delta, expected)
    assert lc.n_layer_calls == 1 and expected.min() < expected.max()


def _dense_boundary_count(net, z, B, r, n_samples=4000, seed=0):
    """Neurons whose sign varies over many random points of the cross-polytope (vertices included)."""
    gen = torch.Generator().manual_seed(seed)
    P = B.shape[0]
    verts = torch.cat([B, -B]) * r  # (2P, d)
    w = torch.distributions.Dirichlet(torch.ones(2 * P, dtype=torch.float64)).sample((n_samples,))
    w = w * torch.rand(n_samples, 1, generator=gen, dtype=torch.float64)  # interior points too
    pts = torch.cat([torch.zeros(1, z.shape[0]), verts, w @ verts]) + z
    count, h = 0, pts
    for layer in net:
        if isinstance(layer, nn.ReLU):
            pos = h > 0
            count += (pos.any(0) & ~pos.all(0)).sum().item()
        h = layer(h)
    return count


def test_delta_never_exceeds_dense_sampling_on_a_deep_net():
    net = tiny_relu_net(d=4, hidden=32, depth=3, seed=3)
    B = random_directions(4, 4, seed=5)
    z = torch.randn(12, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lc = local_complexity(net, z, 0.4, directions=B)
    dense = np.array([_dense_boundary_count(net, z[i], B, 0.4) for i in range(len(z))])
    assert (lc.delta <= dense).all() and lc.delta.sum() > 0 and lc.n_layer_calls == 3


def test_delta_on_shipped_sampler_counts_every_step(ring):
    G = ring.generator("sampler", 50)
    lc = local_complexity(G, ring.latents(16, seed=0), radius=0.05)
    layers = sum(isinstance(m, nn.ReLU) for m in ring.denoiser.modules())
    assert lc.n_layer_calls == 50 * layers == 150
    assert (lc.delta > 0).all()


def test_change_of_variables_on_certified_linear_squares(ring):
    """On a square whose corners and centre share one activation pattern, G is affine, so the area of
    its image (shoelace) is |det J|·h² = exp(ψ)·h²."""
    h = 1e-5
    ring64 = ring.at("cpu", torch.float64)
    G = ring64.generator("sampler", 50)
    z = ring.latents(200, seed=11).double()
    diag = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64) / np.sqrt(2)
    lc = local_complexity(G, z, radius=h / np.sqrt(2), directions=diag)  # vertices = the 4 corners
    certified = lc.delta == 0
    psi = local_descriptors(G, z).psi
    offsets = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=torch.float64) * h / 2
    with torch.no_grad():
        img = G((z[:, None] + offsets[None]).reshape(-1, 2)).reshape(-1, 4, 2).numpy()
    img = img - img[:, :1]  # shoelace on coordinates relative to one corner: no cancellation
    x, y = img[..., 0], img[..., 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y).sum(1))
    rel = np.abs(area / (np.exp(psi) * h * h) - 1)
    frac = certified.mean()
    print(f"certified {certified.sum()}/{len(z)} squares ({frac:.0%}); max rel. error {rel[certified].max():.1e}")
    assert frac >= 0.5
    assert rel[certified].max() <= 1e-6


def test_latent_plane_in_eight_dimensions():
    gen = torch.Generator().manual_seed(0)
    anchors = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    plane = latent_plane((8,), anchors=anchors, n=9, extent=2.0, dtype=torch.float64)
    E = plane.basis
    torch.testing.assert_close(E @ E.T, torch.eye(2, dtype=torch.float64))
    # every grid latent lies in the plane through the anchors, at its stated coordinates
    Z = plane.latents - plane.origin
    torch.testing.assert_close(Z, (Z @ E.T) @ E)
    np.testing.assert_allclose(plane.coords_of(plane.latents).reshape(9, 9, 2)[..., 0][0], plane.u, atol=1e-12)
    rebuilt = plane.origin + torch.from_numpy(plane.anchor_coords) @ E
    torch.testing.assert_close(rebuilt, anchors)
    net = tiny_relu_net(d=8, hidden=16, depth=2, out=5)
    maps = descriptor_maps(net, plane, radius=0.1)
    assert set(maps.maps) >= {"psi", "nu", "nu_eff", "delta"} and maps.maps["psi"].shape == (9, 9)
    direct = local_descriptors(net, plane.latents)
    np.testing.assert_allclose(maps.maps["psi"].ravel(), direct.psi)
    # row i of a map is v[i], column j is u[j]
    i, j = 2, 7
    expect = plane.origin + plane.u[j] * E[0] + plane.v[i] * E[1]
    torch.testing.assert_close(plane.latents[i * 9 + j], expect)


def test_bad_input_gets_clear_errors():
    net = tiny_relu_net(d=3)
    with pytest.raises(ValueError, match="batch"):
        local_descriptors(net, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-finite"):
        local_descriptors(net, torch.tensor([[0.0, float("nan"), 1.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="orthonormal"):
        local_descriptors(net, torch.zeros(1, 3, dtype=torch.float64), directions=torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\(P, 3\)"):
        local_descriptors(net, torch.zeros(1, 3, dtype=torch.float64), directions=torch.eye(2))

    class NotDifferentiable(nn.Module):
        def forward(self, z):
            return torch.from_numpy(z.numpy() ** 2)

    with pytest.raises(ValueError, match="differentiated"):
        local_descriptors(NotDifferentiable(), torch.zeros(2, 3, dtype=torch.float64))

    class FunctionalRelu(nn.Module):
        def forward(self, z):
            return torch.nn.functional.relu(z)

    with pytest.raises(ValueError, match="no activation module"):
        local_complexity(FunctionalRelu(), torch.zeros(2, 3), radius=0.1)
    with pytest.raises(ValueError, match="three anchors"):
        latent_plane((8,))

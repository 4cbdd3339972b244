"""What the Paper figures page says about its figures holds on the data it shows (toy2d/ring's default plane, read
from the shipped cache): ψ is lowest inside each mode's basin and higher on the boundaries between basins, and δ
lights up on the same boundaries."""

import numpy as np
import torch

from explorer.models import load_model
from explorer.views.local_geometry import descriptor_plane, local_geometry_defaults, plane_for


def test_l1_psi_low_in_basins_high_on_boundaries_and_delta_on_boundaries():
    m = load_model("toy2d/ring")
    d = local_geometry_defaults(m, "default")
    arrays, _ = descriptor_plane(m, "sampler", d["steps"], None, [], d["n"], d["extent"], d["n_directions"],
                                 radius=d["radius"])
    n = d["n"]
    z = plane_for(m, [], n, d["extent"]).latents
    with torch.no_grad():
        x = m.generator("sampler", steps=d["steps"])(z).numpy()
    # the basin of a latent: which of the ring's 8 modes its sample lands on
    basin = (np.round(np.arctan2(x[:, 1], x[:, 0]) / (2 * np.pi / 8)).astype(int) % 8).reshape(n, n)
    assert len(np.unique(basin)) == 8
    edge = np.zeros((n, n), bool)
    rows, cols = basin[:-1] != basin[1:], basin[:, :-1] != basin[:, 1:]
    edge[:-1] |= rows
    edge[1:] |= rows
    edge[:, :-1] |= cols
    edge[:, 1:] |= cols
    assert 0.01 < edge.mean() < 0.3
    psi, delta = arrays["psi"], arrays["delta"]
    assert np.median(psi[edge]) > np.median(psi[~edge]) + 1.0, "ψ is higher on the basins' boundaries"
    assert np.median(delta[edge]) > 1.5 * np.median(delta[~edge]), "δ lights up on the boundaries"

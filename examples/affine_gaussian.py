"""A user's own generator as a model of the explorer: G(z) = A z + b, whose density is N(b, A Aᵀ), so
log p(x) = log N(A⁻¹(x − b); 0, I) − log|det A|. Open it with ``--model examples.affine_gaussian:make_model``."""

import numpy as np
import torch
from torch import nn

from explorer.models import Capabilities, GenerativeModel


class AffineGaussian(GenerativeModel):
    def __init__(self, d: int = 2, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.net = nn.Linear(d, d).requires_grad_(False)
        self.net.weight.copy_(torch.randn(d, d, generator=g) + 2 * torch.eye(d))
        self.net.bias.copy_(torch.randn(d, generator=g))
        self.name, self.weights_hash = f"affine-gaussian-{d}", f"affine-{d}-{seed}"
        self.latent_shape = self.sample_shape = (d,)
        self.capabilities = Capabilities(maps=("sampler",), likelihoods=("exact",), piecewise_linear=True)

    def generator(self, map="sampler", steps=None, t=None, **condition):
        self.check_map(map), self.check_condition(condition)
        return self.net

    def log_prob(self, x, method="exact", **kwargs):
        A, b = self.net.weight.double().cpu(), self.net.bias.double().cpu()
        z = torch.linalg.solve(A, (torch.as_tensor(np.asarray(x)).double().reshape(len(x), -1) - b).T).T
        return (-0.5 * (z ** 2).sum(1) - 0.5 * len(b) * np.log(2 * np.pi) - torch.linalg.slogdet(A)[1]).numpy()

    def _convert_networks(self, device, dtype):
        self.net = self.converted(self.net, device, dtype)


def make_model() -> AffineGaussian:
    return AffineGaussian()

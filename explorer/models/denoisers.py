"""ε_θ networks. ReLU activations are ``nn.ReLU`` modules so that hooks see every pre-activation."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer-style embedding of timesteps t (B,) → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    args = t.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class MLPDenoiser(nn.Module):
    """ε_θ(x_t, t) for flat data: [x W_x + (emb(t) W_t + b)] → (ReLU → Linear) × depth → D.

    The time path has no activation, so the map x_t ↦ ε_θ(x_t, t) is CPWL for each t.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, time_dim: int = 32):
        super().__init__()
        self.dim, self.hidden, self.depth, self.time_dim = dim, hidden, depth, time_dim
        self.x_proj = nn.Linear(dim, hidden)
        self.t_proj = nn.Linear(time_dim, hidden, bias=False)
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.ReLU(), nn.Linear(hidden, hidden)]
        layers += [nn.ReLU(), nn.Linear(hidden, dim)]
        self.body = nn.Sequential(*layers)

    def config(self) -> dict:
        return {"dim": self.dim, "hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim}

    def time_features(self, t, batch: int, like: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(t) or t.ndim == 0:
            t = torch.tensor([float(t)], dtype=torch.float64)
        emb = sinusoidal_embedding(t.reshape(-1), self.time_dim).to(like.dtype)
        return self.t_proj(emb.to(like.device))  # (1 or B, hidden)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(shape[0], -1)
        h = self.x_proj(flat) + self.time_features(t, shape[0], flat)
        return self.body(h).reshape(shape)

    def eps_and_jacobian(self, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε_θ(x, t), ∂ε_θ/∂x) for a flat batch x (B, D): J = W_out·M_L·W_L ⋯ M_1·W_x, with M_l the
        ReLU masks of x's own linear region. The D tangents ride along as a (B, D, hidden) tensor, so
        this costs about (1 + D) forward passes and none of forward-mode AD's per-op overhead."""
        h = self.x_proj(x) + self.time_features(t, x.shape[0], x)
        tan = self.x_proj.weight.T.unsqueeze(0)  # (1, D, hidden): row p = ∂h/∂x_p
        for module in self.body:
            if isinstance(module, nn.ReLU):
                mask = h > 0
                tan = tan * mask.unsqueeze(1).to(h.dtype)
                h = torch.relu(h)
            else:  # one (B·D, hidden) GEMM, not B small batched products
                tan = (tan.expand(h.shape[0], -1, -1).reshape(-1, tan.shape[-1]) @ module.weight.T).reshape(
                    h.shape[0], -1, module.weight.shape[0])
                h = module(h)
        return h, tan.transpose(1, 2)

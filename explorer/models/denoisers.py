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

    With ``time_every_layer`` each hidden Linear also gets its own time bias emb(t) W_t^(l). With
    ``skip_timesteps`` = T the output gains a linear skip c(t)·x_t, c(t) = sqrt(1−ᾱ_t)/(ᾱ_t σ_d² + 1 − ᾱ_t)
    (the best linear predictor of ε for data of variance σ_d², set by ``set_skip``): the slope ∂ε/∂x must
    change with t (≈ 1 at t = T, where ε ≈ x_T; far from it near t = 0), and without the skip it can
    change only through the ReLU masks. The time path has no activation, so x_t ↦ ε_θ(x_t, t) is CPWL for each t.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, time_dim: int = 32,
                 time_every_layer: bool = False, skip_timesteps: int = 0):
        super().__init__()
        self.dim, self.hidden, self.depth, self.time_dim = dim, hidden, depth, time_dim
        self.time_every_layer = bool(time_every_layer)
        self.skip_timesteps = int(skip_timesteps)
        if self.skip_timesteps:
            self.register_buffer("skip_coef", torch.zeros(self.skip_timesteps, dtype=torch.float64))
        self.x_proj = nn.Linear(dim, hidden)
        self.t_proj = nn.Linear(time_dim, hidden, bias=False)
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.ReLU(), nn.Linear(hidden, hidden)]
        layers += [nn.ReLU(), nn.Linear(hidden, dim)]
        self.body = nn.Sequential(*layers)
        n_time = depth - 1 if self.time_every_layer else 0
        self.t_hidden = nn.ModuleList(nn.Linear(time_dim, hidden, bias=False) for _ in range(n_time))

    def config(self) -> dict:
        cfg = {"dim": self.dim, "hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim}
        if self.time_every_layer:
            cfg["time_every_layer"] = True
        if self.skip_timesteps:
            cfg["skip_timesteps"] = self.skip_timesteps
        return cfg

    def set_skip(self, alphas_cumprod: torch.Tensor, sigma_data: float) -> None:
        """c(t) = sqrt(1−ᾱ_t)/(ᾱ_t σ_d² + 1 − ᾱ_t) for t = 0 … T−1 (needs ``skip_timesteps`` = T)."""
        a = alphas_cumprod.double()
        if not self.skip_timesteps or len(a) != self.skip_timesteps:
            raise ValueError(f"set_skip needs skip_timesteps = {len(a)}, got {self.skip_timesteps}")
        self.skip_coef.copy_((1 - a).sqrt() / (a * sigma_data ** 2 + 1 - a))

    def skip(self, t, like: torch.Tensor) -> torch.Tensor | None:
        """c(t) as (1 or B, 1), linearly interpolated at fractional t (the ODE's t(σ)); None without a skip."""
        if not self.skip_timesteps:
            return None
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).clamp(0, self.skip_timesteps - 1)
        lo = t.floor().long()
        hi = (lo + 1).clamp(max=self.skip_timesteps - 1)
        c = self.skip_coef[lo] + (t - lo) * (self.skip_coef[hi] - self.skip_coef[lo])
        return c.to(like.dtype).to(like.device)[:, None]

    def time_features(self, t, batch: int, like: torch.Tensor) -> list[torch.Tensor]:
        """The time biases [emb(t) W_t, emb(t) W_t^(1), …], each (1 or B, hidden)."""
        if not torch.is_tensor(t) or t.ndim == 0:
            t = torch.tensor([float(t)], dtype=torch.float64)
        emb = sinusoidal_embedding(t.reshape(-1), self.time_dim).to(like.dtype).to(like.device)
        return [self.t_proj(emb)] + [layer(emb) for layer in self.t_hidden]

    def _run_body(self, h: torch.Tensor, biases: list[torch.Tensor], tan: torch.Tensor | None = None):
        """The ReLU/Linear stack from the first pre-activation h, adding the hidden time biases after
        each hidden Linear; ``tan`` (B or 1, D, hidden), when given, is carried through the same masks."""
        linear = 0
        for module in self.body:
            if isinstance(module, nn.ReLU):
                if tan is not None:
                    tan = tan * (h > 0).unsqueeze(1).to(h.dtype)
                h = module(h)
                continue
            if tan is not None:  # one (B·D, hidden) GEMM, not B small batched products
                tan = (tan.expand(h.shape[0], -1, -1).reshape(-1, tan.shape[-1]) @ module.weight.T).reshape(
                    h.shape[0], -1, module.weight.shape[0])
            h = module(h)
            linear += 1
            if linear < len(biases):
                h = h + biases[linear]
        return h, tan

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(shape[0], -1)
        biases = self.time_features(t, shape[0], flat)
        out = self._run_body(self.x_proj(flat) + biases[0], biases)[0]
        c = self.skip(t, flat)
        return (out if c is None else out + c * flat).reshape(shape)

    def eps_and_jacobian(self, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε_θ(x, t), ∂ε_θ/∂x) for a flat batch x (B, D): J = W_out·M_L·W_L ⋯ M_1·W_x, with M_l the
        ReLU masks of x's own linear region. The D tangents ride along as a (B, D, hidden) tensor, so
        this costs about (1 + D) forward passes and none of forward-mode AD's per-op overhead."""
        biases = self.time_features(t, x.shape[0], x)
        tan = self.x_proj.weight.T.unsqueeze(0)  # (1, D, hidden): row p = ∂h/∂x_p
        h, tan = self._run_body(self.x_proj(x) + biases[0], biases, tan)
        J = tan.transpose(1, 2)
        c = self.skip(t, x)
        if c is not None:
            h = h + c * x
            J = J + c[:, :, None] * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        return h, J

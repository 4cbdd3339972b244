"""The reward network r_φ(x_t, t) ≈ ψ(z) and its files (safetensors weights beside a JSON record, never pickles).

Two bodies, both with a sinusoidal time embedding added as a bias to every hidden layer and smooth (SiLU)
activations, so that ∇_x r_φ is continuous (a ReLU reward's gradient jumps between linear regions):

- ``RewardMLP`` for flat data (diffusion_shape (D,): the 2-D toys, the 8×8 digits as 64 values);
- ``RewardConv`` for images (C, H, W): two 3×3 convolutions (the second with stride 2), global average pooling
  and a linear head.

``Reward`` wraps a body with the target's normalisation (ψ = mean + std · body(x, t)) and the record that says what
it was trained on; ``reward(x, t)`` gives (B,) values in units of ψ.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from explorer.models.denoisers import sinusoidal_embedding
from explorer.provenance import stamped

DEFAULT_MLP = {"kind": "mlp", "hidden": 64, "depth": 3, "time_dim": 32}
DEFAULT_IMAGE_MLP = {"kind": "mlp", "hidden": 128, "depth": 3, "time_dim": 64}
DEFAULT_CONV = {"kind": "conv", "channels": 32, "time_dim": 64}


def _time_embedding(t, batch: int, dim: int, like: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(t) or t.ndim == 0:
        t = torch.tensor([float(t)], dtype=torch.float64)
    return sinusoidal_embedding(t.reshape(-1).double(), dim).to(like.device, like.dtype)


class RewardMLP(nn.Module):
    """r(x, t) for flat x (B, D): h_1 = SiLU(W_x x + W_t,1 e(t) + b), h_l = SiLU(W_l h_{l−1} + W_t,l e(t) + b_l),
    r = w·h_L + c, with e(t) the sinusoidal embedding of the timestep."""

    def __init__(self, dim: int, hidden: int = 64, depth: int = 3, time_dim: int = 32):
        super().__init__()
        self.dim, self.hidden, self.depth, self.time_dim = int(dim), int(hidden), int(depth), int(time_dim)
        self.x_proj = nn.Linear(self.dim, self.hidden)
        self.layers = nn.ModuleList(nn.Linear(self.hidden, self.hidden) for _ in range(self.depth - 1))
        self.t_proj = nn.ModuleList(nn.Linear(self.time_dim, self.hidden, bias=False) for _ in range(self.depth))
        self.head = nn.Linear(self.hidden, 1)

    def config(self) -> dict:
        return {"kind": "mlp", "hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim}

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        e = _time_embedding(t, x.shape[0], self.time_dim, x)
        h = nn.functional.silu(self.x_proj(x) + self.t_proj[0](e))
        for layer, tp in zip(self.layers, self.t_proj[1:], strict=True):
            h = nn.functional.silu(layer(h) + tp(e))
        return self.head(h)[:, 0]

    def _biases(self, t, like: torch.Tensor) -> list[torch.Tensor]:
        """b_l + W_t,l e(t) of every layer for a scalar timestep, cached per (t, device, dtype) and recomputed when a
        parameter changed (their versions are part of the key: training and ``load_state_dict`` bump them)."""
        params = (self.x_proj.bias, *(layer.bias for layer in self.layers), *(tp.weight for tp in self.t_proj))
        stamp = tuple((p._version, p.data_ptr()) for p in params)
        key = (float(t), str(like.device), like.dtype)
        cache = self.__dict__.setdefault("_bias_cache", {})
        hit = cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with torch.no_grad():
            e = _time_embedding(t, 1, self.time_dim, like)
            biases = [(lin.bias + tp(e)[0]).to(like.dtype) for lin, tp in
                      zip((self.x_proj, *self.layers), self.t_proj, strict=True)]
        if len(cache) > 4096:
            cache.clear()
        cache[key] = (stamp, biases)
        return biases

    def input_gradient(self, x: torch.Tensor, t, scale=None) -> torch.Tensor:
        """``scale`` · ∇_x r(x, t) by the chain rule written out: a forward pass keeping a_l and σ(a_l), then
        g ← (g ⊙ SiLU'(a_l)) W_l from the head down, SiLU'(a) = σ + h(1 − σ) with h = a σ. The same as autograd's
        (to rounding), with few kernels and the time biases cached per t: autograd's per-call overhead dominates the
        small batches of a sampling step. For a scalar t and no parameter gradients (sampling); otherwise autograd.
        Plain tensor ops, so it composes with forward-mode JVPs."""
        if (torch.is_tensor(t) and t.numel() != 1) or (torch.is_grad_enabled() and self.x_proj.weight.requires_grad):
            from torch.func import grad

            g = grad(lambda xx: self(xx, t).sum())(x)
            return g if scale is None else scale * g
        t = float(t) if not torch.is_tensor(t) else float(t.reshape(-1)[0])
        shape = x.shape
        h = x.reshape(shape[0], -1)
        weights = [self.x_proj.weight, *(layer.weight for layer in self.layers)]
        kept = []
        for w, b in zip(weights, self._biases(t, h), strict=True):
            a = torch.addmm(b, h, w.t())
            sg = torch.sigmoid(a)
            h = a * sg
            kept.append((sg, h))
        head = self.head.weight[0] if scale is None else scale * self.head.weight[0]
        g = None
        for (sg, hh), w in zip(reversed(kept), reversed(weights), strict=True):
            d = torch.addcmul(sg, hh, 1 - sg)
            g = (d * head if g is None else g * d) @ w
        return g.reshape(shape)

class RewardConv(nn.Module):
    """r(x, t) for images x (B, C, H, W): SiLU(conv3×3(x) + time bias) → SiLU(conv3×3 stride 2 + time bias) → mean over
    pixels → linear head."""

    def __init__(self, shape: tuple[int, int, int], channels: int = 32, time_dim: int = 64):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.channels, self.time_dim = int(channels), int(time_dim)
        c = self.shape[0]
        self.conv1 = nn.Conv2d(c, self.channels, 3, padding=1)
        self.conv2 = nn.Conv2d(self.channels, 2 * self.channels, 3, stride=2, padding=1)
        self.t1 = nn.Linear(self.time_dim, self.channels, bias=False)
        self.t2 = nn.Linear(self.time_dim, 2 * self.channels, bias=False)
        self.head = nn.Linear(2 * self.channels, 1)

    def config(self) -> dict:
        return {"kind": "conv", "channels": self.channels, "time_dim": self.time_dim}

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.shape)
        e = _time_embedding(t, x.shape[0], self.time_dim, x)
        h = nn.functional.silu(self.conv1(x) + self.t1(e)[:, :, None, None])
        h = nn.functional.silu(self.conv2(h) + self.t2(e)[:, :, None, None])
        return self.head(h.mean(dim=(2, 3)))[:, 0]


def default_net_config(diffusion_shape, image: bool = False) -> dict:
    """The reward body for a diffusion space: a conv net for (C, H, W), an MLP for flat data (wider for images)."""
    if len(tuple(diffusion_shape)) == 3:
        return dict(DEFAULT_CONV)
    return dict(DEFAULT_IMAGE_MLP if image else DEFAULT_MLP)


def make_reward_net(diffusion_shape, config: dict | None = None, seed: int = 0) -> nn.Module:
    """A freshly initialised reward body for ``diffusion_shape`` (``config``: ``kind`` mlp/conv and its sizes), the
    same for the same seed; torch's global random state is left as it was."""
    shape = tuple(int(s) for s in diffusion_shape)
    cfg = dict(config or default_net_config(shape))
    kind = cfg.pop("kind", "mlp")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if kind == "mlp":
            return RewardMLP(int(np.prod(shape)), **cfg)
        if kind == "conv":
            if len(shape) != 3:
                raise ValueError(f"the conv reward needs images (C, H, W); the diffusion space is {shape}")
            return RewardConv(shape, **cfg)
    raise ValueError(f"unknown reward net kind {kind!r}; valid: mlp, conv")


class Reward(nn.Module):
    """r_φ(x_t, t) = mean + std · body(x_t, t): a predicted ψ in ψ's own units, (B,) for x_t (B, *diffusion_shape).

    ``record``: what it was trained on (model, map, steps, P, N, seed, held-out R² overall and per third of the
    schedule, ...). ``weights_hash``: a hash of its tensors (what cache keys use). ``at(device, dtype)``: a converted
    copy made once per (device, dtype), as for models; the reward itself is never converted in place.
    """

    def __init__(self, body: nn.Module, mean: float, std: float, diffusion_shape, record: dict | None = None):
        super().__init__()
        self.body = body
        self.diffusion_shape = tuple(int(s) for s in diffusion_shape)
        self.register_buffer("mean", torch.tensor(float(mean), dtype=torch.float64))
        self.register_buffer("std", torch.tensor(float(std), dtype=torch.float64))
        self.record = dict(record or {})
        self._views: dict = {}
        self._lock = threading.Lock()

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.mean.to(x.dtype) + self.std.to(x.dtype) * self.body(x, t)

    def input_gradient(self, x: torch.Tensor, t) -> torch.Tensor:
        """∇_x r_φ(x, t) = std · ∇_x body(x, t): the body's own ``input_gradient`` where it has one (the MLP), else
        ``torch.func.grad``."""
        if hasattr(self.body, "input_gradient"):
            return self.body.input_gradient(x, t, scale=self.std.to(x.dtype))
        from torch.func import grad

        return grad(lambda xx: self(xx, t).sum())(x)

    @property
    def weights_hash(self) -> str:
        return tensors_hash(self.tensors())

    def tensors(self) -> dict[str, torch.Tensor]:
        """The state dict as contiguous CPU tensors (what the files hold)."""
        return {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}

    def config(self) -> dict:
        return {"net": self.body.config(), "diffusion_shape": list(self.diffusion_shape)}

    def at(self, device, dtype: torch.dtype) -> Reward:
        from explorer.models.base import module_device_dtype

        device = torch.device(device)
        if module_device_dtype(self.body) == (device, dtype):
            return self
        key = (str(device), dtype)
        with self._lock:
            view = self._views.get(key)
            if view is None:
                view = copy.deepcopy(self)
                view._views = {}
                view.body = view.body.to(device=device, dtype=dtype)
                view.mean, view.std = view.mean.to(device), view.std.to(device)
                view.eval().requires_grad_(False)
                self._views[key] = view
        return view

    def __deepcopy__(self, memo):
        new = Reward.__new__(Reward)
        nn.Module.__init__(new)
        new.body = copy.deepcopy(self.body, memo)
        new.diffusion_shape = self.diffusion_shape
        new.register_buffer("mean", self.mean.clone())
        new.register_buffer("std", self.std.clone())
        new.record = copy.deepcopy(self.record, memo)
        new._views, new._lock = {}, threading.Lock()
        return new

    def __repr__(self) -> str:
        r2 = self.record.get("heldout_r2")
        r2 = "" if r2 is None else f", held-out R² {r2:.3f}"
        return f"Reward({self.record.get('model', '?')!r}, map={self.record.get('map', '?')!r}{r2})"


def tensors_hash(tensors: dict[str, torch.Tensor]) -> str:
    """First 16 hex digits of a SHA-256 over the tensors' names, dtypes, shapes and bytes (sorted by name)."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        v = tensors[k].detach().contiguous().cpu()
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.numpy().tobytes())
    return h.hexdigest()[:16]


def reward_from_tensors(tensors: dict[str, torch.Tensor], record: dict) -> Reward:
    """A ``Reward`` from its tensors and record (``record["config"]``: the body and the diffusion shape)."""
    try:
        cfg = record["config"]
        shape, net = cfg["diffusion_shape"], dict(cfg["net"])
    except (KeyError, TypeError):
        raise ValueError("the reward's record has no 'config' with 'net' and 'diffusion_shape'; it was not written "
                         "by explorer.guidance") from None
    body = make_reward_net(shape, net)
    reward = Reward(body, 0.0, 1.0, shape, record)
    missing = set(reward.state_dict()) - set(tensors)
    if missing:
        raise ValueError(f"the reward's weights lack {', '.join(sorted(missing))}")
    reward.load_state_dict({k: torch.as_tensor(v) for k, v in tensors.items()})
    return reward.eval().requires_grad_(False)


def reward_paths(path) -> tuple[Path, Path]:
    """``stem.safetensors`` and ``stem.json`` for a path given with or without either suffix."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_reward(reward: Reward, path) -> tuple[Path, Path]:
    """Write ``path.safetensors`` (the tensors) and ``path.json`` (the record, with ``weights_hash``)."""
    from safetensors.torch import save_file

    st, js = reward_paths(path)
    st.parent.mkdir(parents=True, exist_ok=True)
    save_file(reward.tensors(), str(st))
    record = {**stamped(reward.record), "config": reward.config(), "weights_hash": reward.weights_hash}
    js.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return st, js


def load_reward(path) -> Reward:
    """The reward written by ``save_reward`` (``.safetensors`` with its ``.json`` beside it)."""
    from safetensors.torch import load_file

    st, js = reward_paths(path)
    for f in (st, js):
        if not f.exists():
            raise FileNotFoundError(f"reward file {f} is missing; a reward is a .safetensors file with its .json "
                                    "record beside it, written by `python -m explorer guidance` or save_reward")
    return reward_from_tensors(load_file(str(st)), json.loads(js.read_text()))


__all__ = ["Reward", "RewardConv", "RewardMLP", "default_net_config", "load_reward", "make_reward_net",
           "reward_from_tensors", "reward_paths", "save_reward", "tensors_hash"]

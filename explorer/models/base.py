"""The model protocol: what every page, the CLI and the library use of a generative model, and nothing else.

A generator is G: z ∈ R^{latent_shape} → x ∈ R^{sample_shape} (DESIGN.md §2). ``GenerativeModel`` is the
abstract base every model kind implements once (an *adapter*): the built-in MLP DDPMs
(``explorer.models.diffusion.DiffusionModel``), diffusers pipelines, or a user's own generator
(``load_model("package.module:make_model")``). Descriptors, geodesics, memorization and pages only call
these members.

Diffusion models also expose the diffusion they run (``schedule``, ``eps_model``, ``diffusion_shape``), which
the DDIM maps, the likelihoods and the inversions are built from; ``capabilities.diffusion`` says so.

A model is shared (``st.cache_resource``, a notebook, several threads): it is never converted in place.
``model.at(device, dtype)`` returns a converted *view*, made once per (device, dtype) and cached, that shares
everything but the networks.
"""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

#: Every map a model may offer: the whole DDIM sampler, the sampler from step t, the one-step denoiser, and
#: for latent diffusion the VAE decoder alone.
ALL_MAPS = ("sampler", "from_t", "denoiser", "decoder")


@dataclass(frozen=True)
class Capabilities:
    """What a model can do, so that callers choose by capability, never by ``hasattr``.

    ``maps``: the generator maps ``generator(map)`` accepts. ``likelihoods``: the ``log_prob`` methods.
    ``piecewise_linear``: the maps are CPWL (ReLU networks: the papers' exact setting). ``training_set``:
    ``training_set`` is not None. ``conditioning``: the keyword arguments ``generator``/``sample`` take
    (e.g. ``("class_label", "guidance_scale")``). ``step_jacobian``: the ε-model has ``eps_and_jacobian``
    (a fast exact ∂ε/∂x for flat data). ``diffusion``: ``schedule``, ``eps_model`` and ``diffusion_shape``
    exist (DDIM maps, the ODE likelihood, DDIM inversion).
    """

    maps: tuple[str, ...] = ("sampler",)
    likelihoods: tuple[str, ...] = ()
    piecewise_linear: bool = False
    training_set: bool = False
    conditioning: tuple[str, ...] = ()
    step_jacobian: bool = False
    diffusion: bool = False

    def as_record(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


class TrainingSet:
    """A lazy training set: ``len()`` without loading, data and labels on demand (copies, float32).

    ``source``: an array (N, *sample_shape) or a callable returning one (called once, when data is first
    needed); ``labels``: an array, a callable or None; ``size``: N when ``source`` is a callable (so that
    ``len`` never loads).
    """

    def __init__(self, source, labels=None, size: int | None = None, sample_shape: Sequence[int] | None = None):
        if callable(source) and size is None:
            raise ValueError("a lazy training set needs its size")
        self._source, self._labels_source = source, labels
        self._data: np.ndarray | None = None if callable(source) else np.asarray(source, dtype=np.float32)
        self._labels: np.ndarray | None = None
        self._size = int(size) if size is not None else len(self._data)
        self._shape = tuple(sample_shape) if sample_shape is not None else tuple(self._data.shape[1:])
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def has_labels(self) -> bool:
        return self._labels_source is not None

    def _array(self) -> np.ndarray:
        with self._lock:
            if self._data is None:
                self._data = np.asarray(self._source(), dtype=np.float32)
                if len(self._data) != self._size:
                    raise ValueError(f"the training set loaded {len(self._data)} items; expected {self._size}")
            return self._data

    def data(self, idx=None) -> np.ndarray:
        """The items (all, or those at ``idx``) as a float32 copy, (n, *sample_shape)."""
        a = self._array()
        return a.copy() if idx is None else a[np.asarray(idx)]

    def labels(self, idx=None) -> np.ndarray | None:
        """Class / mode labels (all, or at ``idx``), or None when the data set has none."""
        if self._labels_source is None:
            return None
        with self._lock:
            if self._labels is None:
                src = self._labels_source
                self._labels = np.asarray(src() if callable(src) else src)
        return self._labels.copy() if idx is None else self._labels[np.asarray(idx)]


@dataclass
class _ViewState:
    """What a root model shares with its converted views."""

    views: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class GenerativeModel(ABC):
    """The protocol. Subclasses set the attributes in ``__init__`` and implement the abstract methods.

    Attributes: ``name`` (the spec it was loaded by), ``weights_hash`` (a hash of everything that defines the
    model: part of every cache key), ``latent_shape`` (shape of one z), ``sample_shape`` (shape of one G(z); may
    differ: a decoder), ``capabilities``, ``training_set`` (a ``TrainingSet`` or None), ``default_steps`` (the
    sampler's steps, None for one-shot generators), ``log_p_ref`` (median log p of the training data in the
    default likelihood, the unit of relative λ; None when unknown), ``image_shape`` ((H, W) when samples are
    images, else None), ``channels`` (image channels), ``meta`` (the model's record), ``ref_points``.
    """

    name: str = ""
    weights_hash: str = ""
    latent_shape: tuple[int, ...] = ()
    sample_shape: tuple[int, ...] = ()
    capabilities: Capabilities = Capabilities()
    training_set: TrainingSet | None = None
    default_steps: int | None = None
    log_p_ref: float | None = None
    #: How many points the median of p_ref is taken over when it is not stored (None: ``explorer.density.cached.
    #: REF_POINTS``); expensive likelihoods (pipelines' ODE, about a second a point on a CPU) take fewer.
    ref_points: int | None = None
    image_shape: tuple[int, int] | None = None
    channels: int = 1
    meta: dict = {}
    #: Where this object's networks live (a view's device and dtype; the root model's are CPU float32).
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32

    # ------------------------------------------------------------------ latents and maps
    def latents(self, n: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``n`` standard-normal latents (n, *latent_shape) on the CPU, the same for the same seed (drawn in
        float64 from a seeded generator, then cast)."""
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        gen = torch.Generator().manual_seed(int(seed))
        return torch.randn((n, *self.latent_shape), generator=gen, dtype=torch.float64).to(dtype)

    def latent_of_seed(self, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The first latent of ``latents(1, seed)``, shape latent_shape (the CLI's ``--anchors``, the pages' seeds)."""
        return self.latents(1, seed, dtype)[0]

    @abstractmethod
    def generator(self, map: str = "sampler", steps: int | None = None, t: int | None = None,
                  **condition) -> nn.Module:
        """G as an ``nn.Module`` from (B, *latent_shape) to (B, *sample_shape) that owns its networks as
        submodules (in this object's device and dtype). Refuses unknown maps and conditioning by name.

        Diffusion adapters take ``reward=`` and ``rho=`` on the ``sampler`` map by returning
        ``self.guided_sampler(steps, reward, rho, **condition)`` when a reward is given (see ``DiffusionModel``)."""

    def guided_sampler(self, steps: int | None = None, reward: nn.Module | None = None, rho: float = 0.0,
                       **condition) -> nn.Module:
        """The reward-guided DDIM sampler x_T → sample (explorer.guidance.GuidedDDIM), built from ``eps_model``,
        ``schedule`` and ``decode_module`` alone, so every diffusion adapter has it."""
        from explorer.guidance.sampler import guided_generator

        self.check_condition(condition)
        return guided_generator(self, steps, reward, rho, **condition)

    def sample(self, n: int, seed: int = 0, steps: int | None = None, batch_size: int | None = None,
               reward: nn.Module | None = None, rho: float = 0.0, **condition) -> np.ndarray:
        """G(z) for exactly the latents ``latents(n, seed)``, computed on the compute device, as float32 numpy
        (n, *sample_shape).

        With a ``reward`` r_φ(x_t, t) (diffusion models): the reward-guided DDIM sampler of strength ``rho``
        (explorer.guidance; ρ = 0 gives exactly the plain samples)."""
        from explorer.device import compute_view, rows_per_chunk

        if reward is not None:
            from explorer.guidance.sampler import guided_sample

            return guided_sample(self, n, seed, steps, reward, rho, batch_size=batch_size, **condition)

        view = compute_view(self)
        G = view.generator("sampler", steps, **condition)
        z = self.latents(n, seed)
        if n == 0:
            return np.zeros((0, *self.sample_shape), dtype=np.float32)
        batch = batch_size or rows_per_chunk(G, z[:1].to(view.device, view.dtype), 1)
        out = []
        with torch.no_grad():
            for s in range(0, n, batch):
                out.append(G(z[s:s + batch].to(view.device, view.dtype)).float().cpu())
        return torch.cat(out).numpy()

    def check_condition(self, condition: dict) -> dict:
        """``condition`` if every key is one the model takes (``capabilities.conditioning``), else a ValueError."""
        unknown = sorted(set(condition) - set(self.capabilities.conditioning))
        if unknown:
            takes = ", ".join(self.capabilities.conditioning) or "none"
            raise ValueError(f"model {self.name!r} takes no conditioning {', '.join(unknown)}; it takes: {takes}")
        return condition

    def canonical_condition(self, condition: dict | None = None) -> dict:
        """``condition`` checked and in one form, what cache keys hold: ``guidance_scale`` a float, and the
        values equal to the defaults dropped (guidance scale 1, empty prompts), so that {} and its spelled-out
        defaults name the same result. Adapters extend it (a DiT class name becomes its number)."""
        out = dict(self.check_condition(dict(condition or {})))
        if "guidance_scale" in out:
            out["guidance_scale"] = float(out["guidance_scale"])
            if out["guidance_scale"] == 1.0:
                del out["guidance_scale"]
        for key in ("prompt", "negative_prompt"):
            if out.get(key) == "":
                del out[key]
        return out

    def check_map(self, map: str) -> str:
        if map not in self.capabilities.maps:
            raise ValueError(f"unknown map {map!r} for model {self.name!r}; valid: {', '.join(self.capabilities.maps)}")
        return map

    # ------------------------------------------------------------------ likelihood
    @property
    def default_likelihood(self) -> dict:
        """The likelihood the pages and CLI use (``log_prob`` keywords, with ``method``)."""
        if not self.capabilities.likelihoods:
            return {}
        return dict(self.meta.get("likelihood") or {"method": self.capabilities.likelihoods[0]})

    def log_prob(self, x, method: str | None = None, **kwargs) -> np.ndarray:
        """log p(x) (float64, (M,)) for points x of the space the density is over, (M, *diffusion_shape) or flat
        (M, D): the samples themselves, except for latent diffusion models (their VAE latents, ``encode(images)``)."""
        raise ValueError(f"model {self.name!r} has no likelihood; use a KDE of its samples or training data")

    def log_density(self, method: str | None = None, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
        """log p as a plain callable from an (M, D) array to (M,) float64, for explorer.geodesics (``method``
        None: ``default_likelihood``). Undefined points (NaN, e.g. an inversion that did not converge) count as
        density 0 (log p = −inf), the most expensive the metric allows."""
        if method is None:
            kwargs = {**self.default_likelihood, **kwargs}
            method = kwargs.pop("method", None)
        if method is None:
            raise ValueError(f"model {self.name!r} has no likelihood")

        def log_density(x):
            logp = self.log_prob(x, method=method, **kwargs)
            return np.where(np.isnan(logp), -np.inf, logp)

        return log_density

    # ------------------------------------------------------------------ diffusion (capabilities.diffusion)
    schedule = None  #: an ``explorer.models.ddim.NoiseSchedule`` for diffusion models, else None
    diffusion_shape: tuple[int, ...] = ()  #: shape of x_t, the space the diffusion runs in

    def eps_model(self, **condition) -> nn.Module:
        """ε_θ(x_t, t) as an ``nn.Module`` on (B, *diffusion_shape) (diffusion models only); for conditional models
        with ``guidance_scale`` > 1 the classifier-free-guided ε̃ = ε(x, ∅) + s·(ε(x, c) − ε(x, ∅))."""
        raise ValueError(f"model {self.name!r} is not a diffusion model")

    def decode_module(self) -> nn.Module | None:
        """The map from the diffusion's space to samples (a latent model's VAE decoder, image = decode(x_0 /
        scaling_factor)), or None when the diffusion runs in sample space (pixels, the built-in models)."""
        return None

    # The diffusion's own space (``diffusion_shape``) is where likelihoods, geodesic graphs and DDIM inversion work:
    # pixels for pixel models, the VAE latent for latent diffusion. These four members move between it and samples.
    def encode(self, images) -> np.ndarray:
        """Points of the diffusion's space (N, *diffusion_shape), float32, for samples ``images`` (N, *sample_shape)
        or flat (N, D): the images themselves where the diffusion runs in sample space; latent models override it
        (the VAE encoder's posterior mean × scaling_factor)."""
        shape = tuple(self.diffusion_shape or self.sample_shape)
        x = np.asarray(images.detach().cpu() if torch.is_tensor(images) else images, dtype=np.float32)
        size = int(np.prod(shape))
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != size:
            raise ValueError(f"images must be (N, {', '.join(map(str, self.sample_shape))}) or (N, {size}); "
                             f"got shape {x.shape}")
        return x.reshape(len(x), *shape).copy()

    def decode(self, x) -> np.ndarray:
        """Samples (N, *sample_shape), float32, of points x of the diffusion's space: ``decode_module`` applied on the
        compute device (the points themselves where there is none)."""
        module = self.decode_module()
        if module is None:
            return self.encode(x)
        from explorer.device import compute_view

        x = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x)
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != int(np.prod(self.diffusion_shape)):
            raise ValueError(f"points of the diffusion's space must be (N, {', '.join(map(str, self.diffusion_shape))})"
                             f" or flat; got shape {x.shape}")
        return compute_view(self).run_batched("decode", x, self.diffusion_shape)

    def x0_generator(self, steps: int | None = None, **condition) -> nn.Module:
        """The DDIM sampler z → x_0 in the diffusion's own space (before any decoder): ``generator("sampler")`` where
        the diffusion runs in sample space; latent adapters override it."""
        if self.decode_module() is not None:
            raise NotImplementedError(f"{type(self).__name__} has a decoder but no x0_generator")
        return self.generator("sampler", steps, **condition)

    def sample_x0(self, n: int, seed: int = 0, steps: int | None = None, **condition) -> np.ndarray:
        """x_0 of the diffusion (n, *diffusion_shape), float32, for exactly the latents ``latents(n, seed)``: the
        samples themselves where the diffusion runs in sample space, the latents before the VAE decoder for latent
        models (what their geodesic graphs and decoder planes are built on)."""
        from explorer.device import compute_view

        view = compute_view(self)
        if n == 0:
            return np.zeros((0, *(self.diffusion_shape or self.sample_shape)), dtype=np.float32)
        return view.run_batched(view.x0_generator(steps, **condition), self.latents(n, seed), self.latent_shape)

    def run_batched(self, module, x, in_shape) -> np.ndarray:
        """``module`` (or "decode": ``decode_module()``) applied to x (N, *in_shape or flat) in chunks that fit the
        memory budget, without gradients, on this object's device and dtype; float32 numpy out."""
        from explorer.device import rows_per_chunk

        module = self.decode_module() if isinstance(module, str) else module
        xt = torch.as_tensor(np.asarray(x.detach().cpu() if torch.is_tensor(x) else x)).to(self.dtype)
        xt = xt.reshape(len(xt), *in_shape)
        if len(xt) == 0:
            raise ValueError("run_batched needs at least one point")
        batch = rows_per_chunk(module, xt[:1].to(self.device), 1)
        out = []
        with torch.no_grad():
            for s in range(0, len(xt), batch):
                out.append(module(xt[s:s + batch].to(self.device)).float().cpu())
        return torch.cat(out).numpy()

    @property
    def num_train_timesteps(self) -> int | None:
        return None if self.schedule is None else int(self.schedule.num_train_timesteps)

    # ------------------------------------------------------------------ training set and display
    def training_data(self) -> np.ndarray:
        """The training set (N, *sample_shape) as float32 (a copy)."""
        if self.training_set is None:
            raise ValueError(f"model {self.name!r} has no training set")
        return self.training_set.data()

    def training_labels(self) -> np.ndarray | None:
        return None if self.training_set is None else self.training_set.labels()

    def to_display(self, x) -> np.ndarray | None:
        """Samples (N, *sample_shape) in [−1, 1] → uint8 images (N, H, W, C), or None for point models."""
        if self.image_shape is None:
            return None
        x = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=np.float64)
        h, w = self.image_shape
        c = int(self.channels)
        x = x.reshape(len(x), -1)
        if x.shape[1] != c * h * w:
            raise ValueError(f"a sample has {x.shape[1]} values; {c}×{h}×{w} images need {c * h * w}")
        img = x.reshape(len(x), c, h, w).transpose(0, 2, 3, 1)  # channels first, as the networks produce them
        return np.round(np.clip((img + 1.0) / 2.0, 0.0, 1.0) * 255).astype(np.uint8)

    # ------------------------------------------------------------------ converted views
    def at(self, device=None, dtype: torch.dtype | None = None) -> GenerativeModel:
        """This model on ``device`` in ``dtype``: a view made once per (device, dtype) and cached, sharing
        everything but its networks; the shared model itself is never converted."""
        root = getattr(self, "_root", None) or self
        device = torch.device(device) if device is not None else root.device
        dtype = dtype or root.dtype
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device == root.device and dtype == root.dtype:
            return root
        state = root.__dict__.setdefault("_view_state", _ViewState())
        key = (str(device), dtype)
        with state.lock:
            view = state.views.get(key)
            if view is None:
                view = copy.copy(root)
                view.__dict__.pop("_view_state", None)
                view._root = root
                view.device, view.dtype = device, dtype
                view._convert_networks(device, dtype)
                state.views[key] = view
        return view

    def _convert_networks(self, device: torch.device, dtype: torch.dtype) -> None:
        """Replace this (shallow-copied) object's networks by converted copies (``at``): the adapter's part."""
        raise NotImplementedError(f"{type(self).__name__} does not implement at()")

    @staticmethod
    def converted(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
        """A deep copy of ``module`` on ``device`` in ``dtype`` (for ``_convert_networks``)."""
        return copy.deepcopy(module).to(device=device, dtype=dtype).eval().requires_grad_(False)

    def __repr__(self) -> str:
        view = "" if getattr(self, "_root", None) is None else f", {self.device}, {self.dtype}"
        return f"{type(self).__name__}({self.name!r}, latent_shape={self.latent_shape}{view})"


def module_device_dtype(module, default: tuple | None = None) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) of a module's first floating parameter or buffer; ``default`` (else CPU float32) when it has
    none or is not an ``nn.Module`` (a plain function of z: the work then runs where z is)."""
    if isinstance(module, nn.Module):
        for t in (*module.parameters(), *module.buffers()):
            if t.is_floating_point():
                return t.device, t.dtype
    return default or (torch.device("cpu"), torch.float32)


__all__ = ["ALL_MAPS", "Capabilities", "GenerativeModel", "TrainingSet", "module_device_dtype"]

"""``load_model(spec)``: a small registry of model kinds, tried in order, each with one clear error.

A spec is resolved in this order:
1. a built-in name (``toy2d/ring``, ``digits/full``, …: weights shipped in assets/);
2. a path: a trained model's ``.safetensors`` (with its ``.json`` beside it), or a folder another kind claims
   (diffusers pipelines register themselves here);
3. ``package.module:function``: the user's own code (never a model folder's) returning a ``GenerativeModel``;
4. ids other kinds resolve (e.g. ``org/name`` in the local Hugging Face cache).

Kinds are added with ``register_kind``; the first whose ``claims(spec)`` is true loads it.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from explorer.models.base import GenerativeModel

ASSETS = Path(__file__).resolve().parents[2] / "assets"
TOY2D_MODELS = ("toy2d/ring", "toy2d/moons", "toy2d/circles", "toy2d/spiral")
DIGITS_MODELS = ("digits/full", "digits/memorized")
#: Diffusers pipeline folders shipped in assets/ (``assets/<name>``), opened by the same loader as any user's folder
#: but under this stable name, so that their shipped cache entries are found wherever the repository lives.
PIPELINE_MODELS = ("pipelines/digits-unet",)
BUILTIN_MODELS = TOY2D_MODELS + DIGITS_MODELS + PIPELINE_MODELS
DEFAULT_MODEL = "toy2d/ring"

_MODULE_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class ModelKind:
    """One kind of spec: ``claims(spec)`` says whether it is this kind's, ``load(spec)`` opens it."""

    name: str
    claims: Callable[[str], bool]
    load: Callable[[str], GenerativeModel]
    describe: str


_KINDS: list[ModelKind] = []
_loaded: dict[str, GenerativeModel] = {}
_lock = threading.Lock()


def register_kind(kind: ModelKind, before: str | None = None) -> None:
    """Add a model kind (before the kind named ``before``, else last); re-registering a name replaces it."""
    global _KINDS
    kinds = [k for k in _KINDS if k.name != kind.name]
    at = next((i for i, k in enumerate(kinds) if k.name == before), len(kinds))
    kinds.insert(at, kind)
    _KINDS = kinds


def kinds() -> list[ModelKind]:
    return list(_KINDS)


def list_models() -> list[str]:
    """The built-in specs (``load_model`` takes paths, ``module:function`` and cache ids too)."""
    return list(BUILTIN_MODELS)


def load_model(spec: str = DEFAULT_MODEL, cache: bool = True) -> GenerativeModel:
    """The model named by ``spec`` (see the module docstring for the kinds and their order); loaded once per
    process when ``cache``."""
    spec = str(spec).strip()
    if not spec:
        raise ValueError("the model spec is empty; give a built-in name such as toy2d/ring, a path or "
                         "package.module:function")
    if cache and spec in _loaded:
        return _loaded[spec]
    family = spec.split("/")[0]
    if (spec not in BUILTIN_MODELS and "/" in spec and any(b.startswith(family + "/") for b in BUILTIN_MODELS)
            and not Path(spec).expanduser().exists()):
        # toy2d/nope: a typo of a built-in name, not a Hugging Face cache id
        raise ValueError(f"unknown model {spec!r}; valid: {', '.join(BUILTIN_MODELS)}")
    for kind in _KINDS:
        if kind.claims(spec):
            model = kind.load(spec)
            if not isinstance(model, GenerativeModel):
                raise ValueError(f"{spec!r} gave a {type(model).__name__}, not an explorer GenerativeModel")
            if cache:
                with _lock:
                    model = _loaded.setdefault(spec, model)
            return model
    raise ValueError(f"unknown model {spec!r}; valid: {', '.join(BUILTIN_MODELS)}; or "
                     + "; or ".join(k.describe for k in _KINDS if k.name != "builtin"))


# ---------------------------------------------------------------------------- the kinds of this package
def _load_builtin(spec: str) -> GenerativeModel:
    from explorer.models.weights import load_ddpm

    if spec in PIPELINE_MODELS:
        from explorer.models.pipelines.folder import inspect_folder
        from explorer.models.pipelines.load import open_folder

        return open_folder(inspect_folder(ASSETS / spec, spec))

    return load_ddpm(ASSETS / spec, spec)


def _claims_trained(spec: str) -> bool:
    return spec.endswith((".safetensors", ".json")) and not _MODULE_SPEC.match(spec)


def _load_trained(spec: str) -> GenerativeModel:
    from explorer.models.weights import load_ddpm

    path = Path(spec).expanduser()
    stem = path.with_suffix("")
    if not stem.with_suffix(".safetensors").exists() and not stem.with_suffix(".json").exists():
        raise FileNotFoundError(f"no model file {path}: expected a .safetensors file written by "
                                "`python -m explorer train` with its .json beside it")
    return load_ddpm(stem, spec)


def _load_module_spec(spec: str) -> GenerativeModel:
    """``package.module:function``: import the user's module and call ``function()``."""
    module_name, func_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"could not import {module_name!r} for model {spec!r} ({err}); make the package "
                         "importable (install it, or put its folder on PYTHONPATH)") from None
    factory = getattr(module, func_name, None)
    if not callable(factory):
        raise ValueError(f"{module_name!r} has no function {func_name!r} for model {spec!r}")
    model = factory()
    if not isinstance(model, GenerativeModel):
        raise ValueError(f"{spec} returned a {type(model).__name__}; it must return an "
                         "explorer.models.GenerativeModel (see the README's adapter example)")
    if not model.name:
        model.name = spec
    return model


register_kind(ModelKind("builtin", lambda s: s in BUILTIN_MODELS, _load_builtin, "a built-in name"))
register_kind(ModelKind("trained", _claims_trained, _load_trained,
                        "the path of a trained model's .safetensors file"))
register_kind(ModelKind("module", lambda s: bool(_MODULE_SPEC.match(s)), _load_module_spec,
                        "package.module:function returning a GenerativeModel"))

# diffusers pipelines: folders (before module specs) and Hugging Face cache ids (last)
from explorer.models.pipelines import register as _register_pipelines  # noqa: E402

_register_pipelines()

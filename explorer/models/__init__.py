"""Models: ``load_model(spec)`` for the built-in generators and their shared interface."""

from __future__ import annotations

from pathlib import Path

from explorer.models.diffusion import DiffusionModel

ASSETS = Path(__file__).resolve().parents[2] / "assets"
TOY2D_MODELS = ("toy2d/ring", "toy2d/moons", "toy2d/circles", "toy2d/spiral")
DIGITS_MODELS = ("digits/full", "digits/memorized")
BUILTIN_MODELS = TOY2D_MODELS + DIGITS_MODELS
DEFAULT_MODEL = "toy2d/ring"

_loaded: dict[str, DiffusionModel] = {}


def list_models() -> list[str]:
    """The specs ``load_model`` accepts."""
    return list(BUILTIN_MODELS)


def load_model(spec: str = DEFAULT_MODEL, cache: bool = True) -> DiffusionModel:
    """The model named ``spec``: a built-in one (e.g. ``toy2d/ring`` or ``digits/full``, from the shipped
    weights in assets/) or the path of a model that ``python -m explorer train toy2d --csv`` wrote
    (``DIR/toy2d/NAME.safetensors`` with its ``.json``)."""
    spec = str(spec)
    if cache and spec in _loaded:
        return _loaded[spec]
    from explorer.models.weights import load_ddpm

    if spec in BUILTIN_MODELS:
        model = load_ddpm(ASSETS / spec, spec)
    elif spec.endswith((".safetensors", ".json")) and Path(spec).with_suffix(".json").exists():
        model = load_ddpm(Path(spec).with_suffix(""), spec)
    else:
        raise ValueError(f"unknown model {spec!r}; valid: {', '.join(BUILTIN_MODELS)}, or the path of a "
                         "trained model's .safetensors file")
    if cache:
        _loaded[spec] = model
    return model


__all__ = ["BUILTIN_MODELS", "DEFAULT_MODEL", "DIGITS_MODELS", "TOY2D_MODELS", "DiffusionModel", "list_models",
           "load_model"]

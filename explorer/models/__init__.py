"""Models: the protocol every model kind implements (``GenerativeModel``) and ``load_model(spec)``."""

from __future__ import annotations

from explorer.models.base import Capabilities, GenerativeModel, TrainingSet
from explorer.models.diffusion import DiffusionModel
from explorer.models.registry import (
    ASSETS,
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    DIGITS_MODELS,
    PIPELINE_MODELS,
    TOY2D_MODELS,
    list_models,
    load_model,
    register_kind,
)

__all__ = ["ASSETS", "BUILTIN_MODELS", "DEFAULT_MODEL", "DIGITS_MODELS", "PIPELINE_MODELS", "TOY2D_MODELS",
           "Capabilities", "DiffusionModel", "GenerativeModel", "TrainingSet", "list_models", "load_model",
           "register_kind"]

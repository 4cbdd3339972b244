"""One factory per model kind, for the contract suite (tests/test_contract.py) and any test that runs on every kind.

Each factory returns a small model quickly (shipped weights, or tiny networks built here); ``kind_steps`` gives
the few sampler steps the tests use on it.
"""

from __future__ import annotations

from collections.abc import Callable

from explorer.models import ASSETS, GenerativeModel, load_model


def _builtin(spec: str) -> Callable[[], GenerativeModel]:
    return lambda: load_model(spec)


def _tiny_pipeline(kind: str) -> Callable[[], GenerativeModel]:
    """A tiny random diffusers pipeline (tests/tiny_pipelines.py), saved once and opened by its folder."""

    def factory():
        from tests.tiny_pipelines import tiny_folder

        return load_model(str(tiny_folder(kind)))

    return factory


#: kind name → factory (kinds added by later work register here too).
KINDS: dict[str, Callable[[], GenerativeModel]] = {
    "toy2d": _builtin("toy2d/ring"),
    "digits": _builtin("digits/full"),
    "user-module": _builtin("examples.affine_gaussian:make_model"),
    "diffusers-digits-unet": _builtin(str(ASSETS / "pipelines" / "digits-unet")),
    "diffusers-ddpm": _tiny_pipeline("ddpm"),
    "diffusers-dit": _tiny_pipeline("dit"),
    "diffusers-sd": _tiny_pipeline("sd"),
}


def kind_steps(model: GenerativeModel) -> int | None:
    """Few DDIM steps for diffusion models (fast tests), None for one-shot generators."""
    return 3 if model.capabilities.diffusion else None

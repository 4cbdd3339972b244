"""Which models the app offers, and which a link may open.

The sidebar lists the built-in models that load here, the models named in ``EXPLORER_MODELS`` (the server's
own list: trained ``.safetensors`` paths, diffusers pipeline folders, ``org/name`` cache ids,
``package.module:function``), the supported pipelines found in the local Hugging Face cache (``cached_models``:
checked from their files, loaded only when chosen) and those the user added in this session. A link
(``?model=...``) may name only those: a new path needs the user to add it in the sidebar, so that a link never
makes the server open a file nobody chose.
"""

from __future__ import annotations

import os

from explorer.models import list_models, load_model


def model_status(spec: str) -> tuple[bool, str]:
    """Whether a model loads here, and why not (one line)."""
    try:
        load_model(spec)
    except Exception as err:  # noqa: BLE001 - any failure to load means "not available here", with the reason
        return False, f"{type(err).__name__}: {err}".splitlines()[0]
    return True, ""


def server_models(env: str | None = None) -> list[str]:
    """Model specs named in ``EXPLORER_MODELS`` (separated by the OS path separator, or commas)."""
    value = os.environ.get("EXPLORER_MODELS", "") if env is None else env
    parts = [p.strip() for chunk in value.split(os.pathsep) for p in chunk.split(",")]
    return list(dict.fromkeys(p for p in parts if p))


def cached_models() -> list[str]:
    """The ``org/name`` ids of the supported pipelines in the local Hugging Face cache (``HF_HUB_CACHE`` /
    ``HF_HOME``, read now), from their files alone: a cached Stable Diffusion is not loaded just to be listed."""
    from explorer.models.pipelines import cached_pipelines

    return cached_pipelines()


def available_models(extra=(), cached=()) -> list[str]:
    """The built-in models that load here, then the ``extra`` specs that load, then the ``cached`` pipeline ids
    (already checked by ``cached_models``; loaded when chosen), in order, without repeats."""
    loads = [s for s in dict.fromkeys([*list_models(), *extra]) if model_status(s)[0]]
    return list(dict.fromkeys([*loads, *cached]))


def link_may_open(spec: str, added=()) -> bool:
    """Whether a link's ``model=`` may name ``spec``: a built-in model, one of ``EXPLORER_MODELS``, a pipeline of
    the local cache, or one the user added in this session (``added``)."""
    return (spec in list_models() or spec in server_models() or spec in tuple(added)
            or spec in cached_models())

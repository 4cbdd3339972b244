"""Size profiles of the app: ``$EXPLORER_PROFILE`` (``default`` or ``test``) picks the library's size preset
(``explorer.views.sizes``) and the app's own settings (when work asks for a confirm, whether UMAP is warmed up)."""

from __future__ import annotations

import os

from explorer.views.sizes import PRESETS, model_kind, sizes

#: App-only settings per profile: work estimated above ``confirm_seconds`` waits for a click.
APP_SETTINGS: dict[str, dict] = {
    "default": {"confirm_seconds": 60.0, "warm_umap": True},
    "test": {"confirm_seconds": 1e9, "warm_umap": False},
}
#: Memorization page sizes that are display only: gallery rows per "show more", neighbours shown per sample.
MEMORIZATION_PAGE = {"default": {"page_rows": 24, "k": 4}, "test": {"page_rows": 8, "k": 3}}


def profile_name() -> str:
    name = os.environ.get("EXPLORER_PROFILE", "default") or "default"
    if name not in PRESETS:
        raise ValueError(f"EXPLORER_PROFILE must be one of {', '.join(PRESETS)}; got {name!r}")
    return name


def profile(kind: str | None = None) -> dict:
    """The sizes of ``$EXPLORER_PROFILE`` for a model ``kind`` (``points`` or ``image``) with the app settings;
    ``$EXPLORER_CONFIRM_SECONDS`` overrides the confirm limit (benchmarks set it high)."""
    name = profile_name()
    out = {**sizes(name, kind or "points"), **APP_SETTINGS[name]}
    if os.environ.get("EXPLORER_CONFIRM_SECONDS"):
        out["confirm_seconds"] = float(os.environ["EXPLORER_CONFIRM_SECONDS"])
    return out


def sizes_for(model) -> dict:
    """``profile(model_kind(model))`` with the steps capped by the model's default steps."""
    from explorer.views.sizes import sizes_for as library_sizes

    return {**library_sizes(model, profile_name()), **{k: v for k, v in profile(model_kind(model)).items()
                                                        if k in APP_SETTINGS["default"]}}


def memorization_page() -> dict:
    return dict(MEMORIZATION_PAGE[profile_name()])


def direction_options(d: int) -> list[int]:
    """P choices for a d-dimensional latent: powers of two from 4 below d, then d itself (the full Jacobian)."""
    return sorted({p for p in (4, 8, 16, 32, 64, 128, 256) if p < d} | {int(d)})

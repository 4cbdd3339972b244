"""The app's pages: file, title and URL path of each, in navigation order (``app.py`` routes them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    key: str
    file: str
    title: str
    url_path: str
    default: bool = False
    listed: bool = True


PAGES: tuple[PageSpec, ...] = (
    PageSpec("home", "app_pages/local_geometry.py", "Local geometry", "home", default=True),
    PageSpec("local_geometry", "app_pages/local_geometry.py", "Local geometry", "local_geometry", listed=False),
    PageSpec("geodesics", "app_pages/geodesics.py", "Geodesics", "geodesics"),
    PageSpec("embedding", "app_pages/embedding.py", "Embedding & clusters", "embedding"),
    PageSpec("memorization", "app_pages/memorization.py", "Memorization", "memorization"),
    PageSpec("guidance", "app_pages/guidance.py", "Guidance", "guidance"),
    PageSpec("figures", "app_pages/figures.py", "Paper figures", "figures"),
)
#: Deep links of the pages: "" is the default page (served at /).
DEEP_LINKS = {"local_geometry": "local_geometry", "geodesics": "geodesics", "embedding": "embedding",
              "memorization": "memorization", "guidance": "guidance", "figures": "figures"}

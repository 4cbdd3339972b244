"""The shipped cache (assets/cache) holds every default view: a newcomer's first visit of each page, on each built-in
model, and every paper figure, computes nothing. Refresh it with ``python -m explorer precompute --prune``."""

import pytest

from explorer import cache
from explorer.models import BUILTIN_MODELS, load_model
from explorer.views.precompute import precompute_default_views, precompute_figures


@pytest.fixture
def nothing_computed(isolated_cache, monkeypatch):
    """An empty user cache where any computed entry fails the test (every result is saved once computed)."""
    def refuse(kind, key, arrays, record):
        raise AssertionError(f"{kind} {record.get('params')} is not in assets/cache: "
                             "run `python -m explorer precompute --prune`")

    monkeypatch.setattr(cache, "save", refuse)


@pytest.mark.parametrize("name", BUILTIN_MODELS)
def test_default_views_of_every_built_in_model_ship(name, nothing_computed):
    records = precompute_default_views(load_model(name), preset="default", log=lambda *_: None)
    assert records and all(r["hit"] is not False for r in records), records


def test_paper_figures_ship(nothing_computed):
    assert len(precompute_figures(preset="default", log=lambda *_: None)) == 7


def test_the_shipped_cache_stays_small():
    total = sum(p.stat().st_size for p in cache.ASSETS_CACHE.iterdir() if p.is_file())
    assert total < 10e6, f"assets/cache holds {total / 1e6:.1f} MB (the limit is 10 MB)"

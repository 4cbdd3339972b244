"""The shipped diffusers model (``pipelines/digits-unet``, a DDPMPipeline folder in assets/) in a real browser:
Local geometry opens on it, a click on a heatmap cell shows that cell's image, and on Geodesics two endpoints set by
hand give a geodesic strip between them. Test sizes, a private cache; skipped without Chromium except under
CI=true."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.browser

MODEL = "pipelines/digits-unet"
MAP_FRAME = 'iframe[title="streamlit_image_coordinates.streamlit_image_coordinates"]'


@pytest.fixture(scope="module")
def browser_ready():
    from tests.browser_support import require_browser

    require_browser()


def _settled(page, timeout: float = 240.0) -> None:
    """No script run in progress for a moment (the app may draw no Plotly chart yet)."""
    deadline = time.perf_counter() + timeout
    quiet = None
    while time.perf_counter() < deadline:
        if page.query_selector('[data-testid="stStatusWidget"]') is not None:
            quiet = None
        elif quiet is None:
            quiet = time.perf_counter()
        elif time.perf_counter() - quiet > 1.0:
            return
        time.sleep(0.1)
    raise TimeoutError("the app kept running")


def _wait_for(page, what, timeout: float = 240.0):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.3)
    raise TimeoutError(f"waited {timeout:.0f} s; the page shows: {page.inner_text('body')[:1500]}")


def _no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0, page.inner_text("body")[:2000]


def test_the_shipped_pipeline_in_chromium(browser_ready, tmp_path):
    from tests.browser_support import chromium_page, streamlit_server

    env = {"EXPLORER_PROFILE": "test", "EXPLORER_CACHE_DIR": str(tmp_path / "cache"),
           "EXPLORER_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    with streamlit_server(env) as (url, _), chromium_page() as page:
        page.goto(f"{url}/?model={MODEL}")
        # the descriptor heatmaps are images in streamlit-image-coordinates frames: click one cell of the first
        frame = _wait_for(page, lambda: page.locator(MAP_FRAME).count() >= 4 and page.locator(MAP_FRAME).first)
        _settled(page)
        _no_errors(page)
        assert "Local geometry" in page.inner_text("body")
        image = page.frame_locator(MAP_FRAME).first.locator("img")
        image.wait_for(timeout=60_000)
        box = image.bounding_box()
        assert box and box["width"] > 10, box
        image.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.5})
        _wait_for(page, lambda: "Cell (row" in page.inner_text("body"))
        _settled(page)
        _no_errors(page)
        assert "G(z) of the cell" in page.inner_text("body")
        del frame

        # Geodesics: set both endpoints by hand, the strip names them
        page.goto(f"{url}/geodesics?model={MODEL}")
        # the graph's log p: the ODE at about 40 points (a few seconds each on a busy 2-core CPU)
        _wait_for(page, lambda: "Start image A" in page.inner_text("body"), timeout=900)
        _settled(page)
        _no_errors(page)
        for label, value in (("Start image A (node index)", "2"), ("End image B (node index)", "5")):
            box = page.get_by_label(label)
            box.fill(value)
            box.press("Enter")
            _settled(page)
        _wait_for(page, lambda: "A = 2" in page.inner_text("body") and "B = 5" in page.inner_text("body"))
        _settled(page)
        _no_errors(page)
        assert "The graph geodesic at λ" in page.inner_text("body")

"""The app in a real browser: ``streamlit run app.py`` headless on a free localhost port, Debian's Chromium
through Playwright. Visits every page, moves the λ slider on the Geodesics page and checks that the path moved,
and saves screenshots (to $EXPLORER_SCREENSHOTS, or a temporary folder). Skipped without /usr/bin/chromium,
except under CI=true."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
# Screenshots go to $EXPLORER_SCREENSHOTS (e.g. docs/screenshots to refresh the README's), else to a
# temporary folder, so a test run never dirties the work tree.
SHOTS = Path(os.environ.get("EXPLORER_SCREENSHOTS") or tempfile.mkdtemp(prefix="explorer-shots-"))
PAGES = {"local_geometry": "", "geodesics": "geodesics", "embedding": "embedding"}  # the default page is at /


@pytest.fixture(scope="module")
def browser_ready():
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but /usr/bin/chromium is missing (apt-get install chromium)")
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but the playwright package is missing (pip install playwright)")
        pytest.skip("the playwright package is missing (pip install playwright)")


def test_pages_and_lambda_slider_in_chromium(browser_ready, tmp_path):
    from explorer.app_state import LAM_OPTIONS

    from tests.browser_support import (
        chromium_page,
        drag_slider,
        lambda_slider,
        save_screenshot,
        streamlit_server,
        trace_xy,
        wait_idle,
    )

    env = {"EXPLORER_PROFILE": "test", "EXPLORER_CACHE_DIR": str(tmp_path / "cache")}
    with streamlit_server(env) as (url, _), chromium_page() as page:
        for name, path in PAGES.items():
            page.goto(f"{url}/{path}?model=toy2d/ring")
            wait_idle(page)
            nav = page.get_by_test_id("stSidebarNav").inner_text()
            assert "Embedding & clusters" in nav and "Local geometry" in nav, f"app.py's navigation is not used: {nav}"
            wait_idle(page)
            assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {name}"
            assert "Page not found" not in page.inner_text("body"), name
            save_screenshot(page, SHOTS / f"{name}.png")

        page.goto(f"{url}/geodesics?model=toy2d/ring&lam=0.0562")
        wait_idle(page)
        slider = lambda_slider(page)
        assert slider.get_attribute("aria-valuetext") == "0.0562"
        before = trace_xy(page, "geodesic")
        assert before is not None and len(before[0]) >= 2
        drag_slider(page, LAM_OPTIONS.index(5.62), len(LAM_OPTIONS))
        deadline = time.perf_counter() + 60
        after = trace_xy(page, "geodesic")
        while (after is None or not after[2].endswith("5.62")) and time.perf_counter() < deadline:
            time.sleep(0.2)
            after = trace_xy(page, "geodesic")
        wait_idle(page)
        after = trace_xy(page, "geodesic")
        assert lambda_slider(page).get_attribute("aria-valuetext") == "5.62"
        assert after[2] == "geodesic λ=5.62", f"the path's trace shows {after[2]}"
        assert (after[0], after[1]) != (before[0], before[1]), "the geodesic's coordinates did not change"
        assert "lam=5.62" in page.url
        save_screenshot(page, SHOTS / "geodesics_lambda.png")
    for png in SHOTS.glob("*.png"):
        assert png.stat().st_size <= 300_000, f"{png} is over 300 KB"

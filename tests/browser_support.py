"""Helpers shared by the browser test and bench/bench_app.py: a local Streamlit server and Playwright driving
Debian's Chromium (never ``playwright install``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]

# JS: [x, y] of the first Plotly trace whose name starts with the given prefix, or null.
TRACE_XY_JS = """(prefix) => {
  for (const div of document.querySelectorAll('.js-plotly-plot')) {
    for (const t of (div.data || [])) {
      if (t.name && t.name.startsWith(prefix)) { return [Array.from(t.x), Array.from(t.y), t.name]; }
    }
  }
  return null;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict | None = None, timeout: float = 120.0, options: tuple[str, ...] = ()):
    """``python -m webui.serve app.py`` (what scripts/app runs) headless on a free localhost port; yields
    ``(url, seconds_to_healthy)``. ``options``: more Streamlit flags (``"--runner.postScriptGC", "true"``).

    The server is always terminated (then killed if it does not stop)."""
    port = free_port()
    cmd = [sys.executable, "-m", "webui.serve", str(ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", *options]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"streamlit did not become healthy within {timeout} s")
            time.sleep(0.2)
        yield url, time.perf_counter() - start
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 900):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def chromium_pages(n: int, width: int = 1400, height: int = 900):
    """``n`` pages of one Chromium, each in its own browser context: ``n`` separate sessions of the app."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield [browser.new_context(viewport={"width": width, "height": height}).new_page() for _ in range(n)]
        finally:
            browser.close()


def wait_idle(page, timeout: float = 180.0) -> None:
    """Wait until the app has drawn a Plotly chart and no script run is in progress."""
    page.wait_for_selector(".js-plotly-plot", timeout=timeout * 1000)
    deadline = time.perf_counter() + timeout
    quiet_since = None
    while time.perf_counter() < deadline:
        running = page.query_selector('[data-testid="stStatusWidget"]') is not None
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since > 0.6:
            return
        time.sleep(0.1)
    raise TimeoutError("the app kept running")


def trace_xy(page, prefix: str = "geodesic"):
    return page.evaluate(TRACE_XY_JS, prefix)


def lambda_slider(page):
    """The λ slider's thumb on the Geodesics page (the first select-slider there)."""
    return page.locator('[data-testid="stSlider"] input[type="range"]').first


def drag_slider(page, index: int, n_options: int, nth: int = 0) -> None:
    """Drag the thumb of the ``nth`` slider on the page to option ``index`` of ``n_options`` and release it."""
    slider = page.locator('[data-testid="stSlider"]').nth(nth)
    track = slider.locator('[role="group"] > div').first
    thumb = slider.locator('input[type="range"]').first.locator("xpath=../..")
    tb, bb = thumb.bounding_box(), track.bounding_box()
    x0, y = tb["x"] + tb["width"] / 2, tb["y"] + tb["height"] / 2
    x1 = bb["x"] + bb["width"] * index / (n_options - 1)
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x1, y, steps=8)
    page.mouse.up()


def save_screenshot(page, path: Path, max_bytes: int = 300_000) -> Path:
    """A PNG screenshot of the viewport, re-encoded as an adaptive-palette PNG if it is over ``max_bytes``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    if path.stat().st_size > max_bytes:
        from PIL import Image

        img = Image.open(path).convert("RGB")
        for colors, scale in ((256, 1.0), (128, 1.0), (128, 0.8), (64, 0.7)):
            im = img if scale == 1.0 else img.resize((int(img.width * scale), int(img.height * scale)))
            im.quantize(colors=colors).save(path, optimize=True)
            if path.stat().st_size <= max_bytes:
                break
    return path


def require_browser() -> None:
    """Skip (fail under CI=true) unless /usr/bin/chromium and the playwright package are there."""
    import pytest

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

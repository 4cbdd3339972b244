"""The app in a real browser, clicking like a person: ``streamlit run app.py`` headless on a free localhost port,
Debian's Chromium through Playwright (never ``playwright install``). One server for the module (the test size
profile, an empty private cache); each test opens its own page. Skipped without /usr/bin/chromium, except under
CI=true. Screenshots go to $EXPLORER_SCREENSHOTS (e.g. docs/screenshots), else to a temporary folder."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("EXPLORER_SCREENSHOTS") or tempfile.mkdtemp(prefix="explorer-shots-"))
DEEP_LINKS = ["", "local_geometry", "geodesics", "embedding", "memorization", "figures"]
IMAGE_FRAME = 'iframe[title="streamlit_image_coordinates.streamlit_image_coordinates"]'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.browser_support import require_browser

    require_browser()
    from tests.browser_support import streamlit_server

    cache = tmp_path_factory.mktemp("browser-cache")
    env = {"EXPLORER_PROFILE": "test", "EXPLORER_CACHE_DIR": str(cache),
           "EXPLORER_HOME": str(tmp_path_factory.mktemp("browser-home"))}
    with streamlit_server(env) as (url, _):
        yield url, cache


@pytest.fixture
def page():
    from tests.browser_support import chromium_page

    with chromium_page() as p:
        p.console_messages = []
        p.on("console", lambda m: p.console_messages.append(m.text))
        yield p


#: Pixel position, in its chart, of point ``idx`` of the trace named ``name`` (Plotly's own calcdata and axes).
POINT_XY_JS = """([name, idx]) => { for (const d of document.querySelectorAll('.js-plotly-plot')) {
  const k = d.data.findIndex(t => t.name === name); if (k < 0) continue;
  const p = d.calcdata[k][idx]; const xa = d._fullLayout.xaxis, ya = d._fullLayout.yaxis;
  return [xa._offset + xa.c2p(p.x), ya._offset + ya.c2p(p.y)]; } return null; }"""


#: Indices of the two points of trace ``name`` farthest (in pixels) from every other point: safe to click.
ISOLATED_JS = """(name) => { for (const d of document.querySelectorAll('.js-plotly-plot')) {
  const k = d.data.findIndex(t => t.name === name); if (k < 0) continue;
  const xa = d._fullLayout.xaxis, ya = d._fullLayout.yaxis;
  const p = d.calcdata[k].map(c => [xa.c2p(c.x), ya.c2p(c.y)]);
  const gap = p.map((a, i) => Math.min(...p.map((b, j) => i === j ? 1e9 : Math.hypot(a[0] - b[0], a[1] - b[1]))));
  const order = gap.map((g, i) => [g, i]).sort((u, v) => v[0] - u[0]).map(u => u[1]);
  return [order[0], order[1]]; } return null; }"""


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]
    assert "Page not found" not in page.inner_text("body")


def click_cell(page, nth: int, fx: float, fy: float) -> None:
    """Click the nth descriptor map at fractions (fx, fy) of its width and height."""
    img = page.frame_locator(IMAGE_FRAME).nth(nth).locator("img")
    img.wait_for(timeout=120_000)
    box = img.bounding_box()
    img.click(position={"x": box["width"] * fx, "y": box["height"] * fy})


def wait_for_text(page, text: str, timeout: float = 240.0) -> None:
    deadline = time.perf_counter() + timeout
    while text not in page.inner_text("body"):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{text!r} did not appear; the page says: {page.inner_text('body')[-1500:]}")
        time.sleep(0.3)


def test_every_page_opens_by_its_deep_link_on_a_cold_cache(server, page):
    from tests.browser_support import save_screenshot, wait_idle

    url, _ = server
    for path in DEEP_LINKS:
        page.goto(f"{url}/{path}?model=toy2d/ring")
        wait_idle(page, 600)
        no_exception(page)
        body = page.inner_text("body")
        assert "Local geometry" in body and "Paper figures" in body, "app.py's navigation is drawn"
        save_screenshot(page, SHOTS / f"{path or 'local_geometry'}.png")


def test_a_heatmap_click_opens_the_cell_panel(server, page):
    from tests.browser_support import wait_idle

    url, _ = server
    page.goto(f"{url}/?model=toy2d/ring")
    wait_idle(page, 600)
    assert page.locator(IMAGE_FRAME).count() == 4, "ψ, ν, ν_eff and δ are clickable maps"
    click_cell(page, 0, 0.7, 0.2)  # test profile: 6 × 6 cells; column 4, row 1 from the top = map row 4
    wait_for_text(page, "Cell (row 4, column 4)")
    wait_idle(page, 120)
    no_exception(page)
    assert "cell=4%2C4" in page.url or "cell=4,4" in page.url


def test_two_clicks_set_the_geodesic_endpoints_and_lambda_moves_the_path(server, page):
    from explorer.views.geodesics import DEFAULT_LAM
    from tests.browser_support import drag_slider, trace_xy, wait_idle
    from webui.query import LAM_OPTIONS

    url, _ = server
    page.goto(f"{url}/geodesics?model=toy2d/ring")
    wait_idle(page, 600)
    no_exception(page)
    assert page.locator('[data-testid="stSlider"] input[type="range"]').first.get_attribute(
        "aria-valuetext") == f"{DEFAULT_LAM:g}"
    ends = page.evaluate("""() => { for (const d of document.querySelectorAll('.js-plotly-plot')) {
        for (const t of (d.data || [])) { if (t.name === 'endpoints') return [t.x, t.y]; } } return null; }""")
    assert ends is not None
    plot = page.locator(".js-plotly-plot").first
    picks = page.evaluate(ISOLATED_JS, "points")  # two points with no other point drawn near them
    for idx in picks:  # click them where Plotly drew them: they become A and B
        xy = page.evaluate(POINT_XY_JS, ["points", idx])
        box = plot.bounding_box()
        page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
        time.sleep(1.0)
        wait_idle(page, 120)
    no_exception(page)
    assert f"ends={picks[0]}%2C{picks[1]}" in page.url, (picks, page.url)
    before = trace_xy(page, "geodesic")
    drag_slider(page, LAM_OPTIONS.index(5.62), len(LAM_OPTIONS))
    deadline = time.perf_counter() + 60
    after = trace_xy(page, "geodesic")
    while (after is None or not after[2].endswith("5.62")) and time.perf_counter() < deadline:
        time.sleep(0.2)
        after = trace_xy(page, "geodesic")
    assert after[2] == "geodesic λ=5.62" and (after[0], after[1]) != (before[0], before[1])


def test_an_embedding_click_selects_a_point(server, page):
    from tests.browser_support import wait_idle

    url, _ = server
    page.goto(f"{url}/embedding?model=toy2d/ring")
    wait_idle(page, 600)
    no_exception(page)
    plot = page.locator(".js-plotly-plot").first
    name = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[0].data[0].name")
    xy = page.evaluate(POINT_XY_JS, [name, 0])
    box = plot.bounding_box()
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    wait_for_text(page, "1 points selected", 120)
    wait_idle(page, 120)
    assert "sel=" in page.url, page.url


def test_charts_keep_their_canvas_after_five_map_changes(server, page):
    from tests.browser_support import wait_idle

    url, _ = server
    page.goto(f"{url}/?model=toy2d/ring")
    wait_idle(page, 600)
    select = page.locator('[data-testid="stSelectbox"]').filter(has_text="Map G")
    for name in ["denoiser", "from_t", "sampler", "denoiser", "sampler"]:
        select.click()
        page.get_by_role("option", name=name, exact=True).click()
        time.sleep(0.5)
        wait_idle(page, 300)
        no_exception(page)
    assert not [m for m in page.console_messages if "WebGL" in m], page.console_messages
    assert page.locator(IMAGE_FRAME).count() == 4
    for k in range(page.locator(".js-plotly-plot").count()):  # every Plotly chart is drawn (SVG or canvas)
        assert page.locator(".js-plotly-plot").nth(k).locator("svg.main-svg").count() >= 1


def test_clicks_during_a_running_job_stop_and_sharing(server):
    """While a descriptor plane computes: clicks and a page switch break nothing and it finishes; a second session
    asking for the same plane joins the same job; Stop cancels another and leaves no cache entry."""
    from tests.browser_support import chromium_pages, wait_idle

    url, cache = server
    link = f"{url}/?model=toy2d/spiral&res=112&steps=50"  # not shipped (128 is); 20-40 s here
    with chromium_pages(2) as (a, b):
        a.goto(link)
        wait_for_text(a, "the 112×112 descriptor maps", 600)  # the progress panel (after any jobs queued before it)
        wait_for_text(a, "clicks and page switches do not stop it", 120)  # the page's own progress panel
        b.goto(link)  # a second session, same result: it shows the same job's progress
        wait_for_text(b, "the 112×112 descriptor maps", 120)
        wait_for_text(b, "clicks and page switches do not stop it", 120)  # the running job, not a result
        a.get_by_text("Geodesics", exact=True).first.click()  # a page switch while it runs
        time.sleep(1.0)
        a.get_by_text("Local geometry", exact=True).first.click()  # and back, by the sidebar's link
        wait_for_text(a, "Resolution n", 120)
        a.get_by_role("spinbutton", name="Extent (half-width, latent units)").click()  # clicks on widgets
        a.get_by_role("spinbutton", name="DDIM steps S").click()
        time.sleep(0.5)
        for p in (a, b):
            wait_for_text(p, "δ counts boundary neurons", 600)
            wait_idle(p, 120)
            no_exception(p)
        assert len(list(cache.glob("descriptor_maps-*.json"))) >= 1
        entries = [p for p in cache.glob("descriptor_maps-*.json") if '"n": 112' in p.read_text()]
        assert len(entries) == 1, "one job, one entry"
        # Stop: another plane, cancelled while it runs, leaves no entry
        a.goto(f"{url}/?model=toy2d/spiral&res=113&steps=50")
        wait_for_text(a, "the 113×113 descriptor maps", 600)
        a.get_by_role("button", name="Stop").click()
        wait_for_text(a, "Stopped", 120)
        no_exception(a)
        assert not [p for p in cache.glob("descriptor_maps-*.json") if '"n": 113' in p.read_text()]

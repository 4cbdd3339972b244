"""Browser timings of the app at its default sizes (not a CI gate). Needs /usr/bin/chromium and playwright.

  .venv/bin/python bench/bench_app.py [--moves 20] [--cache-dir DIR] [--screenshots docs/screenshots]

1. Server start: ``streamlit run app.py`` until /_stcore/health answers (and until the first page is drawn).
2. Warm-up: every page once (confirming long work), which fills the disk cache.
3. A fresh server: first load of each page with a warm disk cache (an empty in-process cache).
4. λ on the Geodesics page of toy2d/ring (2,000 points + background, k = 10): p50 / p90 over ``--moves`` slider
   drags, from mouse release to the redrawn path in the DOM.
Prints a Markdown table; ``--append`` adds it to bench/RESULTS.md under "## App".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.views.sizes import PRESETS  # noqa: E402
from tests.browser_support import (  # noqa: E402
    chromium_page,
    drag_slider,
    save_screenshot,
    streamlit_server,
    trace_xy,
    wait_idle,
)
from webui.query import LAM_OPTIONS  # noqa: E402

PAGES = {"Local geometry": "", "Geodesics": "geodesics", "Embedding & clusters": "embedding"}
#: Text each page shows once everything on it is drawn.
DONE = {"": "Correlations over", "geodesics": "Several λ on one plot",
        "embedding": "Clustering against the true labels"}
WAIT_NAME_JS = """(name) => {
  for (const div of document.querySelectorAll('.js-plotly-plot')) {
    for (const t of (div.data || [])) { if (t.name === name) return true; }
  }
  return false;
}"""


def load_page(page, url: str, path: str, timeout: float = 900.0) -> float:
    """Open ``url``, click any cost confirm, wait until the page's last section is drawn; seconds taken."""
    start = time.perf_counter()
    page.goto(url)
    deadline = start + timeout
    while time.perf_counter() < deadline:
        confirm = page.get_by_role("button", name="Compute")
        running = page.query_selector('[data-testid="stStatusWidget"]') is not None
        if confirm.count() and not running:  # only when idle: a click during a run would restart the work
            time.sleep(0.5)
            if page.query_selector('[data-testid="stStatusWidget"]') is None and confirm.count():
                confirm.first.click()
                time.sleep(2.0)
            continue
        if page.get_by_text(DONE[path]).count():
            wait_idle(page, timeout=timeout)
            if page.get_by_text(DONE[path]).count() and not page.get_by_role("button", name="Compute").count():
                return time.perf_counter() - start
        time.sleep(0.05)
    raise TimeoutError(url)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--cache-dir", default=None, help="disk cache folder (default: a fresh temporary one)")
    ap.add_argument("--screenshots", type=Path, default=None, help="save default-size screenshots here")
    ap.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    ap.add_argument("--skip", nargs="*", default=[], choices=list(PAGES.values()),
                    help="pages to leave out (by URL path; '' is Local geometry)")
    args = ap.parse_args(argv)
    pages = {name: path for name, path in PAGES.items() if path not in args.skip}
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="explorer-bench-cache-")
    env = {"EXPLORER_PROFILE": "default", "EXPLORER_CACHE_DIR": cache_dir, "EXPLORER_CONFIRM_SECONDS": "1e9"}
    rows = []

    print("warm-up: filling the disk cache (slow the first time)", file=sys.stderr)
    with streamlit_server(env, timeout=300) as (url, t_health), chromium_page() as page:
        t0 = time.perf_counter()
        page.goto(url + "/geodesics?model=toy2d/ring")
        page.wait_for_selector('[data-testid="stSidebarNav"]', timeout=120_000)
        t_ui = time.perf_counter() - t0
        cold = {}
        for name, path in pages.items():
            cold[name] = load_page(page, f"{url}/{path}?model=toy2d/ring", path)
            print(f"  cold {name}: {cold[name]:.1f} s", file=sys.stderr)
    rows.append(("Server start (process → /_stcore/health answers)", f"{t_health:.2f} s", ""))
    rows.append(("First page shell (navigation drawn)", f"{t_ui:.2f} s", "after health"))
    for name, s in cold.items():
        rows.append((f"First load, cold disk cache: {name}", f"{s:.1f} s", "computes and caches"))

    with streamlit_server(env, timeout=300) as (url, t_health2), chromium_page() as page:
        for name, path in pages.items():
            s = load_page(page, f"{url}/{path}?model=toy2d/ring", path)
            rows.append((f"First load, warm disk cache (fresh server): {name}", f"{s:.2f} s", "aim < 5 s"))
            print(f"  warm {name}: {s:.2f} s", file=sys.stderr)
            if args.screenshots:
                save_screenshot(page, args.screenshots / f"default_{path or 'local_geometry'}.png")

        load_page(page, f"{url}/geodesics?model=toy2d/ring&lam=1", "geodesics")
        a, b = LAM_OPTIONS.index(0.0562), LAM_OPTIONS.index(5.62)
        times = []
        for m in range(args.moves + 1):
            target = LAM_OPTIONS[b if m % 2 == 0 else a]
            drag_slider(page, LAM_OPTIONS.index(target), len(LAM_OPTIONS))
            t_release = time.perf_counter()
            page.wait_for_function(WAIT_NAME_JS, arg=f"geodesic λ={target:g}", polling="raf", timeout=60_000)
            dt = time.perf_counter() - t_release
            if m > 0:  # the first move also warms the fragment
                times.append(dt)
            wait_idle(page)
        xy = trace_xy(page, "geodesic")
        assert xy is not None
    p50, p90 = statistics.median(times), sorted(times)[int(0.9 * (len(times) - 1))]
    rows.append((f"λ slider release → redrawn path, p50 over {len(times)} moves", f"{p50 * 1000:.0f} ms",
                 f"p90 {p90 * 1000:.0f} ms, min {min(times) * 1000:.0f} ms; aim < 500 ms"))
    rows.append(("Server start, second run (warm OS caches)", f"{t_health2:.2f} s", ""))

    d = PRESETS["default"]
    header = (f"## App\n\nMeasured by `bench/bench_app.py` on {time.strftime('%Y-%m-%d')}: {os.cpu_count()}-core CPU "
              f"({platform.processor() or platform.machine()}, shared with other jobs), no GPU, headless Chromium "
              f"(Debian) through Playwright. Default sizes: geodesic graph of {d['graph_n']} training points + "
              f"{d['n_background']} background points, k = {d['k']}, KDE density; descriptor planes "
              f"{d['plane_n']}×{d['plane_n']} of the {d['steps']}-step sampler; embeddings of {d['embed_n']} points "
              f"over {len(d['embed_lams'])} λ values. Model toy2d/ring.\n\n")
    table = "| What | Time | Note |\n|---|---|---|\n" + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    print(header + table)
    if args.append:
        with open(ROOT / "bench" / "RESULTS.md", "a") as fh:
            fh.write("\n" + header + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Browser timings of the app at its default sizes, as a newcomer meets them (not a CI gate). Needs /usr/bin/chromium.

  .venv/bin/python bench/bench_app.py [--moves 20] [--screenshots docs/screenshots] [--append]

1. A fresh server with an empty disk cache (only the shipped default views in assets/cache): each page opened by its
   deep link, time to its first chart (a Plotly chart or a clickable map drawn) and until the page is idle.
2. λ on the Geodesics page of toy2d/ring (its default 2,000 + 500-point graph): p50 / p90 over ``--moves`` slider
   drags, from mouse release to the redrawn path in the DOM.
Prints a Markdown table with the machine and its load; ``--append`` adds it to bench/RESULTS.md under "## App".
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

PAGES = {"Local geometry": "", "Local geometry (deep link)": "local_geometry", "Geodesics": "geodesics",
         "Embedding & clusters": "embedding", "Memorization": "memorization", "Guidance": "guidance",
         "Paper figures": "figures"}
FIRST_CHART_JS = """() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0 ||
  document.querySelectorAll('iframe[title="streamlit_image_coordinates.streamlit_image_coordinates"]').length > 0"""
WAIT_NAME_JS = """(name) => {
  for (const div of document.querySelectorAll('.js-plotly-plot')) {
    for (const t of (div.data || [])) { if (t.name === name) return true; }
  }
  return false;
}"""


def first_chart(page, url: str, timeout: float = 900.0) -> tuple[float, float]:
    """(seconds to the first chart, seconds until idle) for a fresh load of ``url``."""
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function(FIRST_CHART_JS, polling="raf", timeout=timeout * 1000)
    t_chart = time.perf_counter() - start
    wait_idle(page, timeout)
    return t_chart, time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--model", default="toy2d/ring")
    ap.add_argument("--screenshots", type=Path, default=None, help="save default-size screenshots here")
    ap.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args(argv)
    env = {"EXPLORER_PROFILE": "default", "EXPLORER_CACHE_DIR": tempfile.mkdtemp(prefix="explorer-bench-cache-"),
           "EXPLORER_HOME": tempfile.mkdtemp(prefix="explorer-bench-home-")}
    load_before = os.getloadavg()
    rows = []
    with streamlit_server(env, timeout=300) as (url, t_health), chromium_page() as page:
        rows.append(("Server start (process → /_stcore/health answers)", f"{t_health:.2f} s", ""))
        for name, path in PAGES.items():
            t_chart, t_idle = first_chart(page, f"{url}/{path}?model={args.model}")
            rows.append((f"{name}: first chart, fresh server, empty cache", f"{t_chart:.2f} s",
                         f"idle after {t_idle:.1f} s; aim < 5 s"))
            print(f"  {name}: first chart {t_chart:.2f} s, idle {t_idle:.1f} s", file=sys.stderr)
            if args.screenshots:
                save_screenshot(page, args.screenshots / f"default_{path or 'home'}.png")
        first_chart(page, f"{url}/geodesics?model={args.model}")
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
        assert trace_xy(page, "geodesic") is not None
    p50, p90 = statistics.median(times), sorted(times)[int(0.9 * (len(times) - 1))]
    rows.append((f"λ slider release → redrawn path, p50 over {len(times)} moves", f"{p50 * 1000:.0f} ms",
                 f"p90 {p90 * 1000:.0f} ms, min {min(times) * 1000:.0f} ms; aim < 500 ms"))
    load_after = os.getloadavg()
    d = PRESETS["default"]
    header = (f"## App\n\nMeasured by `bench/bench_app.py` on {time.strftime('%Y-%m-%d')}: {os.cpu_count()}-core CPU "
              f"({platform.processor() or platform.machine()}), no GPU, headless Chromium (Debian) through Playwright; "
              f"1-minute load average {load_before[0]:.1f} before and {load_after[0]:.1f} after. A fresh server with "
              f"an empty disk cache (the shipped default views only), model {args.model}, default sizes (geodesic "
              f"graph of {d['graph_n']} + {d['n_background']} points, k = {d['k']}; planes {d['plane_n']}×"
              f"{d['plane_n']}).\n\n")
    table = "| What | Time | Note |\n|---|---|---|\n" + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    print(header + table)
    if args.append:
        with open(ROOT / "bench" / "RESULTS.md", "a") as fh:
            fh.write("\n" + header + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

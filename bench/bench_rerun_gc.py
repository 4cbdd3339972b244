"""What Streamlit's ``runner.postScriptGC`` (a full ``gc.collect(2)`` after every script and fragment run) costs
this app, which sets it off in .streamlit/config.toml. Needs /usr/bin/chromium.

  .venv/bin/python bench/bench_rerun_gc.py [--moves 10] [--rounds 2]

For each setting (on = Streamlit's default, off = ours), alternately, ``--rounds`` times, on a fresh server with an
empty user cache (test size profile):
1. a 96 × 96 descriptor plane of toy2d/spiral (not shipped) with two browser sessions showing its progress panel
   (each polls every second): seconds from opening the link to the drawn maps;
2. λ on the Geodesics page of toy2d/ring: p50 over ``--moves`` slider drags, release → redrawn path.
Prints a Markdown table with the machine and its load, and the on/off ratios of the same process.
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

from bench.bench_app import WAIT_NAME_JS, first_chart  # noqa: E402
from tests.browser_support import chromium_pages, drag_slider, streamlit_server, wait_idle  # noqa: E402
from webui.query import LAM_OPTIONS  # noqa: E402

#: Seconds to wait for the plane; a run past it is reported as "> PLANE_LIMIT" (the job starved).
PLANE_LIMIT = 300.0


def _wait_text(page, text: str, timeout: float = PLANE_LIMIT) -> None:
    deadline = time.perf_counter() + timeout
    while text not in page.inner_text("body"):
        if time.perf_counter() > deadline:
            raise TimeoutError(text)
        time.sleep(0.2)


def one_round(gc: bool, moves: int) -> tuple[float, float]:
    env = {"EXPLORER_PROFILE": "test", "EXPLORER_CACHE_DIR": tempfile.mkdtemp(prefix="explorer-bench-gc-"),
           "EXPLORER_HOME": tempfile.mkdtemp(prefix="explorer-bench-gc-home-")}
    with streamlit_server(env, options=("--runner.postScriptGC", "true" if gc else "false")) as (url, _), \
            chromium_pages(2) as (a, b):
        first_chart(a, f"{url}/?model=toy2d/ring")  # the server warmed up: model loaded, first page drawn
        start = time.perf_counter()
        link = f"{url}/?model=toy2d/spiral&res=96&steps=50"
        a.goto(link)
        b.goto(link)
        try:
            for p in (a, b):
                _wait_text(p, "Computed in", PLANE_LIMIT - (time.perf_counter() - start))
            plane = time.perf_counter() - start
        except TimeoutError:
            plane = float("inf")
            for p in (a, b):
                p.goto("about:blank")  # the sessions end; the job runs on alone in the worker
        first_chart(a, f"{url}/geodesics?model=toy2d/ring")
        lo, hi = LAM_OPTIONS.index(0.0562), LAM_OPTIONS.index(5.62)
        times = []
        for m in range(moves + 1):
            target = LAM_OPTIONS[hi if m % 2 == 0 else lo]
            drag_slider(a, LAM_OPTIONS.index(target), len(LAM_OPTIONS))
            t0 = time.perf_counter()
            a.wait_for_function(WAIT_NAME_JS, arg=f"geodesic λ={target:g}", polling="raf", timeout=60_000)
            if m > 0:
                times.append(time.perf_counter() - t0)
            wait_idle(a)
    return plane, statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    got: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for r in range(args.rounds):
        for gc in (True, False):
            got[gc].append(one_round(gc, args.moves))
            print(f"  round {r}, postScriptGC {gc}: plane {got[gc][-1][0]:.1f} s, λ p50 {got[gc][-1][1] * 1000:.0f} ms",
                  file=sys.stderr)
    load_after = os.getloadavg()
    best = {gc: (min(x[0] for x in v), min(x[1] for x in v)) for gc, v in got.items()}
    print(f"{os.cpu_count()}-core {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}; load "
          f"average {load_before[0]:.1f} before, {load_after[0]:.1f} after; best of {args.rounds} rounds\n")
    print("| runner.postScriptGC | 96×96 plane, two sessions polling (s) | λ p50 (ms) |\n|---|---|---|")
    for gc in (True, False):
        plane = f"> {PLANE_LIMIT:.0f}" if best[gc][0] == float("inf") else f"{best[gc][0]:.1f}"
        print(f"| {'on (Streamlit default)' if gc else 'off (this app)'} | {plane} | {best[gc][1] * 1000:.0f} |")
    on_plane = best[True][0]
    starved = on_plane == float("inf")
    plane_ratio = f"< {best[False][0] / PLANE_LIMIT:.3f}" if starved else f"{best[False][0] / on_plane:.3f}"
    print(f"\noff / on: plane × {plane_ratio}, λ × {best[False][1] / best[True][1]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

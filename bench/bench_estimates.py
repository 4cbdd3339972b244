"""The backend's cost estimates against the time each job then takes, on an empty cache (not a CI gate).

  .venv/bin/python bench/bench_estimates.py [--model toy2d/ring] [--preset default] [--append]

For each default job of the model (its descriptor plane, sample descriptors and the cold Geodesics graph with the
model's likelihood): the estimate the page shows (measured rates; probed first, as on a fresh server) and the
seconds the job then takes, in the same process. Issue 10 asks for a factor of 2 at most. Prints a Markdown table
with the machine and its load; ``--append`` adds it to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="toy2d/ring")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="explorer-bench-est-"))
    os.environ["EXPLORER_CACHE_DIR"], os.environ["EXPLORER_HOME"] = str(tmp / "cache"), str(tmp / "home")
    from explorer import cache

    cache.ASSETS_CACHE = tmp / "no-shipped-cache"  # a truly cold cache: nothing read from assets/cache
    from explorer.density.cached import make_density
    from explorer.jobs.kinds import estimate, run_kind
    from explorer.models import load_model
    from explorer.views.geodesics import geodesics_defaults, graph_job_params
    from explorer.views.local_geometry import local_geometry_defaults

    model = load_model(args.model)
    d = local_geometry_defaults(model, args.preset)
    g = geodesics_defaults(model, args.preset)
    jobs = {
        "descriptor plane": ("descriptor_plane", {"map": d["map"], "steps": d["steps"], "t": None,
                                                  "seeds": list(d["seeds"]), "n": d["n"], "extent": d["extent"],
                                                  "n_directions": d["n_directions"], "radius": d["radius"]}),
        "sample descriptors": ("sample_descriptors", {"map": d["map"], "steps": d["steps"], "t": None,
                                                      "n": d["n_samples"], "radius": d["radius"],
                                                      "n_directions": d["n_directions"]}),
        "Geodesics graph (cold)": ("geodesic_graph", graph_job_params(g, make_density(model, g["source"]))),
    }
    load_before = os.getloadavg()
    rows = []
    for what, (kind, params) in jobs.items():
        t0 = time.perf_counter()
        est = estimate(kind, model, params)
        probe = time.perf_counter() - t0
        t1 = time.perf_counter()
        run_kind(kind, model, params)
        took = time.perf_counter() - t1
        rows.append((what, est, took, probe))
        print(f"  {what}: estimate {est:.1f} s, took {took:.1f} s (probe {probe:.1f} s)", file=sys.stderr)
    load_after = os.getloadavg()
    machine = f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), no GPU"
    load = f"1-minute load average {load_before[0]:.1f} before and {load_after[0]:.1f} after"
    header = (f"### Cost estimates (`bench/bench_estimates.py`)\n\nOn {time.strftime('%Y-%m-%d')}: {machine}; "
              f"{load}; model {args.model}, {args.preset} sizes, an empty cache (the shipped one hidden), rates "
              "probed as on a fresh server.\n\n")
    table = "| Job | Estimate | Took | Took / estimate | Probe |\n|---|---|---|---|---|\n" + "".join(
        f"| {w} | {e:.1f} s | {t:.1f} s | {t / e:.2f} | {p:.1f} s |\n" for w, e, t, p in rows)
    print(header + table)
    if args.append:
        with open(ROOT / "bench" / "RESULTS.md", "a") as fh:
            fh.write("\n" + header + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

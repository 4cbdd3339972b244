"""Fill a cache folder with every default view of the built-in models (or the given ones), so that a first visit to
each page starts no computation. By default it refreshes the shipped cache, assets/cache.

Examples:
  python -m explorer precompute                        # every built-in model and the paper figures into assets/cache
  python -m explorer precompute --models digits/full --out /tmp/cache

Entries are keyed by the model's weights hash, the code version, the dtype and every parameter, so entries made
with other weights or code are never hit; ``--prune`` removes the folder's entries that no default view needs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def add_arguments(p) -> None:
    from explorer import cache

    p.add_argument("--models", nargs="+", default=None, help="model specs (default: every built-in)")
    p.add_argument("--out", type=Path, default=cache.ASSETS_CACHE, help="cache folder (default: assets/cache)")
    p.add_argument("--preset", default="default", choices=["default", "test"], help="view sizes (default: default)")
    p.add_argument("--no-embedding", action="store_true", help="skip the Embedding page's default view")
    p.add_argument("--figures", action=argparse.BooleanOptionalAction, default=None,
                   help="also the Paper figures page's figures (default: only when --models is not given)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--no-guidance", action="store_true", help="skip the Guidance page's default views (by default "
                   "they are computed for toy2d/ring and digits/full only: a reward per model, minutes for the digits)")
    g.add_argument("--guidance", action="store_true", help="the Guidance page's default view of every diffusion "
                   "model given, not only toy2d/ring and digits/full")
    p.add_argument("--prune", action="store_true", help="afterwards, delete the folder's entries no view used")
    from explorer.distributed.cli import add_ray_arguments

    add_ray_arguments(p)


def run(args) -> int:
    from explorer import cache
    from explorer.distributed.cli import session
    from explorer.jobs.console import ConsoleProgress
    from explorer.models import BUILTIN_MODELS, load_model
    from explorer.views.precompute import precompute_default_views, precompute_figures

    out = Path(args.out)
    os.environ["EXPLORER_CACHE_DIR"] = str(out)  # writes go there, and only there
    start = time.perf_counter()
    figures = args.models is None if args.figures is None else args.figures
    models = [load_model(spec) for spec in args.models or list(BUILTIN_MODELS)]
    with session(args):  # --ray: descriptors and densities of every view sharded over Ray workers
        for model in models:
            bars = _Bars(ConsoleProgress)
            precompute_default_views(model, preset=args.preset, embedding=not args.no_embedding,
                                     log=lambda m: print(m, file=sys.stderr), progress=bars.new,
                                     guidance=False if args.no_guidance else (True if args.guidance else None))
            bars.close()
        if figures:
            precompute_figures(preset=args.preset, log=lambda m: print(m, file=sys.stderr))
    if args.prune:
        print(f"pruned {cache.prune(keep=cache.touched())} files no default view uses", file=sys.stderr)
    s = cache.stats()
    print(f"{s['entries']} entries, {s['bytes'] / 1e6:.2f} MB in {out} ({time.perf_counter() - start:.0f} s)")
    return 0


class _Bars:
    """One progress bar at a time: ``new(what)`` closes the previous one and returns the new one's callback."""

    def __init__(self, factory):
        self.factory, self.bar = factory, None

    def new(self, what: str):
        self.close()
        self.bar = self.factory(what)
        return _fraction(self.bar)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fraction(bar):
    """The views' callbacks report (fraction), (fraction, message) or (done, total): all onto one bar."""
    def cb(*args):
        if len(args) == 2 and not isinstance(args[1], str):
            bar(args[0] / max(args[1], 1))
        else:
            bar(*args)

    return cb

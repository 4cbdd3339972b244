"""Command line: ``python -m explorer SUBCOMMAND ...``; each subcommand lives in explorer/commands/."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module with ``add_arguments(parser)``, ``run(args) -> int`` and a docstring, one-line help)
COMMANDS = {
    "train": ("explorer.commands.train", "train a built-in model (or one on your CSV) reproducibly"),
    "descriptors": ("explorer.commands.descriptors", "ψ / ν / ν_eff / δ maps over a latent plane"),
    "geodesics": ("explorer.commands.geodesics", "generative geodesics, distances and affinities"),
    "convergence": ("explorer.commands.convergence", "graph-distance convergence study (paper 2, Fig. 4)"),
    "cluster": ("explorer.commands.cluster", "spectral clustering with geodesic vs baseline affinities"),
    "memorization": ("explorer.commands.memorization", "memorized vs novel samples and each descriptor's AUROC"),
    "precompute": ("explorer.commands.precompute", "fill a cache folder (default: assets/cache) with default views"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (so one subcommand's imports never slow another)."""
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, (module_name, summary) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=summary)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=summary, description=(module.__doc__ or summary).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

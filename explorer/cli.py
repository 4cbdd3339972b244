"""Command line: ``python -m explorer SUBCOMMAND ...``; each subcommand lives in explorer/commands/.

Errors: an expected mistake (``explorer.errors.UserError`` or any ``ValueError``, a missing or unreadable
file, not enough memory) prints one ``error: ...`` line and exits with status 2; a bad command line prints
argparse's usage and exits with 2; Ctrl-C exits with 130. Anything else is a bug: it prints one
``error: internal error ...`` line and exits with 1, and with ``EXPLORER_DEBUG=1`` it raises, with its traceback.
Warnings are printed as one ``warning: ...`` line each.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

# name -> (module with ``add_arguments(parser)``, ``run(args) -> int`` and a docstring, one-line help)
COMMANDS = {
    "train": ("explorer.commands.train", "train a built-in model (or one on your CSV) reproducibly"),
    "descriptors": ("explorer.commands.descriptors", "ψ / ν / ν_eff / δ maps over a latent plane"),
    "geodesics": ("explorer.commands.geodesics", "generative geodesics, distances and affinities"),
    "convergence": ("explorer.commands.convergence", "graph-distance convergence study (paper 2, Fig. 4)"),
    "cluster": ("explorer.commands.cluster", "spectral clustering with geodesic vs baseline affinities"),
    "embedding": ("explorer.commands.embedding", "UMAP embeddings and clusterings over a λ grid (the Embedding page)"),
    "memorization": ("explorer.commands.memorization", "memorized vs novel samples and each descriptor's AUROC"),
    "guidance": ("explorer.commands.guidance", "reward guidance toward larger or smaller ψ, and what it changes"),
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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe_os_error(err: OSError) -> str:
    if err.strerror and err.filename is not None:
        return f"{err.strerror}: {err.filename}"
    return str(err) or type(err).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {_one_line(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns its exit status (argparse's own exit, e.g. ``--help``, raises SystemExit)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return int(args._run(args) or 0)
        except FileNotFoundError as err:  # the library's messages name the file and the fix
            message = str(err) if not err.strerror else _describe_os_error(err)
        except ValueError as err:  # UserError and the library's one-sentence ValueErrors
            message = str(err)
        except OSError as err:
            message = _describe_os_error(err)
        except MemoryError as err:
            message = f"not enough memory ({err or 'allocation failed'}); use smaller sizes"
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except Exception as err:
            if os.environ.get("EXPLORER_DEBUG", "") not in ("", "0"):
                raise
            print(f"error: internal error ({type(err).__name__}: {_one_line(err)}); this is a bug: run again with "
                  "EXPLORER_DEBUG=1 for the traceback and report it", file=sys.stderr)
            return 1
    print(f"error: {_one_line(message)}", file=sys.stderr)
    return 2

"""The `gir` command: one subcommand per pipeline step (what dvc.yaml calls) plus the user verbs.

Each subcommand parses paths and params, then calls the step function in its module; nothing
here computes anything. Heavy libraries are imported inside commands so `gir --help` is fast.
Expected failures (GirError) print one line and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback

# Importing a verb module registers its verbs (in this order in `gir --help`).
from gir.cli import batch, corpus, kubeflow, steps, sweep, use  # noqa: F401
from gir.cli.common import COMMANDS, add_global_flags, setup_logging

_ORDER = ("steps", "use", "batch", "kubeflow", "corpus", "sweep")


def _in_help_order(commands: dict) -> list:
    """Verbs grouped by module (pipeline steps first), in each module's order of definition."""
    def group(item):
        module = item[1][1].__module__.rpartition(".")[2]
        return _ORDER.index(module) if module in _ORDER else len(_ORDER)
    return sorted(commands.items(), key=group)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gir", description="GIR, the Generative Image Rectifier: detect, classify and "
        "remove blur; the pipeline steps that dvc.yaml and Kubeflow run.")
    from gir import __version__

    parser.add_argument("--version", action="version", version=f"gir {__version__}")
    add_global_flags(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_args, run, help_text) in _in_help_order(COMMANDS):
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        add_global_flags(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from gir.errors import GirError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose)
    try:
        return args.run(args) or 0
    except GirError as exc:
        if args.traceback:
            traceback.print_exc()
        print(f"gir {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"gir {args.command}: interrupted", file=sys.stderr)
        return 130


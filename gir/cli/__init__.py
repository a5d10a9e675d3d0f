"""The `gir` command: one subcommand per pipeline step (what dvc.yaml calls) plus the user verbs.

Each subcommand parses paths and params, then calls the step function in its module; nothing
here computes anything. Heavy libraries are imported inside commands so `gir --help` is fast.
Expected failures (GirError) print one line and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import sys

from gir.cli.common import COMMANDS
# Importing a verb module registers its verbs (in this order in `gir --help`).
from gir.cli import steps, use, batch, kubeflow, corpus, sweep  # noqa: F401,E402

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gir", description="GIR, the Generative Image Rectifier: detect, classify and "
        "remove blur; the pipeline steps that dvc.yaml and Kubeflow run.")
    from gir import __version__

    parser.add_argument("--version", action="version", version=f"gir {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_args, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from gir.errors import GirError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except GirError as exc:
        print(f"gir {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"gir {args.command}: interrupted", file=sys.stderr)
        return 130


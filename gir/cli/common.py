"""What every `gir` verb module shares: the verb registry, default paths, params flags.

One spelling across verbs: inputs are positional (files, folders, s3:// URLs and prefixes) or
``--source``, the destination is ``-o/--out``, the model ``--model``, the config ``--params``
plus ``--set``. An old spelling stays for one release as a hidden alias (:func:`renamed`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

# Default locations; dvc.yaml names the same paths explicitly.
RAW, VALIDATED, PROCESSED, SPLIT = "data/raw", "data/validated", "data/processed", "data/split"
MODELS, DETECTOR, CHECKPOINTS = "models/deblur", "models/detector", "checkpoints"
QUALITY, TRAIN_REPORT = "reports/quality", "reports/train"
METRICS, PER_IMAGE, REGISTRATION = "reports/metrics.json", "reports/eval_per_image.csv", \
    "reports/registration.json"
DETECTOR_METRICS = "reports/detector.json"

COMMANDS: dict[str, tuple[Callable, Callable, str]] = {}


def command(name: str, help: str):
    """Register `gir NAME`: ``@command(name, help)(add_args)`` decorates the verb's runner;
    add_args(parser) adds its arguments, the runner takes the parsed args and returns the exit
    code. Importing the verb's module (listed in gir/cli/__init__.py) registers it."""
    def deco(add_args):
        def wrap(run):
            COMMANDS[name] = (add_args, run, help)
            return run
        return wrap
    return deco


def params_from_args(args):
    from gir.config import load_params

    return load_params(args.params, args.set)


def add_params(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param, e.g. --set train.steps=100 (repeatable)")


def add_model_params(p: argparse.ArgumentParser) -> None:
    """--params/--set for verbs that only look models up (deblur, rectify, detect, export):
    the tracking store (mlflow.*) and the registered names (register.model_name,
    detect.model_name) come from them. Without --params, params.yaml here if there is one."""
    add_params(p)


def use_params(args) -> None:
    """Point the model resolver at the verb's --params/--set (an explicit file must load)."""
    from gir.tracking.resolve import use_params as resolver_params

    given = args.params != "params.yaml" or bool(args.set)
    resolver_params(args.params if given else None, args.set, strict=given)


def renamed(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kw) -> None:
    """Keep `old` for one release as a hidden alias of the flag `new` (parsed into args.<dest>):
    absent from --help, silent, so scripts written against it keep their output."""
    p.add_argument(old, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kw)


def add_global_flags(p: argparse.ArgumentParser, top: bool = False) -> None:
    """--verbose and --traceback, accepted before or after the verb."""
    default = False if top else argparse.SUPPRESS
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="say more of what gir is doing (the 'gir' logger at DEBUG, not INFO)")
    p.add_argument("--traceback", action="store_true", default=default,
                   help="on an error, also print the full traceback and its causes")


def setup_logging(verbose: bool) -> None:
    """Library code logs through logging.getLogger("gir"); the CLI shows it on stderr: its
    progress lines (INFO) always, the details (DEBUG, e.g. a failed photo's traceback) with -v."""
    import logging

    class Stderr(logging.StreamHandler):   # today's sys.stderr, even if it was replaced since
        def emit(self, record):
            self.stream = sys.stderr
            super().emit(record)

    log = logging.getLogger("gir")
    if not any(type(h).__name__ == "Stderr" for h in log.handlers):
        handler = Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def add_split_data(p: argparse.ArgumentParser) -> None:
    """The processed pairs and the split manifest, which train, evaluate, register and bench read."""
    p.add_argument("--data", default=PROCESSED, help="processed dataset directory")
    p.add_argument("--split", default=f"{SPLIT}/manifest.csv", help="split manifest")


def add_ensemble(p, what: str = "deblur each photo", default: int | None = 1) -> None:
    """--ensemble N: the self-ensemble (gir.rectifier.ensemble) for every verb that deblurs."""
    p.add_argument("--ensemble", type=int, default=default, choices=[1, 2, 4, 8], metavar="N",
                   help=f"{what} as the mean of N mirrored/flipped/transposed views (1, 2, 4 "
                        f"or 8; default 1): N times the time, ~0.17 dB more with 8")


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def engine_tag(given: str | None) -> str:
    import os

    return given or os.environ.get("GIR_ENGINE", "cli")

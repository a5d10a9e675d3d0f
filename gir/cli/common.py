"""What every `gir` verb module shares: the verb registry, default paths, params flags."""

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
    """Register `gir NAME`: the decorated function adds arguments and returns the runner."""
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

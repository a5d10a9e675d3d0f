"""The `gir` command: one subcommand per pipeline step (what dvc.yaml calls) plus the user verbs.

Each subcommand parses paths and params, then calls the step function in its module; nothing
here computes anything. Heavy libraries are imported inside commands so `gir --help` is fast.
Expected failures (GirError) print one line and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

# Default locations; dvc.yaml names the same paths explicitly.
RAW, VALIDATED, PROCESSED, SPLIT = "data/raw", "data/validated", "data/processed", "data/split"
MODELS, CHECKPOINTS = "models", "checkpoints"
QUALITY, TRAIN_REPORT = "reports/quality", "reports/train"
METRICS, PER_IMAGE, REGISTRATION = "reports/metrics.json", "reports/eval_per_image.csv", \
    "reports/registration.json"

COMMANDS: dict[str, tuple[Callable, Callable, str]] = {}


def command(name: str, help: str):
    """Register `gir NAME`: the decorated function adds arguments and returns the runner."""
    def deco(add_args):
        def wrap(run):
            COMMANDS[name] = (add_args, run, help)
            return run
        return wrap
    return deco


def _params(args):
    from gir.config import load_params

    return load_params(args.params, args.set)


def _add_params(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param, e.g. --set train.steps=100 (repeatable)")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- pipeline steps

def _ingest_args(p):
    _add_params(p)
    p.add_argument("--out", default=RAW)


@command("ingest", "run the configured data source and write the manifest")(_ingest_args)
def cmd_ingest(args) -> int:
    from gir.ingest import ingest

    path = ingest(_params(args), args.out)
    _say(f"ingest: wrote {path}")
    return 0


def _validate_args(p):
    _add_params(p)
    p.add_argument("--raw", default=RAW)
    p.add_argument("--out", default=VALIDATED)
    p.add_argument("--report", default=QUALITY)


@command("validate", "great-expectations quality gate; quarantines bad pairs")(_validate_args)
def cmd_validate(args) -> int:
    from gir.validate import validate

    r = validate(_params(args).validate, args.raw, args.out, args.report)
    _say(f"validate: {r.passed} pairs passed, {r.quarantined} quarantined "
         f"({r.fraction:.1%}); report {args.report}/quality.html")
    return 0


def _preprocess_args(p):
    _add_params(p)
    p.add_argument("--raw", default=RAW)
    p.add_argument("--manifest", default=f"{VALIDATED}/manifest.csv")
    p.add_argument("--out", default=PROCESSED)


@command("preprocess", "resize and normalise the validated pairs")(_preprocess_args)
def cmd_preprocess(args) -> int:
    from gir.preprocess import preprocess

    path = preprocess(_params(args).preprocess, args.raw, args.manifest, args.out)
    _say(f"preprocess: wrote {path}")
    return 0


def _split_args(p):
    _add_params(p)
    p.add_argument("--data", default=PROCESSED)
    p.add_argument("--out", default=SPLIT)


@command("split", "assign train/val/test by scene")(_split_args)
def cmd_split(args) -> int:
    from gir.manifest import read_manifest
    from gir.split import split

    params = _params(args)
    path = split(params.split, params.seed, args.data, args.out)
    counts = read_manifest(path)["split"].value_counts().to_dict()
    _say(f"split: {counts} -> {path}")
    return 0


def _train_args(p):
    _add_params(p)
    p.add_argument("--data", default=PROCESSED)
    p.add_argument("--split", default=f"{SPLIT}/manifest.csv")
    p.add_argument("--out", default=MODELS)
    p.add_argument("--report", default=TRAIN_REPORT)
    p.add_argument("--checkpoints", default=CHECKPOINTS)
    p.add_argument("--engine", default=None, help="tag for MLflow (dvc, kfp-local, kfp, cli)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")


@command("train", "train the conditional GAN")(_train_args)
def cmd_train(args) -> int:
    from gir.train import train

    r = train(_params(args), args.data, args.split, args.out, args.report, args.checkpoints,
              engine=_engine(args.engine), resume=args.resume)
    _say(f"train: {r.steps} steps, val PSNR {r.val_psnr:.2f} dB, MLflow run {r.run_id}")
    return 0


def _engine(given: str | None) -> str:
    import os

    return given or os.environ.get("GIR_ENGINE", "cli")


def _evaluate_args(p):
    _add_params(p)
    p.add_argument("--data", default=PROCESSED)
    p.add_argument("--split", default=f"{SPLIT}/manifest.csv")
    p.add_argument("--model", default=MODELS)
    p.add_argument("--out", default=METRICS)
    p.add_argument("--per-image", default=PER_IMAGE)


@command("evaluate", "PSNR/SSIM on the held-out test split")(_evaluate_args)
def cmd_evaluate(args) -> int:
    from gir.evaluate import evaluate

    params = _params(args)
    m = evaluate(params.evaluate, params.mlflow, args.data, args.split, args.model, args.out,
                 args.per_image)
    methods = m["methods"]
    _say("evaluate: " + ", ".join(f"{k} {v['psnr']:.2f} dB / {v['ssim']:.3f}"
                                  for k, v in methods.items()) + f" on {m['pairs']} pairs")
    return 0


def _register_args(p):
    _add_params(p)
    p.add_argument("--data", default=PROCESSED)
    p.add_argument("--split", default=f"{SPLIT}/manifest.csv")
    p.add_argument("--model", default=MODELS)
    p.add_argument("--metrics", default=METRICS)
    p.add_argument("--out", default=REGISTRATION)


@command("register", "register the model in MLflow; promote it if it beats the champion")(
    _register_args)
def cmd_register(args) -> int:
    from gir.registry import register

    d = register(_params(args), args.data, args.split, args.model, args.metrics, args.out)
    _say(f"register: {d['model_name']} v{d['version']} -> @{d['alias']} ({d['reason']})")
    return 0


# ----------------------------------------------------------------------------- user verbs

def _deblur_args(p):
    p.add_argument("inputs", nargs="+", help="image files or s3:// URLs")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--model", default=None,
                   help="MLflow URI or model directory (default: models:/gir-deblur@champion)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


@command("deblur", "deblur photos with a registered model")(_deblur_args)
def cmd_deblur(args) -> int:
    from gir.deblur import deblur_files
    from gir.inference import load_deblurrer

    deblurrer = load_deblurrer(args.model, args.device)
    result = deblur_files(args.inputs, args.out, deblurrer)
    for src, reason in result.failed:
        _say(f"gir deblur: skipped {src}: {reason.removeprefix(f'{src}: ')}")
    _say(f"deblur: wrote {len(result.written)} of {len(args.inputs)} images to {args.out}")
    return 1 if result.failed else 0


# ----------------------------------------------------------------------------- entry point

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


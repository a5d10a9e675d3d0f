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


def _params(args):
    from gir.config import load_params

    return load_params(args.params, args.set)


def _add_params(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param, e.g. --set train.steps=100 (repeatable)")


def _add_split_data(p: argparse.ArgumentParser) -> None:
    """The processed pairs and the split manifest, which train, evaluate, register and bench read."""
    p.add_argument("--data", default=PROCESSED, help="processed dataset directory")
    p.add_argument("--split", default=f"{SPLIT}/manifest.csv", help="split manifest")


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

    params = _params(args)
    r = validate(params.validate, args.raw, args.out, args.report, params.mlflow)
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
    _add_split_data(p)
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
    _add_split_data(p)
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
    _add_split_data(p)
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

def _promote_args(p):
    _add_params(p)
    p.add_argument("version", type=int, help="registered model version")
    p.add_argument("--alias", default="champion", help="alias to move (default: champion)")


@command("promote", "point a registry alias (champion) at a model version by hand")(_promote_args)
def cmd_promote(args) -> int:
    from gir.registry import promote
    from gir.tracking import setup

    params = _params(args)
    setup(params.mlflow, experiment=False)
    name = params.register.model_name
    before = promote(name, args.version, args.alias)
    _say(f"promote: {name}@{args.alias} -> v{args.version}"
         + (f" (was v{before})" if before else ""))
    return 0


def _deblur_args(p):
    p.add_argument("inputs", nargs="+", help="image files or s3:// URLs")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--model", default=None,
                   help="MLflow URI or model directory (default: models:/gir-deblur@champion)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def _deblur_cmd_args(p):
    _deblur_args(p)
    p.add_argument("--runtime", default="torch", choices=["torch", "onnx"],
                   help="onnx: run an exported .onnx model (--model) with onnxruntime on CPU")


@command("deblur", "deblur photos with a registered model")(_deblur_cmd_args)
def cmd_deblur(args) -> int:
    from gir.deblur import deblur_files
    from gir.inference import load_deblurrer

    deblurrer = load_deblurrer(args.model, args.device, runtime=args.runtime)
    result = deblur_files(args.inputs, args.out, deblurrer)
    for src, reason in result.failed:
        _say(f"gir deblur: skipped {src}: {reason.removeprefix(f'{src}: ')}")
    _say(f"deblur: wrote {len(result.written)} of {len(args.inputs)} images to {args.out}")
    return 1 if result.failed else 0


def _export_args(p):
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="where to write the model")
    p.add_argument("--model", default=None,
                   help="MLflow URI or model directory (default: models:/gir-deblur@champion)")


@command("export", "export a trained generator to ONNX (dynamic height/width)")(_export_args)
def cmd_export(args) -> int:
    from gir.inference import DEFAULT_MODEL_URI
    from gir.onnx_runtime import export_onnx

    path = export_onnx(args.model or DEFAULT_MODEL_URI, args.onnx)
    _say(f"export: wrote {path} (run it with gir deblur --runtime onnx --model {path})")
    return 0


def _bench_args(p):
    _add_params(p)
    p.add_argument("--generators", nargs="*", default=None,
                   help="registered names (default: all); args come from params or the defaults")
    p.add_argument("--model", action="append", default=[], metavar="NAME=DIR_OR_URI",
                   help="a trained model to score on the test split (repeatable)")
    _add_split_data(p)
    p.add_argument("--size", default="1280x720", help="WxH for GMACs and latency")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="where to time inference and training (CPU is always timed)")
    p.add_argument("--references", nargs="*", default=None,
                   help="classical references to score (default: all of gir.evaluate)")
    p.add_argument("--out", default="reports/bench", help="directory for bench.md/bench.json")
    p.add_argument("--train-crop", type=int, default=256, help="crop side for training img/s")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")


@command("bench", "params, GMACs, speed and test PSNR/SSIM of every generator + references")(
    _bench_args)
def cmd_bench(args) -> int:
    from gir.bench import bench

    result = bench(_params(args), generators=args.generators, models=args.model,
                   data_dir=args.data, split_manifest=args.split, size=args.size,
                   device=args.device, references=args.references, out_dir=args.out,
                   log_mlflow=not args.no_mlflow, train_crop=args.train_crop)
    print(result["markdown"])
    _say(f"bench: wrote {args.out}/bench.md and bench.json")
    return 0


def _detect_args(p):
    p.add_argument("image", help="an image file or s3:// URL")
    p.add_argument("--map", default=None, metavar="OUT.png",
                   help="write the blur map overlay (red blurred, green sharp, grey flat)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--detector", default=None, metavar="DETECTOR.json",
                   help="a fitted detector (default: $GIR_DETECTOR, models/detector/, "
                        "models:/gir-detector@champion, else the built-in fit)")


@command("detect", "blur map, blurred yes/no, and motion/defocus/gaussian blur type")(
    _detect_args)
def cmd_detect(args) -> int:
    import json

    from gir.detect import detect, get_detector, overlay
    from gir.imageio import read_image, write_png

    detector = get_detector(args.detector)
    rgb, _ = read_image(args.image)
    det = detect(rgb, detector)
    if args.map:
        write_png(args.map, overlay(rgb, det))
    if args.json:
        print(json.dumps({"image": args.image, **det.report()}, indent=2))
    else:
        kind = f", {det.blur_type} blur (confidence {det.confidence:.2f})" if det.blurred else ""
        print(f"{args.image}: {'blurred' if det.blurred else 'not blurred'}{kind}; "
              f"{det.blurred_fraction:.0%} of textured tiles blurred, "
              f"{det.flat_fraction:.0%} of tiles flat")
    return 0


def _detect_eval_args(p):
    p.add_argument("--out", default="reports/detect_eval.json", help="where to write the numbers")
    p.add_argument("--per-image", type=int, default=12, help="composites per held-out photo")


@command("detect-eval", "score the blur detector on held-out synthetic images")(
    _detect_eval_args)
def cmd_detect_eval(args) -> int:
    import json

    from gir.detect_fit import evaluate_detector
    from gir.imageio import write_text_atomic

    result = evaluate_detector(per_image=args.per_image)
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    _say(f"detect-eval: blur-map F {result['blur_map']['f_measure']:.3f}, flat called blurred "
         f"{result['blur_map']['flat_false_alarm_rate']:.1%}, blur-type accuracy "
         f"{result['blur_type']['accuracy']:.1%} -> {args.out}")
    return 0


def _detect_train_args(p):
    _add_params(p)
    p.add_argument("--out", default=DETECTOR, help="directory for detector.json")
    p.add_argument("--metrics", default=DETECTOR_METRICS, help="held-out numbers (JSON)")
    p.add_argument("--engine", default=None, help="tag for MLflow (dvc, kfp-local, kfp, cli)")


@command("detect-train", "fit the blur detector, score it, register it as gir-detector")(
    _detect_train_args)
def cmd_detect_train(args) -> int:
    import json
    from pathlib import Path

    from gir.detect_train import train_detector

    d = train_detector(_params(args), args.out, args.metrics, engine=_engine(args.engine))
    blur_map = json.loads(Path(args.metrics).read_text())["blur_map"]
    _say(f"detect-train: blur-map F {blur_map['f_measure']:.3f} -> {args.out}; "
         f"{d['model_name']} v{d['version']} -> @{d['alias']} ({d['reason']})")
    return 0


def _rectify_args(p):
    _deblur_args(p)


@command("rectify", "detect, classify, and deblur only the blurred photos; json reports")(
    _rectify_args)
def cmd_rectify(args) -> int:
    from gir.inference import load_deblurrer
    from gir.rectify import rectify_files

    summary = rectify_files(args.inputs, args.out,
                            lambda: load_deblurrer(args.model, args.device))
    for item in summary["images"]:
        _say(f"rectify: {item['input']}: {item['action']}")
    for item in summary["failed"]:
        _say(f"gir rectify: skipped {item['input']}: "
             f"{item['reason'].removeprefix(item['input'] + ': ')}")
    _say(f"rectify: {summary['deblurred']} deblurred, {summary['untouched']} untouched, "
         f"{len(summary['failed'])} failed; reports in {args.out}")
    return 1 if summary["failed"] else 0


def _serve_args(p):
    p.add_argument("--model", default=None,
                   help="MLflow URI or model directory (default: models:/gir-deblur@champion)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--max-mb", type=float, default=20, help="upload size limit (default 20 MB)")
    p.add_argument("--max-megapixels", type=float, default=16,
                   help="pixel-count limit per image (default 16)")


@command("serve", "the web page: upload a photo, see its blur map, get it rectified")(
    _serve_args)
def cmd_serve(args) -> int:
    import uvicorn

    from gir.webapp import Limits, create_app

    limits = Limits(int(args.max_mb * 1e6), int(args.max_megapixels * 1e6))
    _say(f"serve: http://{args.host}:{args.port}/")
    uvicorn.run(create_app(args.model, args.device, limits), host=args.host, port=args.port,
                log_level="warning")
    return 0


# ----------------------------------------------------------------------------- Kubeflow

def _pipeline_args(p):
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser("compile", help="write the KFP pipeline spec (YAML)")
    c.add_argument("-o", "--out", default="gir-pipeline.yaml", help="output YAML file")
    r = actions.add_parser("run", help="run the pipeline here with KFP's local runner")
    r.add_argument("--local", action="store_true", required=True,
                   help="run with kfp.local's SubprocessRunner (to use a cluster: submit)")
    r.add_argument("--root", default="pipeline_root", help="where artifacts go")
    s = actions.add_parser("submit", help="submit a run to a Kubeflow Pipelines endpoint")
    s.add_argument("--host", required=True, help="KFP API URL, e.g. http://localhost:8080")
    s.add_argument("--experiment", default="gir", help="KFP experiment (default: gir)")
    s.add_argument("--run-name", default=None)
    for a in (c, r, s):
        _add_params(a)
    for a in (c, s):
        a.add_argument("--image", default=None,
                       help="component image (default: $GIR_IMAGE or gir:<version>)")


@command("pipeline", "Kubeflow: compile the pipeline, run it locally, or submit it")(
    _pipeline_args)
def cmd_pipeline(args) -> int:
    import pipelines

    defaults = pipelines.param_defaults(args.params)
    values = pipelines.param_defaults(args.params, args.set)
    if args.action == "compile":  # --set changes the compiled defaults
        path = pipelines.compile_pipeline(args.out, values, args.image)
        _say(f"pipeline: wrote {path}")
    elif args.action == "run":
        run_dir = pipelines.run_local(defaults, values, args.root)
        _say(f"pipeline: artifacts in {run_dir}")
        decision = run_dir / "register" / "registration"
        if decision.exists():
            print(decision.read_text())
    else:
        url = pipelines.submit(args.host, defaults, values, args.experiment, args.run_name,
                               args.image)
        _say("pipeline: submitted; watch it at")
        print(url)
    return 0


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


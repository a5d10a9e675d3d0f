"""`gir <step>`: the pipeline steps dvc.yaml stages run, one verb per gir.steps module."""

from __future__ import annotations

from gir.cli.common import (
    CHECKPOINTS,
    DETECTOR,
    DETECTOR_METRICS,
    METRICS,
    MODELS,
    PER_IMAGE,
    PROCESSED,
    QUALITY,
    RAW,
    REGISTRATION,
    SPLIT,
    TRAIN_REPORT,
    VALIDATED,
    add_params,
    add_split_data,
    command,
    engine_tag,
    params_from_args,
    say,
)


def _listing_args(p):
    add_params(p)
    p.add_argument("--out", default="data/listing.json")


@command("listing", "list the data source (keys with etags/mtimes) so DVC notices new photos")(
    _listing_args)
def cmd_listing(args) -> int:
    from gir.steps.listing import listing

    found = listing(params_from_args(args), args.out)
    say(f"listing: {len(found['files'])} files in {found['location']} "
        f"(digest {found['digest']}) -> {args.out}")
    return 0


def _ingest_args(p):
    add_params(p)
    p.add_argument("--out", default=RAW)


@command("ingest", "run the configured data source and write the manifest")(_ingest_args)
def cmd_ingest(args) -> int:
    from gir.steps.ingest import ingest

    path = ingest(params_from_args(args), args.out)
    say(f"ingest: wrote {path}")
    return 0


def _validate_args(p):
    add_params(p)
    p.add_argument("--raw", default=RAW)
    p.add_argument("--out", default=VALIDATED)
    p.add_argument("--report", default=QUALITY)


@command("validate", "great-expectations quality gate; quarantines bad pairs")(_validate_args)
def cmd_validate(args) -> int:
    from gir.steps.validate import validate

    params = params_from_args(args)
    r = validate(params.validate, args.raw, args.out, args.report, params.mlflow)
    say(f"validate: {r.passed} pairs passed, {r.quarantined} quarantined "
         f"({r.fraction:.1%}); report {args.report}/quality.html")
    return 0


def _preprocess_args(p):
    add_params(p)
    p.add_argument("--raw", default=RAW)
    p.add_argument("--manifest", default=f"{VALIDATED}/manifest.csv")
    p.add_argument("--out", default=PROCESSED)


@command("preprocess", "resize and normalise the validated pairs")(_preprocess_args)
def cmd_preprocess(args) -> int:
    from gir.steps.preprocess import preprocess

    path = preprocess(params_from_args(args).preprocess, args.raw, args.manifest, args.out)
    say(f"preprocess: wrote {path}")
    return 0


def _split_args(p):
    add_params(p)
    p.add_argument("--data", default=PROCESSED)
    p.add_argument("--out", default=SPLIT)


@command("split", "assign train/val/test by scene")(_split_args)
def cmd_split(args) -> int:
    from gir.data.manifest import read_manifest
    from gir.steps.split import split

    params = params_from_args(args)
    path = split(params.split, params.seed, args.data, args.out)
    counts = read_manifest(path)["split"].value_counts().to_dict()
    say(f"split: {counts} -> {path}")
    return 0


def _train_args(p):
    add_params(p)
    add_split_data(p)
    p.add_argument("--out", default=MODELS)
    p.add_argument("--report", default=TRAIN_REPORT)
    p.add_argument("--checkpoints", default=CHECKPOINTS)
    p.add_argument("--engine", default=None, help="tag for MLflow (dvc, kfp-local, kfp, cli)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--resume", dest="resume", action="store_const", const=True, default=None,
                     help="insist on resuming: a checkpoint of other params/data/code is an "
                     "error (default: resume a matching checkpoint, else start afresh)")
    how.add_argument("--fresh", dest="resume", action="store_const", const=False,
                     help="ignore any checkpoint and start from step 0")


@command("train", "train the conditional GAN")(_train_args)
def cmd_train(args) -> int:
    from gir.steps.train import train

    r = train(params_from_args(args), args.data, args.split, args.out, args.report, args.checkpoints,
              engine=engine_tag(args.engine), resume=args.resume)
    say(f"train: {r.steps} steps, val PSNR {r.val_psnr:.2f} dB, MLflow run {r.run_id}")
    return 0


def _evaluate_args(p):
    add_params(p)
    add_split_data(p)
    p.add_argument("--model", default=MODELS)
    p.add_argument("--out", default=METRICS)
    p.add_argument("--per-image", default=PER_IMAGE)


@command("evaluate", "PSNR/SSIM on the held-out test split")(_evaluate_args)
def cmd_evaluate(args) -> int:
    from gir.steps.evaluate import evaluate

    params = params_from_args(args)
    m = evaluate(params.evaluate, params.mlflow, args.data, args.split, args.model, args.out,
                 args.per_image)
    methods = m["methods"]
    say("evaluate: " + ", ".join(f"{k} {v['psnr']:.2f} dB / {v['ssim']:.3f}"
                                  for k, v in methods.items()) + f" on {m['pairs']} pairs")
    return 0


def _register_args(p):
    add_params(p)
    add_split_data(p)
    p.add_argument("--model", default=MODELS)
    p.add_argument("--metrics", default=METRICS)
    p.add_argument("--out", default=REGISTRATION)


@command("register", "register the model in MLflow; promote it if it beats the champion")(
    _register_args)
def cmd_register(args) -> int:
    from gir.steps.register import register

    d = register(params_from_args(args), args.data, args.split, args.model, args.metrics, args.out)
    say(f"register: {d['model_name']} v{d['version']} -> @{d['alias']} ({d['reason']})")
    return 0


def _detect_train_args(p):
    add_params(p)
    p.add_argument("--out", default=DETECTOR, help="directory for detector.json")
    p.add_argument("--metrics", default=DETECTOR_METRICS, help="held-out numbers (JSON)")
    p.add_argument("--engine", default=None, help="tag for MLflow (dvc, kfp-local, kfp, cli)")


@command("detect-train", "fit the blur detector, score it, register it as gir-detector")(
    _detect_train_args)
def cmd_detect_train(args) -> int:
    import json
    from pathlib import Path

    from gir.steps.detector import train_detector

    d = train_detector(params_from_args(args), args.out, args.metrics, engine=engine_tag(args.engine))
    blur_map = json.loads(Path(args.metrics).read_text())["blur_map"]
    say(f"detect-train: blur-map F {blur_map['f_measure']:.3f} -> {args.out}; "
         f"{d['model_name']} v{d['version']} -> @{d['alias']} ({d['reason']})")
    return 0

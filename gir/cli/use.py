"""The user verbs: promote, deblur, export, bench, detect, rectify, serve."""

from __future__ import annotations

from gir.cli.batch import add_batch_flags, add_bench_batch_flags
from gir.cli.common import (
    add_ensemble,
    add_model_params,
    add_params,
    add_split_data,
    command,
    params_from_args,
    renamed,
    say,
    use_params,
)


def _promote_args(p):
    add_params(p)
    p.add_argument("version", type=int, help="registered model version")
    p.add_argument("--alias", default="champion", help="alias to move (default: champion)")


@command("promote", "point a registry alias (champion) at a model version by hand")(_promote_args)
def cmd_promote(args) -> int:
    from gir.steps.register import promote
    from gir.tracking.runs import setup

    params = params_from_args(args)
    setup(params.mlflow, experiment=False)
    name = params.register.model_name
    before = promote(name, args.version, args.alias)
    say(f"promote: {name}@{args.alias} -> v{args.version}"
         + (f" (was v{before})" if before else ""))
    return 0


def _deblur_args(p):
    p.add_argument("inputs", nargs="+",
                   help="image files, folders, s3:// URLs or s3://bucket/prefix/ (all below it)")
    p.add_argument("-o", "--out", required=True,
                   help="output folder or s3:// prefix: each input mirrors its path as "
                        "OUT/<rel>.png (a file given by name: OUT/<name>.png, e.g. "
                        "photo.jpg.png), with a ledger and report in OUT/_gir/ so that a "
                        "re-run does only what is new")
    p.add_argument("--model", default=None,
                   help="MLflow URI or model directory (default: models:/gir-deblur@champion)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_model_params(p)
    add_ensemble(p)
    add_batch_flags(p)


def _deblur_cmd_args(p):
    _deblur_args(p)
    p.add_argument("--runtime", default="auto", choices=["auto", "torch", "onnx"],
                   help="auto: onnxruntime on CPU for the shipped model and cached champions "
                        "(the same weights as an ONNX graph), else PyTorch; torch: always "
                        "PyTorch; onnx: run an exported .onnx model (--model) with onnxruntime")


@command("deblur", "deblur photos with a registered model")(_deblur_cmd_args)
def cmd_deblur(args) -> int:
    from gir.cli.batch import run_ledgered

    use_params(args)
    return run_ledgered(args, "deblur")


def _export_args(p):
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="where to write the model")
    p.add_argument("--model", default=None,
                   help="MLflow URI or model directory (default: models:/gir-deblur@champion)")
    add_model_params(p)


@command("export", "export a trained generator to ONNX (dynamic height/width)")(_export_args)
def cmd_export(args) -> int:
    from gir.rectifier.onnx_runtime import export_onnx
    from gir.tracking.resolve import DEFAULT_MODEL_URI, model_source_dir

    use_params(args)
    model = args.model or DEFAULT_MODEL_URI
    model_dir, tmp = model_source_dir(model)
    try:
        path = export_onnx(model_dir, args.onnx, label=model)
    finally:
        if tmp:
            tmp.cleanup()
    say(f"export: wrote {path} (run it with gir deblur --runtime onnx --model {path})")
    return 0


def _bench_args(p):
    add_params(p)
    p.add_argument("--generators", nargs="*", default=None,
                   help="registered names (default: all); args come from params or the defaults")
    p.add_argument("--model", action="append", default=[], metavar="NAME=DIR_OR_URI",
                   help="a trained model to score on the test split (repeatable)")
    add_split_data(p)
    p.add_argument("--size", default="1280x720", help="WxH for GMACs and latency")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to time inference and training besides the CPU, which is always "
                        "timed (default auto: CUDA when there is one)")
    p.add_argument("--references", nargs="*", default=None,
                   help="classical references to score (default: all of gir.rectifier.scoring)")
    p.add_argument("--out", default="reports/bench", help="directory for bench.md/bench.json")
    p.add_argument("--train-crop", type=int, default=256, help="crop side for training img/s")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--heldout", action="store_true",
                   help="score --model(s) (default: the model chain; 'pretrained' = the shipped "
                        "model) and the references on held-out photos with fresh blurs of "
                        "every data.synth kind; writes heldout.md/json")
    p.add_argument("--per-kind", type=int, default=2, help="--heldout: fresh blurs per photo "
                                                          "and kind")
    p.add_argument("--photos", default=None, metavar="DIR",
                   help="--heldout: the benchmark photos (default: data/benchmark when built by "
                        "`gir corpus build --manifest benchmarks/manifest.csv --out "
                        "data/benchmark`, else the committed CI subset)")
    p.add_argument("--train-memory", action="store_true",
                   help="peak RSS and images/s of `gir train` on 30 and 300 synthetic 1280x720 "
                        "pairs (streaming data: flat within 30%%); writes train_memory.md/json")
    p.add_argument("--detect", action="store_true",
                   help="time `gir detect` on a 1280x720 photo: detect() in process and the "
                        "command end to end (target < 1 s); writes detect_speed.md/json")
    p.add_argument("--detect-photo", default=None, metavar="IMAGE",
                   help="--detect: the photo, resized to 1280x720 (default: a synthetic one)")
    add_ensemble(p, "also score every --model (with --batch: run the model)")
    add_bench_batch_flags(p)


@command("bench", "params, GMACs, speed and test PSNR/SSIM of every generator + references")(
    _bench_args)
def cmd_bench(args) -> int:
    if args.batch:
        from gir.cli.batch import run_bench_batch

        return run_bench_batch(args)
    if args.train_memory:
        from pathlib import Path

        from gir.benchmarks.trainmem import train_memory_bench

        params_file = args.params if Path(args.params).exists() else None  # else the defaults
        print(train_memory_bench(args.out, params_file=params_file)["markdown"])
        say(f"bench: wrote {args.out}/train_memory.md and train_memory.json")
        return 0
    if args.detect:
        from gir.benchmarks.detect_speed import detect_speed_bench

        print(detect_speed_bench(args.out, args.detect_photo)["markdown"])
        say(f"bench: wrote {args.out}/detect_speed.md and detect_speed.json")
        return 0
    if args.heldout:
        from gir.benchmarks.heldout import heldout_bench

        result = heldout_bench(params_from_args(args), args.model, args.out,
                               references=args.references, per_kind=args.per_kind,
                               device=args.device, ensemble=args.ensemble,
                               photo_dir=args.photos)
        print(result["markdown"])
        say(f"bench: wrote {args.out}/heldout.md and heldout.json")
        return 0
    from gir.benchmarks.models import bench

    result = bench(params_from_args(args), generators=args.generators, models=args.model,
                   data_dir=args.data, split_manifest=args.split, size=args.size,
                   device=args.device, references=args.references, out_dir=args.out,
                   log_mlflow=not args.no_mlflow, train_crop=args.train_crop,
                   ensemble=args.ensemble)
    print(result["markdown"])
    say(f"bench: wrote {args.out}/bench.md and bench.json")
    return 0


def _detect_args(p):
    p.add_argument("image", help="an image file or s3:// URL")
    p.add_argument("--map", default=None, metavar="OUT.png",
                   help="write the blur map overlay (red blurred, green sharp, grey flat)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--detector", default=None, metavar="DETECTOR.json",
                   help="a fitted detector (default: $GIR_DETECTOR, models/detector/, "
                        "models:/gir-detector@champion, else the built-in fit)")
    add_model_params(p)


@command("detect", "blur map, blurred yes/no, and motion/defocus/gaussian blur type")(
    _detect_args)
def cmd_detect(args) -> int:
    import json

    from gir.data.imageio import read_image, write_png
    from gir.rectifier.detect import detect, overlay
    from gir.rectifier.rectify import blur_type_note
    from gir.tracking.resolve import resolve_detector

    use_params(args)
    detector = resolve_detector(args.detector)
    rgb, _ = read_image(args.image)
    det = detect(rgb, detector)
    if args.map:
        write_png(args.map, overlay(rgb, det))
    if args.json:
        print(json.dumps({"image": args.image, **det.report(),
                          "blur_type_note": blur_type_note(det.blur_type)}, indent=2))
    else:
        note = blur_type_note(det.blur_type)
        kind = f", {det.blur_type} blur{f' ({note})' if note else ''}" if det.blurred else ""
        print(f"{args.image}: {'blurred' if det.blurred else 'not blurred'}{kind} "
              f"(confidence {det.confidence:.2f}); {det.reason}; "
              f"{det.flat_fraction:.0%} of tiles flat")
    return 0


def _detect_eval_args(p):
    add_params(p)
    p.add_argument("--out", default="reports/detect_eval",
                   help="folder for detect_eval.json and detect_eval.png (ROC, reliability, "
                        "type confusion)")
    p.add_argument("--detector", default=None, metavar="DETECTOR.json",
                   help="the detector to score (default: the one gir detect uses)")
    p.add_argument("--per-kind", type=int, default=None,
                   help="benchmark blurs per photo and row (default: detect.eval_per_kind)")
    p.add_argument("--photos", default=None, metavar="DIR",
                   help="benchmark photo folder (default: data/benchmark when built, else the "
                        "small subset in the package)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")


@command("detect-eval", "score the blur detector on the independent benchmark: recall at fixed "
                        "false-alarm rates, type confusion, calibration")(_detect_eval_args)
def cmd_detect_eval(args) -> int:
    from gir.rectifier.detect_eval import benchmark_items
    from gir.steps.detector import detect_eval
    from gir.tracking.resolve import resolve_detector

    use_params(args)
    params = params_from_args(args)
    items = benchmark_items(params.data.synth, args.per_kind or params.detect.eval_per_kind,
                            args.photos)
    s = detect_eval(params, resolve_detector(args.detector), items, args.out,
                    log_mlflow=not args.no_mlflow)
    op, far = s["operating_point"], params.detect.false_alarm_rate
    say(f"detect-eval: {s['photos']['blurred']} blurred + {s['photos']['sharp']} sharp photos; "
        f"recall {s['recall_at_far'].get(f'far_{far:g}', float('nan')):.1%} at "
        f"{far:.0%} false alarms; at the operating point recall {op['recall']:.1%}, false "
        f"alarms {op['false_alarm_rate']:.1%}; blur type {s['blur_type']['accuracy']:.1%} "
        f"(motion vs isotropic {s['blur_type']['motion_vs_isotropic']:.1%}); "
        f"ECE {s['calibration']['ece']:.3f}; per 1280x720 photo "
        f"{s['seconds_1280x720']['wall']:.2f} s wall, {s['seconds_1280x720']['cpu']:.2f} s CPU"
        f" -> {args.out}/detect_eval.json, detect_eval.png")
    return 0


def _rectify_args(p):
    _deblur_args(p)


@command("rectify", "detect, classify, and deblur only the blurred photos; json reports")(
    _rectify_args)
def cmd_rectify(args) -> int:
    from gir.cli.batch import run_ledgered

    use_params(args)
    return run_ledgered(args, "rectify")


def _serve_args(p):
    p.add_argument("--model", default=None,
                   help="MLflow URI or model directory (default: models:/gir-deblur@champion)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_params(p)
    p.add_argument("--max-mb", type=float, default=None,
                   help="upload size limit in MB (default: params serve.max_upload_mb)")
    p.add_argument("--max-megapixels", type=float, default=None,
                   help="pixel-count limit per image (default: params data.max_pixels)")
    p.add_argument("--events-source", default=None, metavar="s3://BUCKET/PREFIX/",
                   help="accept S3 event notifications (MinIO webhook, SNS, EventBridge) at "
                        "POST /api/events/s3 for objects under this prefix; the token comes "
                        "from $GIR_EVENT_TOKEN")
    p.add_argument("--events-out", default=None, metavar="DST",
                   help="where event-driven outputs go (folder or s3:// prefix)")
    renamed(p, "--events-dest", "--events-out", "events_out")
    p.add_argument("--events-task", default="rectify", choices=["rectify", "deblur"])
    add_ensemble(p, "deblur every photo (page, REST, events)")


@command("serve", "the web page: upload a photo, see its blur map, get it rectified")(
    _serve_args)
def cmd_serve(args) -> int:
    import uvicorn

    from gir.errors import GirError
    from gir.serving.events import EVENTS_PATH, EventsConfig
    from gir.serving.webapp import Limits, create_app

    limits = Limits.from_params(
        params_from_args(args), max_bytes=args.max_mb and int(args.max_mb * 1e6),
        max_pixels=args.max_megapixels and int(args.max_megapixels * 1e6))
    events = None
    use_params(args)
    if args.events_source or args.events_out:
        if not (args.events_source and args.events_out):
            raise GirError("--events-source and --events-out go together")
        from gir.cli.batch import batch_options

        events = EventsConfig(args.events_source, args.events_out, args.events_task,
                              options=batch_options(args))
    say(f"serve: http://{args.host}:{args.port}/")
    if events:
        say(f"serve: S3 events for {events.source} -> {events.dest} at "
            f"http://{args.host}:{args.port}{EVENTS_PATH}")
    uvicorn.run(create_app(args.model, args.device, limits, events=events,
                           ensemble=args.ensemble),
                host=args.host, port=args.port, log_level="warning")
    return 0


def _ship_args(p):
    p.add_argument("--model", required=True, help="a trained model directory (generator.*)")
    p.add_argument("--heldout", default=None, metavar="TABLE.md",
                   help="the `gir bench --heldout` table to put in the model card")
    p.add_argument("--history", default="", help="a line on the training phases, for the card")


@command("ship", "package a trained generator as the model shipped in gir (maintainers)")(
    _ship_args)
def cmd_ship(args) -> int:
    from gir.tracking.ship import ship_model

    out = ship_model(args.model, args.heldout, args.history)
    say(f"ship: {out} (weights, SHA256SUMS, MODEL_CARD.md); commit them with the code")
    return 0

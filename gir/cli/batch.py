"""`gir watch`, `gir rectify` and `gir deblur` (files, folders and s3:// prefixes alike).

All call gir.rectifier.batch with a model loader from the one resolver; the loader is called
once, and only when some input needs the model.
"""

from __future__ import annotations

from gir.cli.common import add_ensemble, add_model_params, command, say, use_params


def model_loader(args):
    """The (deblurrer, version) loader for --model/--device/--runtime/--ensemble, resolved on
    first use."""
    from gir.tracking.resolve import resolve_deblurrer_with_source

    return lambda: resolve_deblurrer_with_source(args.model, args.device,
                                                 runtime=getattr(args, "runtime", "auto"),
                                                 ensemble=getattr(args, "ensemble", 1))


def detector_for(task: str, args):
    from gir.tracking.resolve import resolve_detector

    return resolve_detector(getattr(args, "detector", None)) if task == "rectify" else None


def batch_options(args, **fields):
    """BatchOptions from params.yaml's batch section (--params/--set where the verb has them)
    and the flags; also sets the timeouts of every remote call in this process."""
    from gir.config import load_params
    from gir.data.storage import Timeouts, set_timeouts
    from gir.rectifier.batch import BatchOptions

    b = load_params(getattr(args, "params", None), getattr(args, "set", None) or []).batch
    set_timeouts(Timeouts(b.connect_timeout_s, b.read_timeout_s, b.attempts))
    deadline = getattr(args, "deadline", None)
    lease = getattr(args, "lease_seconds", None)
    return BatchOptions(reprocess=getattr(args, "reprocess", False), workers=b.workers,
                        min_side=b.min_side, deadline_s=b.deadline_s if deadline is None
                        else deadline, lease_s=b.lease_s if lease is None else lease,
                        temp_max_age_s=b.temp_max_age_s,
                        storage_errors_to_stop=b.storage_errors_to_stop, **fields)


def run_ledgered(args, task: str) -> int:
    """`gir rectify|deblur SRC... -o DST` over files, folders and prefixes, with the ledger in
    DST/_gir: one line per failed or not-processed input, one summary line, never a
    traceback."""
    import os
    import sys

    from gir.rectifier.batch import run_batch

    report = run_batch(args.inputs, args.out, task, model_loader(args), detector_for(task, args),
                       batch_options(args, progress=sys.stderr.isatty()))
    for item in report["failed"]:
        say(f"gir {task}: failed {item['input']}: {item['reason']}")
    for item in report["skipped"]:   # FIFOs, claimed by a replica, ...; not the unchanged
        if not item["reason"].startswith("unchanged"):
            say(f"gir {task}: skipped {item['input']}: {item['reason']}")
    if report["not_processed"]:
        say(f"gir {task}: not processed ({report['stopped']}): "
            f"{', '.join(report['not_processed'])}")
    if report.get("report_error"):
        say(f"gir {task}: report not written to {args.out}: {report['report_error']}"
            + (f"; written to {report['report']} instead" if report.get("report") else ""))
    c = report["counts"]
    actions = [w["action"].split(" ")[0] for w in report["written"]]
    kinds = f" ({', '.join(f'{actions.count(a)} {a}' for a in sorted(set(actions)))})" \
        if task == "rectify" and actions else ""
    say(f"{task}: {c['written']} written, {c['failed']} failed, {c['skipped']} skipped, "
        f"{c['not_processed']} not processed{kinds} -> {args.out}"
        + (f"; report {report['report']}" if report.get("report") else "")
        + (f"; model {report['model']}" if report["model"] else ""))
    code = 1 if report["failed"] or report["not_processed"] else 0
    if (report["stopped"] or "").startswith("deadline"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)   # calls stuck on a silent endpoint end by their timeouts; not waited
    return code


def add_batch_flags(p) -> None:
    p.add_argument("--reprocess", action="store_true",
                   help="also redo inputs whose ledger entry names another model version")
    p.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                   help="stop after this long and name the inputs not processed (default: "
                        "params batch.deadline_s, 0 = none)")
    p.add_argument("--lease-seconds", type=float, default=None, metavar="SECONDS",
                   help="how long a claim on a photo keeps other replicas (watchers, events, "
                        "other runs) off it; a dead one's photos are taken over after it "
                        "(default: params batch.lease_s)")


def _watch_args(p):
    p.add_argument("sources", nargs="+", metavar="SRC",
                   help="a folder or s3://bucket/prefix/ to watch (or several)")
    p.add_argument("-o", "--out", required=True, help="output folder or s3:// prefix")
    p.add_argument("--task", default="rectify", choices=["rectify", "deblur"],
                   help="rectify (default): deblur only the blurred photos, with json reports; "
                        "deblur: deblur every photo")
    p.add_argument("--interval", type=float, default=10.0,
                   help="seconds between polls when there is nothing to do (default 10)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="inputs per batch: a backlog is worked through in batches this big")
    p.add_argument("--model", default=None,
                   help="MLflow URI or model directory (default: models:/gir-deblur@champion)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--detector", default=None, metavar="DETECTOR.json",
                   help="a fitted detector (default: as `gir detect`)")
    add_ensemble(p)
    add_batch_flags(p)
    add_model_params(p)


@command("watch", "watch a folder or S3 prefix and rectify new photos as they arrive")(
    _watch_args)
def cmd_watch(args) -> int:
    import signal
    import threading

    from gir.errors import GirError
    from gir.rectifier.batch import watch

    use_params(args)
    if args.batch_size < 1 or args.interval < 0:
        raise GirError("--batch-size must be at least 1 and --interval not negative")
    stop = threading.Event()

    def on_signal(signum, frame):
        say(f"watch: {signal.Signals(signum).name}: finishing the current input, then stopping")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    say(f"watch: {', '.join(args.sources)} -> {args.out} ({args.task}, every "
        f"{args.interval:g} s, batches of {args.batch_size})")
    total = watch(args.sources, args.out, args.task, model_loader(args),
                  detector_for(args.task, args), interval=args.interval,
                  batch_size=args.batch_size, options=batch_options(args, stop=stop), log=say)
    say(f"watch: stopped; {total} written since start")
    return 0


def add_bench_batch_flags(p) -> None:
    g = p.add_argument_group("batch throughput (gir bench --batch SRC)")
    g.add_argument("--batch", default=None, metavar="SRC",
                   help="instead of the generator table: images/s of the batch (`gir rectify "
                        "SRC -o DST`) over every photo in this folder or s3:// prefix")
    g.add_argument("--batch-make", type=int, default=0, metavar="N",
                   help="first write N synthetic photos to SRC/bench/ (a third blurred)")
    g.add_argument("--batch-megapixels", type=float, default=1.0,
                   help="size of the --batch-make photos (default 1 MP)")
    g.add_argument("--batch-task", default="rectify", choices=["rectify", "deblur"])
    g.add_argument("--batch-out", default=None, metavar="DST",
                   help="write outputs under DST/bench-<time>/ (default: a temporary folder)")
    g.add_argument("--batch-model", default=None, metavar="DIR_OR_URI",
                   help="the model (default: the resolver chain, as `gir rectify`); 'fresh' = "
                        "an untrained params.yaml generator, which costs what a trained one does")
    g.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    g.add_argument("--endpoint-url", default=None,
                   help="S3-compatible endpoint (MinIO), e.g. http://minio:9000")


def run_bench_batch(args) -> int:
    """`gir bench --batch SRC`: fill SRC if asked, then time the batch over it."""
    from gir.benchmarks.batch import bench_batch, make_photos
    from gir.data.storage import use_endpoint
    from gir.errors import GirError

    use_endpoint(args.endpoint_url)
    if args.batch_make < 0 or args.batch_megapixels <= 0:
        raise GirError("--batch-make must be >= 0 and --batch-megapixels > 0")
    if args.batch_make:
        made = make_photos(args.batch, args.batch_make, args.batch_megapixels)
        say(f"bench: wrote {len(made)} photos of {args.batch_megapixels:g} MP under "
            f"{args.batch.rstrip('/')}/bench/")
    if args.batch_model == "fresh":
        model = _fresh_model(args)
    else:
        args.model, args.runtime = args.batch_model, "torch"
        model = model_loader(args)
    result = bench_batch(args.batch, model, detector_for(args.batch_task, args),
                         task=args.batch_task, dest=args.batch_out, out_dir=args.out,
                         threads=args.threads)
    print(result["markdown"])
    say(f"bench: {result['images']} images in {result['seconds']} s = "
        f"{result['images_per_second']} images/s; wrote {args.out}/batch.json and batch.md")
    return 0


def _fresh_model(args):
    """A loader of the params.yaml generator, untrained (seed 0)."""
    import json

    def load():
        import torch

        from gir.cli.common import params_from_args
        from gir.nn import build_generator
        from gir.rectifier.inference import Deblurrer, resolve_device

        m = params_from_args(args).model
        torch.manual_seed(0)
        say(f"gir: model: fresh {m.generator} {m.generator_args} (untrained)")
        return (Deblurrer(build_generator(m.generator, m.generator_args),
                          resolve_device(args.device), progress=False,
                          ensemble=args.ensemble),
                f"fresh {m.generator} {json.dumps(m.generator_args, sort_keys=True)}")
    return load

"""`gir pipeline`: compile a Kubeflow pipeline, run it with KFP's local runner, submit it, or
schedule it. --pipeline train (default) is the training pipeline; --pipeline rectify is the
gir-rectify batch over an S3 prefix."""

from __future__ import annotations

from gir.cli.common import add_ensemble, add_params, command, say

PIPELINES = ["train", "rectify"]


def _rectify_flags(p) -> None:
    g = p.add_argument_group("--pipeline rectify")
    g.add_argument("--source", default=None, help="s3://bucket/prefix/ of the photos")
    g.add_argument("--dest", default=None, help="s3:// prefix for the outputs (and the ledger)")
    g.add_argument("--task", default=None, choices=["rectify", "deblur"],
                   help="rectify (default) or deblur every photo")
    g.add_argument("--model", default=None,
                   help="models:/ URI or model directory (default: the registry champion)")
    add_ensemble(g, "deblur each photo", default=None)   # None: the pipeline's default
    g.add_argument("--shards", type=int, default=None, help="fan-out width (default 4)")
    g.add_argument("--reprocess", action="store_true", default=None,
                   help="redo inputs whose ledger entry names another model version")
    g.add_argument("--endpoint-url", default=None,
                   help="S3-compatible endpoint (MinIO), e.g. http://minio:9000")


def _pipeline_args(p):
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser("compile", help="write the KFP pipeline spec (YAML)")
    c.add_argument("-o", "--out", default=None,
                   help="output YAML file (default: gir-pipeline.yaml / gir-rectify.yaml)")
    r = actions.add_parser("run", help="run the pipeline here with KFP's local runner")
    r.add_argument("--local", action="store_true", required=True,
                   help="run with kfp.local (to use a cluster: submit)")
    r.add_argument("--root", default="pipeline_root", help="where artifacts go")
    r.add_argument("--runner", default="subprocess", choices=["subprocess", "docker"],
                   help="subprocess (default): each step in this Python; docker: each step in "
                        "the image, through a docker engine (docs/kubeflow.md, Containers)")
    s = actions.add_parser("submit", help="submit a run to a Kubeflow Pipelines endpoint")
    k = actions.add_parser("schedule", help="create a KFP recurring run (cron) of a pipeline")
    for a in (s, k):
        a.add_argument("--host", required=True, help="KFP API URL, e.g. http://localhost:8080")
        a.add_argument("--experiment", default="gir", help="KFP experiment (default: gir)")
        _auth_flags(a)
    s.add_argument("--run-name", default=None)
    k.add_argument("--cron", required=True, metavar="EXPR",
                   help="when to run: a crontab line, e.g. '*/15 * * * *' (KFP's 6-field form "
                        "with seconds first is accepted too)")
    k.add_argument("--name", default=None, help="recurring run name (default: the pipeline's)")
    for a in (c, r, s, k):
        a.add_argument("--pipeline", default="rectify" if a is k else "train",
                       choices=PIPELINES,
                       help="train: the training pipeline; rectify: the gir-rectify batch "
                            f"(default: {'rectify' if a is k else 'train'})")
        add_params(a)
        _rectify_flags(a)
    for a in (c, r, s, k):
        a.add_argument("--image", default=None,
                       help="component image (default: $GIR_IMAGE or gir:<version>)")


def _auth_flags(p) -> None:
    g = p.add_argument_group("a multi-user Kubeflow (one credential)")
    g.add_argument("--namespace", default=None,
                   help="your profile namespace, where the run executes (multi-user Kubeflow)")
    g.add_argument("--token", default=None,
                   help="bearer token (default: $KF_PIPELINES_TOKEN), e.g. from "
                        "`kubectl create token default-editor -n <namespace>`")
    g.add_argument("--token-file", default=None, metavar="PATH",
                   help="read a service-account token from PATH (default: "
                        "$KF_PIPELINES_SA_TOKEN_PATH, or a Kubeflow notebook's projected token)")
    g.add_argument("--cookie", default=None, metavar="COOKIES",
                   help="session cookies of the Kubeflow login, 'authservice_session=...' "
                        "(default: $KF_PIPELINES_COOKIE)")


def _connection(args):
    """--host, --namespace and the credential as a pipelines.kfp_api.Connection."""
    from pipelines.kfp_api import connection

    return connection(args.host, args.namespace, args.token, args.token_file, args.cookie)


def rectify_values(args) -> dict:
    return {"source": args.source, "dest": args.dest, "task": args.task, "model": args.model,
            "ensemble": args.ensemble, "shards": args.shards, "reprocess": args.reprocess,
            "endpoint_url": args.endpoint_url}


@command("pipeline", "Kubeflow: compile a pipeline, run it locally, submit or schedule it")(
    _pipeline_args)
def cmd_pipeline(args) -> int:
    import pipelines
    from pipelines.environment import check_submit_tracking

    if args.pipeline == "rectify":
        return _rectify(args)
    defaults = pipelines.param_defaults(args.params)
    values = pipelines.param_defaults(args.params, args.set)
    if args.action == "compile":  # --set changes the compiled defaults
        path = pipelines.compile_pipeline(args.out or "gir-pipeline.yaml", values, args.image)
        say(f"pipeline: wrote {path}")
    elif args.action == "run":
        run_dir = pipelines.run_local(defaults, values, args.root, args.runner, args.image)
        say(f"pipeline: artifacts in {run_dir}")
        decision = run_dir / "register" / "registration"
        if decision.exists():
            print(decision.read_text())
    elif args.action == "submit":
        check_submit_tracking(values)
        url = pipelines.submit(_connection(args), defaults, values, args.experiment, args.run_name,
                               args.image)
        say("pipeline: submitted; watch it at")
        print(url)
    else:
        from pipelines.gir_pipeline import changed_sections

        check_submit_tracking(values)
        url = pipelines.create_recurring_run(
            _connection(args),
            lambda path: pipelines.compile_pipeline(path, defaults, args.image, values),
            changed_sections(defaults, values), args.experiment, args.name or "gir", args.cron)
        say("pipeline: scheduled; see it at")
        print(url)
    return 0


def _rectify(args) -> int:
    """The gir-rectify actions; source and dest are needed to run (not to compile)."""
    import json

    import pipelines
    from gir.errors import GirError

    values = rectify_values(args)
    if args.action == "compile":
        path = pipelines.compile_rectify(args.out or "gir-rectify.yaml", values, args.image)
        say(f"pipeline: wrote {path}")
        return 0
    if not (args.source and args.dest):
        raise GirError("--pipeline rectify needs --source s3://... and --dest s3://...")
    if args.action == "run":
        from gir.data.storage import Location, use_endpoint
        from gir.rectifier.ledger import REPORT

        run_dir = pipelines.run_rectify_local(values, args.root, args.runner, args.image)
        say(f"pipeline: artifacts in {run_dir}")
        use_endpoint(args.endpoint_url)
        report = json.loads(Location(args.dest).read(REPORT))
        say(f"pipeline: {report['counts']['written']} written, {report['counts']['failed']} "
            f"failed, {report['counts']['skipped']} skipped -> {args.dest}")
        print(json.dumps(report["counts"]))
    elif args.action == "submit":
        url = pipelines.submit_rectify(_connection(args), values, args.experiment, args.run_name,
                                       args.image)
        say("pipeline: submitted; watch it at")
        print(url)
    else:
        url = pipelines.schedule_rectify(_connection(args), values, args.cron, args.experiment,
                                         args.name, args.image)
        say("pipeline: scheduled; see it at")
        print(url)
    return 0

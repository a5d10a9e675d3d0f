"""`gir pipeline`: compile the Kubeflow pipeline, run it with KFP's local runner, or submit it."""

from __future__ import annotations

from gir.cli.common import add_params, command, say


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
        add_params(a)
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
        say(f"pipeline: wrote {path}")
    elif args.action == "run":
        run_dir = pipelines.run_local(defaults, values, args.root)
        say(f"pipeline: artifacts in {run_dir}")
        decision = run_dir / "register" / "registration"
        if decision.exists():
            print(decision.read_text())
    else:
        url = pipelines.submit(args.host, defaults, values, args.experiment, args.run_name,
                               args.image)
        say("pipeline: submitted; watch it at")
        print(url)
    return 0

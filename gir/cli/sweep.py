"""`gir sweep`: run a grid of settings through DVC's experiment queue or KFP, compare the
children in MLflow (one parent run), and register the best child by the usual rule."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from gir.cli.common import add_params, command, renamed, say
from gir.errors import GirError

ENGINES = ("dvc", "kfp-local")


def _sweep_args(p):
    add_params(p)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=[A,B,...]",
                   help="a param and its values, e.g. 'train.loss.adversarial=[none,lsgan]' "
                   "(repeatable: the sweep is every combination)")
    p.add_argument("--runner", dest="engine", choices=ENGINES, default="dvc",
                   help="what runs the children (their MLflow `engine` tag): dvc: `dvc exp run "
                   "--queue` + `dvc queue start`; kfp-local: one KFP pipeline run (ParallelFor) "
                   "with the local runner")
    renamed(p, "--engine", "--runner", "engine", choices=ENGINES)   # its name before 0.2
    p.add_argument("-j", "--jobs", type=int, default=1,
                   help="children run at once (DVC queue workers / ParallelFor parallelism)")
    p.add_argument("--root", default="pipeline_root", help="kfp-local: where artifacts go")


@command("sweep", "run a grid of settings (DVC experiments or KFP), compare them in MLflow, "
         "register the best")(_sweep_args)
def cmd_sweep(args) -> int:
    from gir.config import load_params
    from gir.tracking import sweep
    from gir.tracking.runs import setup, tracking_uri

    if args.jobs < 1:
        raise GirError("--jobs: at least 1")
    grid = sweep.parse_grid(args.grid)
    keys = [k for k, _ in grid]
    cfgs = sweep.configs(grid)
    sweep.check_configs(args.params, args.set, cfgs)
    params = load_params(args.params, args.set)
    mlflow = setup(params.mlflow)
    sweep_id = sweep.new_sweep_id()
    parent = sweep.start_parent(mlflow, params.mlflow.experiment, sweep_id, grid, args.engine)
    env = sweep.child_env(sweep_id, parent, tracking_uri(params.mlflow))
    say(f"sweep {sweep_id}: {len(cfgs)} configs on {args.engine}, MLflow parent run {parent}")
    try:
        if args.engine == "dvc":
            names = _run_dvc(cfgs, args, env, sweep_id)
        else:
            result = _run_kfp_local(cfgs, args, env)
    except BaseException:
        mlflow.MlflowClient().set_terminated(parent, "FAILED")
        raise
    table, best = sweep.finish(mlflow, params.mlflow.experiment, sweep_id, parent, keys,
                               params.register.metric, expected=len(cfgs),
                               all_params=sweep.check_configs(args.params, args.set, cfgs))
    print(sweep.table_text(table, keys, params.register.metric))
    if args.engine == "dvc":
        _register_dvc(best, cfgs, keys, args, names, env)
    else:
        print(result)
    return 0


def _dvc(*argv: str, env: dict, capture: bool = True) -> str:
    """Run the dvc next to this Python (the venv's), with the sweep's environment."""
    exe = Path(sys.executable).parent / "dvc"
    cmd = [str(exe) if exe.exists() else "dvc", *argv]
    full = {**os.environ, **env,
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run(cmd, env=full, capture_output=capture, text=True)
    if proc.returncode:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] if capture else []
        raise GirError(f"dvc {' '.join(argv[:3])} failed: {' '.join(tail) or proc.returncode}")
    return proc.stdout or ""


def _run_dvc(cfgs: list[list[str]], args, env: dict, sweep_id: str) -> list[str]:
    """Queue one experiment per config (up to `evaluate`: the sweep registers only the best),
    start bounded workers, wait for the queue to drain; returns the experiment names."""
    if not Path("dvc.yaml").exists():
        raise GirError("--runner dvc: no dvc.yaml here; run gir sweep from the project root")
    if Path(args.params).resolve() != Path("params.yaml").resolve():
        raise GirError("--runner dvc: DVC experiments read params.yaml; use --set, not --params")
    base = [a for s in args.set for a in ("-S", s)]
    names = []
    for i, overrides in enumerate(cfgs):
        name = f"sweep-{sweep_id}-{i}"
        _dvc("exp", "run", "--queue", "--name", name, *base,
             *[a for o in overrides for a in ("-S", o)], "evaluate", env=env)
        names.append(name)
    _dvc("queue", "start", "-j", str(args.jobs), env=env)
    try:
        _wait_queue(names, env)
    except BaseException:  # interrupted or failed: do not leave the rest of the sweep running
        for verb in ("remove", "kill"):  # queued ones, then running ones
            subprocess.run([sys.executable, "-m", "dvc", "queue", verb, *names],
                           capture_output=True)
        raise
    return names


def _wait_queue(names: list[str], env: dict, poll_s: float = 3.0) -> None:
    """Until none of the sweep's experiments is queued or running; failed ones are an error."""
    while True:
        rows = [line.split() for line in _dvc("queue", "status", env=env).splitlines()]
        mine = {r[1]: r for r in rows if len(r) > 2 and r[1] in names}
        states = {n: next((w for w in mine.get(n, []) if w in
                           ("Queued", "Running", "Success", "Failed")), "?") for n in names}
        if not any(s in ("Queued", "Running") for s in states.values()):
            failed = [n for n, s in states.items() if s == "Failed"]
            if failed:
                raise GirError(f"dvc experiments failed: {', '.join(failed)} "
                               f"(see `dvc queue logs {failed[0]}`)")
            return
        time.sleep(poll_s)


def _register_dvc(best, cfgs, keys, args, names, env) -> None:
    """Bring the best child into the workspace (`dvc exp apply`) and run the register stage."""
    from gir.tracking.sweep import check_configs, match_config

    name = names[match_config(best, keys, check_configs(args.params, args.set, cfgs))]
    _dvc("exp", "apply", name, env=env)
    say(f"sweep: best {best['run']} (exp {name}) applied to the workspace; registering it")
    _dvc("repro", "register", env=env, capture=False)


def _run_kfp_local(cfgs, args, env) -> str:
    import pipelines

    os.environ.update(env)
    defaults = pipelines.param_defaults(args.params)
    values = pipelines.param_defaults(args.params, args.set)
    run_dir = pipelines.run_sweep_local(defaults, values, cfgs, args.root, args.jobs)
    decision = run_dir / "sweep-register" / "registration"
    return decision.read_text() if decision.exists() else f"artifacts in {run_dir}"

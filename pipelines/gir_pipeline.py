"""The GIR pipeline for Kubeflow: the same steps as dvc.yaml, as a KFP DAG.

The pipeline's parameters are the top-level keys of params.yaml (`seed`, `data`, `train`, ...),
with params.yaml's values as defaults, read when the pipeline is built: nothing is retyped
here, and a key added to params.yaml becomes a pipeline parameter by itself. Each task gets the
sections its component declares (see components/steps.py).

Cluster settings (all overridable below or by the env vars named):
- the training task asks for one `nvidia.com/gpu`, tolerates the GPU taint, and requests
  CPU/memory; the data steps retry; caching is on;
- S3 and MLflow credentials come from Kubernetes secrets as environment variables.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from gir.config import load_params, params_from_struct, to_dict
from gir.errors import GirError
from pipelines.environment import (  # noqa: F401
    MLFLOW_SECRET,
    S3_SECRET,
    SECRET_KEYS,
    secrets_for,
    without_file_tracking,
)
from pipelines.environment import configure as configure_env

PIPELINE_NAME = "gir"
DATA_STEPS = ("ingest", "validate", "preprocess", "split")
RETRIES = 2                      # data steps: transient S3 / node failures
RETRY_BACKOFF = "60s"

# CPU and memory requests per task (Kubernetes quantities); the GPU is on `train` only.
RESOURCES = {"train": ("4", "16G"), "evaluate": ("2", "8G"), "register": ("1", "4G")}
DEFAULT_RESOURCES = ("1", "4G")
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

# params.yaml's cluster section: read when compiling (`--set kubeflow.x=...`), not a pipeline
# parameter (nothing in it can change once compiled). Train's checkpoints live on a PVC mounted
# here, so a retried attempt resumes (components/steps.py: $GIR_CHECKPOINT_ROOT).
CLUSTER = "kubeflow"
CHECKPOINT_MOUNT = "/gir/checkpoints"
SHM_VOLUME = "dshm"

# Kubernetes secrets -> environment variables, and who gets them: pipelines/environment.py.
SECRETS_FOR = {name: secrets_for(name) for name in (*DATA_STEPS, "train", "evaluate",
                                                    "register", "detector")}


def param_defaults(params_file: str | Path = "params.yaml",
                   overrides: list[str] | None = None) -> dict[str, Any]:
    """params.yaml (+ `key=value` overrides), checked by gir.config, as plain sections."""
    return to_dict(load_params(params_file, overrides))


def changed_sections(defaults: dict, values: dict) -> dict:
    """The pipeline arguments that differ from the defaults (whole sections, as KFP takes them).
    The cluster section is compiled in, never an argument."""
    return {k: v for k, v in values.items() if defaults.get(k) != v and k != CLUSTER}


def build_pipeline(defaults: dict[str, Any], image: str | None = None, engine: str = "kfp",
                   layout: dict[str, Any] | None = None):
    """The pipeline function, its signature made from `defaults` (params.yaml's sections).

    image overrides every task's container image; engine tags the MLflow run (`kfp` on a
    cluster, `kfp-local` for the local runner). layout (default: defaults) gives the cluster
    section and train.distributed that shape the compiled tasks.
    """
    from kfp import dsl

    import components as c

    layout = layout or defaults
    if engine == "kfp":  # a file store would be the pod's: the server comes from the secret
        defaults = without_file_tracking(defaults)
    names = [n for n in defaults if n != CLUSTER]
    listing = source_key(defaults)

    def task(op, sections: dict, **inputs):
        return _task(op, sections, engine, image, **inputs)

    def gir(*args):
        s = dict(zip(names, args))
        processed, split = _data_tasks(s, engine, image, listing)
        model = _train_task(s, engine, image, processed, split, layout).outputs["generator"]
        evaluation = task(c.evaluate, s, processed=processed, split_manifest=split,
                          generator=model).outputs["evaluation"]
        task(c.register, s, processed=processed, split_manifest=split, generator=model,
             evaluation=evaluation)
        # The blur detector needs none of the data above: an independent branch.
        task(c.detector, s, engine=engine)   # no run id: its cache key is params + image

    gir.__signature__ = inspect.Signature([
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=defaults[n],
                          annotation=type(defaults[n])) for n in names])
    return dsl.pipeline(
        name=PIPELINE_NAME,
        description="GIR: ingest, validate, preprocess, split, train (GPU), evaluate, register "
                    "to MLflow; fit and register the blur detector alongside. Parameters are the "
                    "sections of params.yaml.")(gir)


def _task(op, sections: dict, run_engine: str, image: str | None, **inputs):
    """Call a component with the sections it declares plus the given inputs."""
    import components

    wanted = {k: sections[k] for k in op.component_spec.inputs if k in sections}
    t = op(**wanted, **inputs)
    t.set_caching_options(True)
    cpu, memory = RESOURCES.get(op.name, DEFAULT_RESOURCES)
    t.set_cpu_request(cpu).set_memory_request(memory)
    if image:
        t.set_container_image(image)
    if op.name in DATA_STEPS and run_engine == "kfp":  # locally a failure is not transient
        t.set_retry(num_retries=RETRIES, backoff_duration=RETRY_BACKOFF)
    configure_env(t, op.name, run_engine, image or components.IMAGE)
    return t


def source_key(defaults: dict) -> str:
    """A digest of the data source's listing (files with ETags or mtimes), taken when the
    pipeline is compiled or submitted: ingest's cache key then changes when photos arrive in a
    folder or bucket, as `dvc repro`'s listing stage does. A source that cannot be listed from
    here gets a key of its own, so ingest runs rather than reuse stale data."""
    from gir.data.sources.listing import listing_digest, source_listing

    try:
        return listing_digest(source_listing(params_from_struct(defaults)))
    except Exception as exc:  # noqa: BLE001 - any failure to list means "do not cache"
        logging.getLogger("gir").warning(
            "the data source could not be listed here (%s): ingest will not be served from "
            "the cache", type(exc).__name__)
        return f"unlisted-{time.time_ns()}"


def _data_tasks(s: dict, engine: str, image: str | None, listing: str = ""):
    """ingest -> validate -> preprocess -> split; returns (processed, split manifest)."""
    import components as c

    raw = _task(c.ingest, s, engine, image, listing=listing).outputs["raw"]
    validated = _task(c.validate, s, engine, image, raw=raw).outputs["validated"]
    processed = _task(c.preprocess, s, engine, image, raw=raw,
                      validated=validated).outputs["processed"]
    split = _task(c.split, s, engine, image, processed=processed).outputs["split_manifest"]
    return processed, split


def _train_task(s: dict, engine: str, image: str | None, processed, split,
                layout: dict | None = None, **sweep):
    """The training task; sweep passes overrides, sweep_id and parent_run_id.

    On a cluster (engine kfp) it gets the checkpoint volume, /dev/shm, the node selector,
    tolerations and timeout of layout's cluster section, and retries; with more than one GPU
    in layout's train.distributed it only launches and waits on a PyTorchJob (no GPU itself).
    """
    from kfp import dsl, kubernetes

    import components as c

    cluster = _cluster_settings(layout) if engine == "kfp" else None
    claim = _checkpoint_claim(cluster) if cluster else None
    multi = cluster is not None and _gpus(layout) > 1
    trained = _task(c.train, s, engine, image, engine=engine,
                    kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                    processed=processed, split_manifest=split,
                    **({"checkpoint_pvc": claim} if multi else {}), **sweep)
    if not multi:
        trained.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(1)
    if cluster is None:
        kubernetes.add_toleration(trained, **GPU_TOLERATION)
        return trained
    _on_cluster(trained, cluster, claim, place=not multi)
    if multi:
        trained.set_cpu_request("1").set_memory_request("4G")
        trained.set_env_variable("GIR_PYTORCHJOB", json.dumps(_job_settings(cluster, image)))
    # A retried attempt resumes from the volume's checkpoint (same run id, same params).
    trained.set_retry(num_retries=RETRIES, backoff_duration=RETRY_BACKOFF)
    return trained


def _cluster_settings(layout: dict | None) -> dict:
    """The cluster section (checked by gir.config) with train.distributed, from layout."""
    full = to_dict(params_from_struct({k: v for k, v in (layout or {}).items()
                                       if k in (CLUSTER, "train")}))
    return {**full[CLUSTER], "distributed": full["train"]["distributed"]}


def _gpus(layout: dict | None) -> int:
    """GPUs train.distributed asks for; a claim made per run for several nodes must be RWX."""
    c = _cluster_settings(layout)
    d = c["distributed"]
    if d["nodes"] > 1 and not c["checkpoint_pvc"] and c["access_mode"] != "ReadWriteMany":
        raise GirError(f"train.distributed.nodes={d['nodes']}: pods on several nodes share the "
                       "checkpoint claim; set kubeflow.access_mode=ReadWriteMany (with a "
                       "storage_class that offers it) or name a claim in kubeflow.checkpoint_pvc")
    return d["nodes"] * d["gpus_per_node"]


def _checkpoint_claim(cluster: dict):
    """The claim to mount: the one named in the cluster section, or one created for this run
    (deleted by a task after train, see _on_cluster)."""
    from kfp import kubernetes

    if cluster["checkpoint_pvc"]:
        return cluster["checkpoint_pvc"]
    pvc = kubernetes.CreatePVC(pvc_name_suffix="-gir-checkpoints",
                               access_modes=[cluster["access_mode"]],
                               size=cluster["checkpoint_size"],
                               storage_class_name=cluster["storage_class"])
    pvc.set_caching_options(False)
    pvc.set_display_name("checkpoint-volume")
    return pvc.outputs["name"]


def _on_cluster(trained, cluster: dict, claim, place: bool = True) -> None:
    """Mount the checkpoint claim ($GIR_CHECKPOINT_ROOT) and a memory /dev/shm; place the pod
    with the node selector (not a PyTorchJob's launcher, which needs no GPU node)."""
    from kfp import kubernetes

    kubernetes.mount_pvc(trained, pvc_name=claim, mount_path=CHECKPOINT_MOUNT)
    trained.set_env_variable("GIR_CHECKPOINT_ROOT", CHECKPOINT_MOUNT)
    kubernetes.empty_dir_mount(trained, volume_name=SHM_VOLUME, mount_path="/dev/shm",
                               medium="Memory", size_limit=cluster["shm_size"])
    for label, value in (cluster["node_selector"] if place else {}).items():
        kubernetes.add_node_selector(trained, label_key=label, label_value=value)
    kubernetes.add_toleration_json(trained, [_toleration(t) for t in cluster["tolerations"]])
    if cluster["train_timeout"]:
        kubernetes.set_timeout(trained, cluster["train_timeout"])
    if not cluster["checkpoint_pvc"]:  # created for this run: gone once train has finished
        kubernetes.DeletePVC(pvc_name=claim).after(trained).set_caching_options(False) \
            .set_display_name("delete-checkpoint-volume")


def _toleration(t: dict) -> dict:
    """A Kubernetes toleration (tolerationSeconds) as kfp-kubernetes takes it."""
    out = {k: v for k, v in t.items() if k != "tolerationSeconds"}
    if "tolerationSeconds" in t:
        out["toleration_seconds"] = t["tolerationSeconds"]
    return out


def _job_settings(cluster: dict, image: str | None) -> dict:
    """What the PyTorchJob launcher (gir.steps.pytorchjob.JobSpec) needs from the compile."""
    import components

    cpu, memory = RESOURCES["train"]
    secrets = {name: SECRET_KEYS[name] for name in SECRETS_FOR["train"]}
    return {"image": image or components.IMAGE, "cpu": cpu, "memory": memory,
            "shm_size": cluster["shm_size"], "node_selector": cluster["node_selector"],
            "tolerations": cluster["tolerations"], "timeout": cluster["train_timeout"],
            "secrets": secrets}


def build_sweep_pipeline(defaults: dict[str, Any], cfgs: list[list[str]], sweep_id: str,
                         parent_run_id: str, parallelism: int = 1, image: str | None = None,
                         engine: str = "kfp"):
    """One pipeline run for a sweep: the data steps once, then train -> evaluate fanned out
    over the configs with dsl.ParallelFor, then the best child registered (sweep_register)."""
    from kfp import dsl

    import components as c

    names = [n for n in defaults if n != CLUSTER]
    listing = source_key(defaults)

    def gir_sweep(*args):
        s = dict(zip(names, args))
        processed, split = _data_tasks(s, engine, image, listing)
        with dsl.ParallelFor(cfgs, parallelism=parallelism) as overrides:
            model = _train_task(s, engine, image, processed, split, defaults,
                                overrides=overrides,
                                sweep_id=sweep_id, parent_run_id=parent_run_id
                                ).outputs["generator"]
            evaluation = _task(c.evaluate, s, engine, image, processed=processed,
                               split_manifest=split, generator=model).outputs["evaluation"]
        _task(c.sweep_register, s, engine, image, configs=cfgs, sweep_id=sweep_id,
              parent_run_id=parent_run_id, processed=processed, split_manifest=split,
              generators=dsl.Collected(model), evaluations=dsl.Collected(evaluation))

    gir_sweep.__signature__ = inspect.Signature([
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=defaults[n],
                          annotation=type(defaults[n])) for n in names])
    return dsl.pipeline(name=f"{PIPELINE_NAME}-sweep",
                        description="GIR sweep: train/evaluate per config, register the best")(
        gir_sweep)


def run_sweep_local(defaults: dict, values: dict, cfgs: list[list[str]], root: str | Path,
                    parallelism: int = 1) -> Path:
    """The sweep pipeline with KFP's SubprocessRunner; GIR_SWEEP_ID / GIR_SWEEP_PARENT name the
    sweep and its MLflow parent run. Returns the run's artifact folder."""
    pipe = build_sweep_pipeline(defaults, cfgs, os.environ["GIR_SWEEP_ID"],
                                os.environ["GIR_SWEEP_PARENT"], parallelism, engine="kfp-local")
    return run_locally(lambda: pipe(**changed_sections(defaults, values)), root)


def compile_pipeline(out: str | Path, defaults: dict, image: str | None = None,
                     layout: dict | None = None) -> Path:
    """Write the pipeline spec YAML that `kfp` / the Kubeflow UI accepts; layout (default:
    defaults) gives the cluster section and train.distributed compiled into the tasks."""
    from kfp import compiler

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=build_pipeline(defaults, image, layout=layout),
                                package_path=str(out))
    return out


def run_local(defaults: dict, values: dict, root: str | Path = "pipeline_root",
              runner: str = "subprocess", image: str | None = None) -> Path:
    """Run the pipeline here with KFP's local runner; returns the run's artifact folder.

    subprocess: tasks run as subprocesses of this Python (no containers, no GPU/CPU
    settings), so the environment must have gir installed, as the image does. docker: every
    task in the image (pipelines/environment.py: check_docker_run says what it needs).
    """
    engine = local_engine(runner, image)
    return run_locally(lambda: build_pipeline(defaults, image, engine=engine)(
        **changed_sections(defaults, values)), root, runner)


def run_locally(start, root: str | Path = "pipeline_root", runner: str = "subprocess") -> Path:
    """Call start() (which calls a pipeline function) under kfp.local's SubprocessRunner or
    DockerRunner; returns the new run's artifact folder. Shared by every pipeline here."""
    import kfp.local

    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if runner == "docker":  # host networking: the steps reach S3 and MLflow on loopback
        kfp.local.init(runner=kfp.local.DockerRunner(network_mode="host"),
                       pipeline_root=str(root))
    else:
        kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False),
                       pipeline_root=str(root))
    before = set(root.iterdir())
    # Here the "image" is this very environment, which has gir installed: not worth a warning.
    warnings.filterwarnings("ignore", message=".*non-Python base image")
    try:  # the runner's progress log goes to stderr: stdout is for results
        with contextlib.redirect_stdout(sys.stderr):
            start()
    except RuntimeError as exc:  # a failed task: its log was printed above
        raise GirError(f"local run failed: {_one_line(exc)}") from None
    runs = sorted(set(root.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else root


def local_engine(runner: str, image: str | None) -> str:
    """The engine a local run tags its runs with; for docker, checked before any task runs."""
    if runner != "docker":
        return "kfp-local"
    import components
    from pipelines.environment import check_docker_run

    check_docker_run(image or components.IMAGE)
    return "kfp-docker"


def submit(host, defaults: dict, values: dict, experiment: str = "gir",
           run_name: str | None = None, image: str | None = None) -> str:
    """Compile, create a run on the Kubeflow Pipelines API at host; returns the run's URL."""
    return create_run(host, lambda path: compile_pipeline(path, defaults, image, values),
                      changed_sections(defaults, values), experiment,
                      run_name or f"gir {time.strftime('%Y-%m-%d %H:%M:%S')}")


def create_run(host, compile_to, arguments: dict, experiment: str, run_name: str) -> str:
    """compile_to(path) writes a pipeline package; create a run of it at host (a URL or a
    pipelines.kfp_api.Connection: namespace and credentials); its URL."""
    conn = _target(host)
    with tempfile.TemporaryDirectory() as tmp:
        package = compile_to(Path(tmp) / "pipeline.yaml")
        check_host(conn, Path(package).read_text())
        run = _client_call(conn, lambda client: client.create_run_from_pipeline_package(
            str(package), arguments=arguments, experiment_name=experiment, run_name=run_name,
            namespace=conn.namespace))
    return f"{conn.host}/#/runs/details/{run.run_id}"


def create_recurring_run(host, compile_to, arguments: dict, experiment: str, name: str,
                         cron: str) -> str:
    """A KFP recurring run of the package on a cron schedule; never two at once, no catch-up
    of missed slots. Returns its URL."""
    cron = kfp_cron(cron)
    conn = _target(host)
    with tempfile.TemporaryDirectory() as tmp:
        package = compile_to(Path(tmp) / "pipeline.yaml")
        check_host(conn, Path(package).read_text())

        def call(client):
            exp = client.create_experiment(name=experiment, namespace=conn.namespace)
            return client.create_recurring_run(
                experiment_id=exp.experiment_id, job_name=name, cron_expression=cron,
                params=arguments, pipeline_package_path=str(package), max_concurrency=1,
                no_catchup=True)
        job = _client_call(conn, call)
    return f"{conn.host}/#/recurringrun/details/{job.recurring_run_id}"


def kfp_cron(expr: str) -> str:
    """KFP's cron has a seconds field first: a 5-field crontab line gets '0 ' in front."""
    fields = expr.split()
    if len(fields) == 5:
        return "0 " + " ".join(fields)
    if len(fields) == 6:
        return " ".join(fields)
    raise GirError(f"--cron {expr!r}: expected 5 crontab fields (min hour day month weekday) "
                   "or 6 with seconds first")


def _target(host):
    """A Connection from a URL or a Connection, its URL checked for form."""
    from pipelines.kfp_api import Connection

    conn = Connection.of(host)
    if not re.match(r"^https?://[^/\s]+", conn.host):
        raise GirError(f"--host {conn.host!r}: expected an http(s):// URL of the Kubeflow "
                       "Pipelines API")
    return Connection(conn.host.rstrip("/"), conn.namespace, conn.token, conn.cookies)


def check_host(host, spec_text: str = ""):
    """Probe the API (healthz, with our credentials) and refuse a backend too old for
    spec_text or a multi-user one without a namespace; returns the Connection."""
    from pipelines.kfp_api import check_backend, probe

    conn = _target(host)
    check_backend(conn, probe(conn), spec_text)
    return conn


def _client_call(conn, call):
    """call(kfp.Client) with its chatter kept off stdout and any failure as one GirError line."""
    from pipelines.kfp_api import client

    # kfp.Client prints its own links and a version warning: keep stdout for the URL.
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return call(client(conn))
    except Exception as exc:  # noqa: BLE001 - any client/HTTP failure is one line for the user
        raise GirError(f"cannot submit to {conn.host}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    """A short, single-line reason from an exception (HTTP status, or its innermost cause)."""
    status = getattr(exc, "status", None)
    if status:
        body = getattr(exc, "body", "") or ""
        try:
            body = json.loads(body).get("message", body)
        except (ValueError, AttributeError):
            pass
        return f"HTTP {status} {getattr(exc, 'reason', '')}: {str(body)[:200]}".strip()
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split()) or type(exc).__name__
    return text[:300]

"""Training past one GPU on Kubeflow: the train task launches a PyTorchJob and waits for it.

When ``train.distributed.nodes x gpus_per_node > 1`` the KFP train task does not train itself.
It stages the data and params on the checkpoint volume (a PVC that every replica mounts at the
same path), creates a PyTorchJob for the Kubeflow Training Operator (one Master and
``nodes - 1`` Workers, each with ``gpus_per_node`` GPUs), waits for it, and copies the model
and report from the volume into its own KFP outputs.

Every replica runs the same entry point as a laptop's multi-process run: ``torchrun`` around
``gir train`` (steps/train.py joins the process group from the torchrun environment). The
operator gives each pod ``RANK`` (its node rank), ``MASTER_ADDR`` and ``MASTER_PORT``;
torchrun turns them into per-process ranks. Checkpoints live on the volume, so a restarted job
or a retried KFP task resumes. The job is named after the run and params, so a retried task
finds and waits on the job its killed attempt created instead of starting a second one.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from gir.config import Params, to_dict
from gir.errors import GirError
from gir.tracking.runs import RunMeta

log = logging.getLogger("gir")

GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"
CONTAINER = "pytorch"            # the container name the Training Operator looks for
GPU = "nvidia.com/gpu"
POD_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def wants_pytorchjob(params: Params) -> bool:
    """More than one GPU asked for: train through a PyTorchJob rather than in this process."""
    d = params.train.distributed
    return d.nodes * d.gpus_per_node > 1


@dataclass
class JobSpec:
    """What the PyTorchJob needs to know about the cluster (set by pipelines/ at compile time)."""

    name: str
    namespace: str
    image: str
    claim: str                  # the PVC mounted at `mount` in every replica
    mount: str
    workdir: str                # under mount: params.yaml, data/, models/, report/, checkpoints/
    nodes: int = 1
    gpus_per_node: int = 1
    cpu: str = "4"
    memory: str = "16G"
    shm_size: str = "8Gi"
    node_selector: dict = field(default_factory=dict)
    tolerations: list = field(default_factory=list)
    timeout: int = 0            # seconds; 0 = none
    secrets: dict = field(default_factory=dict)   # secret name -> keys, exposed as env vars
    env: dict = field(default_factory=dict)
    engine: str = "kfp"


def job_name(workdir: str) -> str:
    """A DNS-safe name that a retried task computes again for the same run and params."""
    return "gir-train-" + hashlib.sha256(workdir.encode()).hexdigest()[:12]


def worker_command(workdir: str, nodes: int, gpus_per_node: int, engine: str = "kfp") -> list:
    """What every replica runs: torchrun (node rank and master from the operator's env) around
    `gir train` on the staged files. A local `torchrun --nproc_per_node N` runs the same."""
    w = shlex.quote(workdir.rstrip("/"))
    return ["sh", "-c",
            f"exec python -m torch.distributed.run --nnodes {nodes} "
            f"--nproc_per_node {gpus_per_node} --node_rank \"${{RANK:-0}}\" "
            f"--master_addr \"${{MASTER_ADDR:-127.0.0.1}}\" "
            f"--master_port \"${{MASTER_PORT:-29500}}\" -m gir train "
            f"--params {w}/params.yaml --data {w}/data/processed "
            f"--split {w}/data/split/manifest.csv --out {w}/models --report {w}/report "
            f"--checkpoints {w}/checkpoints --engine {shlex.quote(engine)}"]


def _pod_template(s: JobSpec) -> dict:
    env = [{"name": k, "value": str(v)} for k, v in sorted(s.env.items())]
    env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key,
                                                         "optional": True}}}
            for secret, keys in sorted(s.secrets.items()) for key in keys]
    container = {
        "name": CONTAINER, "image": s.image, "env": env,
        "command": worker_command(s.workdir, s.nodes, s.gpus_per_node, s.engine),
        "resources": {"requests": {"cpu": s.cpu, "memory": s.memory},
                      "limits": {GPU: str(s.gpus_per_node)}},
        "volumeMounts": [{"name": "checkpoints", "mountPath": s.mount},
                         {"name": "dshm", "mountPath": "/dev/shm"}],
    }
    spec = {"containers": [container], "volumes": [
        {"name": "checkpoints", "persistentVolumeClaim": {"claimName": s.claim}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": s.shm_size}}]}
    if s.node_selector:
        spec["nodeSelector"] = dict(s.node_selector)
    if s.tolerations:
        spec["tolerations"] = list(s.tolerations)
    # Kubeflow profiles inject an Istio sidecar that would keep a finished pod alive and sit
    # between the replicas' rendezvous.
    return {"metadata": {"annotations": {"sidecar.istio.io/inject": "false"}}, "spec": spec}


def manifest(s: JobSpec) -> dict:
    """The PyTorchJob: one Master and nodes - 1 Workers, gpus_per_node GPUs each."""
    replicas = {"Master": {"replicas": 1, "restartPolicy": "OnFailure",
                           "template": _pod_template(s)}}
    if s.nodes > 1:
        replicas["Worker"] = {"replicas": s.nodes - 1, "restartPolicy": "OnFailure",
                              "template": _pod_template(s)}
    run_policy = {"cleanPodPolicy": "None", "backoffLimit": 3}
    if s.timeout:
        run_policy["activeDeadlineSeconds"] = s.timeout
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
            "metadata": {"name": s.name, "namespace": s.namespace,
                         "labels": {"app.kubernetes.io/part-of": "gir"}},
            "spec": {"runPolicy": run_policy, "pytorchReplicaSpecs": replicas}}


def _state(job: dict) -> tuple[str, str]:
    """('Succeeded' | 'Failed' | 'Running' | ..., message) from the job's last true condition."""
    conds = [c for c in (job.get("status") or {}).get("conditions") or []
             if str(c.get("status")) == "True"]
    return (conds[-1].get("type", ""), conds[-1].get("message", "")) if conds else ("", "")


def run_job(body: dict, api=None, poll: float = 10.0, timeout: float = 0) -> dict:
    """Create the PyTorchJob (or find the one a killed attempt created) and wait for its end.

    A job found already Failed is deleted and created again: it resumes from the volume's
    checkpoint. Raises GirError when the job fails or `timeout` seconds pass."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    co = client.CustomObjectsApi(api or _api_client())
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    args = (GROUP, VERSION, ns, PLURAL)
    try:
        co.create_namespaced_custom_object(*args, body)
        log.info("train: created PyTorchJob %s/%s", ns, name)
    except ApiException as exc:
        if exc.status != 409:
            raise GirError(f"cannot create PyTorchJob {ns}/{name}: HTTP {exc.status} "
                           f"{exc.reason}") from None
        if _state(co.get_namespaced_custom_object(*args, name))[0] == "Failed":
            co.delete_namespaced_custom_object(*args, name)
            _wait_gone(co, args, name, poll)
            co.create_namespaced_custom_object(*args, body)
        log.info("train: waiting on PyTorchJob %s/%s from an earlier attempt", ns, name)
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        job = co.get_namespaced_custom_object(*args, name)
        state, message = _state(job)
        if state == "Succeeded":
            return job
        if state == "Failed":
            raise GirError(f"PyTorchJob {ns}/{name} failed: {message or 'see its pods logs'}")
        if deadline and time.monotonic() > deadline:
            raise GirError(f"PyTorchJob {ns}/{name} did not finish in {timeout:g} s")
        time.sleep(poll)


def _wait_gone(co, args: tuple, name: str, poll: float) -> None:
    from kubernetes.client.rest import ApiException

    for _ in range(60):
        try:
            co.get_namespaced_custom_object(*args, name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(poll)
    raise GirError(f"PyTorchJob {name}: still there after deleting it")


def _api_client():
    """In a pod: its service account; elsewhere: the kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def stage(params: Params, data_dir: str | Path, split_manifest: str | Path,
          workdir: str | Path) -> None:
    """Put what the replicas read on the shared volume: params.yaml and the data."""
    import yaml

    from gir.data.imageio import write_text_atomic

    w = Path(workdir)
    shutil.copytree(data_dir, w / "data" / "processed", dirs_exist_ok=True)
    (w / "data" / "split").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(split_manifest, w / "data" / "split" / "manifest.csv")
    write_text_atomic(w / "params.yaml", yaml.safe_dump(to_dict(params), sort_keys=False))


def train_on_pytorchjob(params: Params, data_dir: str | Path, split_manifest: str | Path,
                        model_dir: str | Path, report_dir: str | Path, spec: JobSpec,
                        api=None, poll: float = 10.0) -> dict:
    """Stage, run the PyTorchJob to its end, collect the model and report; returns the job."""
    if not spec.claim:
        raise GirError("train.distributed: more than one GPU needs the Kubeflow pipeline's "
                       "checkpoint volume (on one machine run `torchrun --nproc_per_node N "
                       "-m gir train ...` instead)")
    stage(params, data_dir, split_manifest, spec.workdir)
    job = run_job(manifest(spec), api, poll, spec.timeout)
    w = Path(spec.workdir)
    if not (w / "models").is_dir():
        raise GirError(f"PyTorchJob {spec.name} succeeded but wrote no model in {w / 'models'}")
    shutil.copytree(w / "models", model_dir, dirs_exist_ok=True)
    if (w / "report").is_dir():
        shutil.copytree(w / "report", report_dir, dirs_exist_ok=True)
    return job


SETTINGS_ENV = "GIR_PYTORCHJOB"     # JSON of JobSpec's cluster fields, set by pipelines/
def spec_from_env(params: Params, claim: str, workdir: str | Path, engine: str,
                  meta: RunMeta | None = None) -> JobSpec:
    """The JobSpec of a KFP train task: cluster settings from $GIR_PYTORCHJOB, the volume
    mounted at $GIR_CHECKPOINT_ROOT, this pod's namespace; who launched the run (meta) goes
    to the job's pods in their environment, where their `gir train` reads it back."""
    import json
    import os

    settings = json.loads(os.environ.get(SETTINGS_ENV) or "{}")
    d = params.train.distributed
    env = (meta or RunMeta.from_env()).env()
    return JobSpec(name=job_name(str(workdir)), namespace=namespace(), claim=claim,
                   mount=os.environ.get("GIR_CHECKPOINT_ROOT", ""), workdir=str(workdir),
                   nodes=d.nodes, gpus_per_node=d.gpus_per_node, env=env, engine=engine,
                   **settings)


def namespace() -> str:
    """The namespace this pod runs in (the user's profile namespace on Kubeflow)."""
    try:
        return POD_NAMESPACE.read_text().strip()
    except OSError:
        return "default"

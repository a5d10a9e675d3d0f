"""Kubeflow on a real cluster (issue 36): submitting with a namespace and a credential after a
backend version probe, the cluster side of the compiled train task (checkpoint PVC, /dev/shm,
placement, timeout), and the PyTorchJob that train launches for more than one GPU.

The KFP API and the Kubernetes API are loopback stand-ins: small HTTP servers on 127.0.0.1 that
record every request (headers included) and answer as the real APIs do for these calls.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.helpers import ROOT, run_gir

PARAMS = str(ROOT / "params.yaml")
IMAGE = "registry.example.com/ml/gir:test"


# ----------------------------------------------------------------------------- stand-ins

class KfpApi(BaseHTTPRequestHandler):
    """The KFP v2beta1 API as kfp.Client uses it; healthz reports `version` (v1beta1 too)."""

    version = "2.5.0"
    tag_on_v2 = True
    multi_user = True

    def _reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        path = self.path.split("?")[0]
        self.server.seen.append({"method": self.command, "path": self.path, "body": body,
                                 "headers": {k.lower(): v for k, v in self.headers.items()}})
        out: dict = {}
        if path.endswith("/healthz"):
            out = {"multi_user": self.multi_user, "pipeline_store": "database"}
            if self.tag_on_v2 or "v1beta1" in path:
                out |= {"commit_sha": "abc", "tag_name": self.version}
        elif self.command == "POST" and path.endswith("/experiments"):
            out = {"experiment_id": "exp-1", "display_name": body["display_name"],
                   "namespace": body.get("namespace")}
        elif self.command == "POST" and path.endswith("/runs"):
            out = {"run_id": "run-123", "experiment_id": body["experiment_id"]}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _reply

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(handler class, **class attributes) -> (url, server with .seen)."""
    servers: list = []

    def start(handler, **attrs):
        server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (handler,), attrs))
        server.seen = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def submit(tmp_path, url, *args, check=True, env=None):
    return run_gir("pipeline", "submit", "--host", url, "--params", PARAMS, "--image", IMAGE,
                   *args, cwd=tmp_path, check=check,
                   env={"KF_PIPELINES_TOKEN": "", "KF_PIPELINES_SA_TOKEN_PATH": "",
                        "KF_PIPELINES_COOKIE": "",
                        "MLFLOW_TRACKING_URI": "http://mlflow.example:5000", **(env or {})})


# ----------------------------------------------------------------------------- submit

@pytest.mark.parametrize("auth", ["token", "token-file", "cookie"])
def test_submit_sends_the_namespace_and_the_credential(tmp_path, serve, auth):
    url, server = serve(KfpApi)
    token_file = tmp_path / "token"
    token_file.write_text("sa-token-from-file\n")
    flag, want = {"token": (["--token", "tok-123"], ("authorization", "Bearer tok-123")),
                  "token-file": (["--token-file", str(token_file)],
                                 ("authorization", "Bearer sa-token-from-file")),
                  "cookie": (["--cookie", "authservice_session=s3ss10n"],
                             ("cookie", "authservice_session=s3ss10n"))}[auth]
    proc = submit(tmp_path, url, "--namespace", "team-a", *flag)
    assert proc.stdout.strip() == f"{url}/#/runs/details/run-123"
    assert server.seen[0]["path"] == "/apis/v2beta1/healthz"  # probed before anything is sent
    for request in server.seen:  # every call carries the identity
        assert request["headers"].get(want[0]) == want[1], request["path"]
    posted = {r["path"].split("?")[0]: r["body"] for r in server.seen if r["method"] == "POST"}
    assert posted["/apis/v2beta1/experiments"]["namespace"] == "team-a"
    assert posted["/apis/v2beta1/runs"]["experiment_id"] == "exp-1"
    assert "kubeflow" not in posted["/apis/v2beta1/runs"]["runtime_config"].get("parameters", {})


def test_token_from_the_environment(tmp_path, serve):
    url, server = serve(KfpApi, multi_user=False)
    submit(tmp_path, url, env={"KF_PIPELINES_TOKEN": "env-token"})
    assert {r["headers"].get("authorization") for r in server.seen} == {"Bearer env-token"}


@pytest.mark.parametrize("where", ["v2beta1", "v1beta1"])
def test_a_backend_too_old_for_the_spec_is_refused_in_one_line(tmp_path, serve, where):
    url, server = serve(KfpApi, version="2.3.0", tag_on_v2=where == "v2beta1")
    proc = submit(tmp_path, url, "--namespace", "team-a", "--token", "t", check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "KFP 2.3.0" in lines[0] and ">= 2.5.0" in lines[0] and "secretNameParameter" in lines[0]
    assert all(r["method"] == "GET" and "healthz" in r["path"] for r in server.seen)


def test_multi_user_without_namespace_is_one_line(tmp_path, serve):
    url, server = serve(KfpApi)
    proc = submit(tmp_path, url, "--token", "t", check=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--namespace" in lines[0], proc.stderr
    assert not [r for r in server.seen if r["method"] == "POST"]


def test_two_credentials_are_refused(tmp_path, serve):
    url, _ = serve(KfpApi)
    proc = submit(tmp_path, url, "--token", "a", "--cookie", "b=c", check=False)
    assert proc.returncode != 0 and "one credential" in proc.stderr


# ----------------------------------------------------------------------------- compiled spec

def compile_spec(tmp_path, *sets: str) -> tuple[dict, dict]:
    out = tmp_path / "gir.yaml"
    args = [a for s in sets for a in ("--set", s)]
    run_gir("pipeline", "compile", "-o", str(out), "--params", PARAMS, "--image", IMAGE, *args,
            cwd=tmp_path)
    spec, platform = yaml.safe_load_all(out.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def train_container(spec: dict) -> dict:
    return spec["deploymentSpec"]["executors"]["exec-train"]["container"]


def test_train_has_a_checkpoint_volume_shm_placement_and_timeout(tmp_path):
    spec, k8s = compile_spec(
        tmp_path, "kubeflow.shm_size=16Gi", "kubeflow.train_timeout=3600",
        "kubeflow.node_selector={nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB}",
        "kubeflow.tolerations=[{key: gpu, operator: Equal, value: a100, effect: NoSchedule}]",
        "kubeflow.checkpoint_size=50Gi", "kubeflow.storage_class=fast")
    train = k8s["exec-train"]
    env = {e["name"]: e["value"] for e in train_container(spec)["env"]}
    (mount,) = train["pvcMount"]
    assert env["GIR_CHECKPOINT_ROOT"] == mount["mountPath"]
    # A claim made for this run, deleted after train; train retries (and resumes from it).
    tasks = spec["root"]["dag"]["tasks"]
    assert mount["taskOutputParameter"] == {"producerTask": "createpvc",
                                            "outputParameterKey": "name"}
    pvc_inputs = tasks["createpvc"]["inputs"]["parameters"]
    assert pvc_inputs["size"]["runtimeValue"]["constant"] == "50Gi"
    assert pvc_inputs["storage_class_name"]["runtimeValue"]["constant"] == "fast"
    assert "train" in tasks["deletepvc"]["dependentTasks"]
    assert tasks["train"]["retryPolicy"]["maxRetryCount"] > 0
    assert train["emptyDirMounts"] == [{"volumeName": "dshm", "mountPath": "/dev/shm",
                                        "medium": "Memory", "sizeLimit": "16Gi"}]
    assert train["nodeSelector"]["labels"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert train["tolerations"] == [{"key": "gpu", "operator": "Equal", "value": "a100",
                                     "effect": "NoSchedule"}]
    assert int(train["activeDeadlineSeconds"]) == 3600
    assert train_container(spec)["resources"]["accelerator"]["resourceCount"] == "1"
    # The cluster section is compiled in, not a run parameter.
    assert "kubeflow" not in spec["root"]["inputDefinitions"]["parameters"]
    assert not {"pvcMount", "emptyDirMounts"} & set(k8s.get("exec-evaluate", {}))


def test_an_existing_claim_is_mounted_and_kept(tmp_path):
    spec, k8s = compile_spec(tmp_path, "kubeflow.checkpoint_pvc=team-checkpoints")
    assert not {"createpvc", "deletepvc"} & set(spec["root"]["dag"]["tasks"])
    (mount,) = k8s["exec-train"]["pvcMount"]
    assert mount["pvcNameParameter"]["runtimeValue"]["constant"] == "team-checkpoints"


def test_more_than_one_gpu_makes_train_a_pytorchjob_launcher(tmp_path):
    spec, k8s = compile_spec(tmp_path, "train.distributed.nodes=2",
                             "train.distributed.gpus_per_node=4",
                             "kubeflow.access_mode=ReadWriteMany", "kubeflow.shm_size=32Gi",
                             "kubeflow.node_selector={pool: gpu}")
    container = train_container(spec)
    assert "accelerator" not in container.get("resources", {})  # it only launches and waits
    settings = json.loads({e["name"]: e["value"] for e in container["env"]}["GIR_PYTORCHJOB"])
    assert settings["image"] == IMAGE and settings["shm_size"] == "32Gi"
    assert settings["node_selector"] == {"pool": "gpu"}       # the workers', not the launcher's
    assert "nodeSelector" not in k8s["exec-train"]
    assert settings["secrets"]["gir-mlflow"] == ["MLFLOW_TRACKING_URI",
                                                "MLFLOW_TRACKING_USERNAME",
                                                "MLFLOW_TRACKING_PASSWORD"]
    tasks = spec["root"]["dag"]["tasks"]
    claim = tasks["train"]["inputs"]["parameters"]["checkpoint_pvc"]["taskOutputParameter"]
    assert claim == {"producerTask": "createpvc", "outputParameterKey": "name"}
    modes = tasks["createpvc"]["inputs"]["parameters"]["access_modes"]["runtimeValue"]
    assert modes["constant"] == ["ReadWriteMany"]
    assert k8s["exec-train"]["pvcMount"]


# ----------------------------------------------------------------------------- the PyTorchJob

def job_spec(tmp_path, nodes=2, gpus=4, **kw):
    from gir.steps.pytorchjob import JobSpec, job_name

    work = str(tmp_path / "ckpt" / "run-1-abc")
    return JobSpec(name=job_name(work), namespace="team-a", image=IMAGE, claim="ckpt-claim",
                   mount=str(tmp_path / "ckpt"), workdir=work, nodes=nodes, gpus_per_node=gpus,
                   shm_size="32Gi", node_selector={"pool": "gpu"},
                   tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}],
                   timeout=7200, secrets={"gir-mlflow": ["MLFLOW_TRACKING_URI"]},
                   env={"GIR_KFP_RUN_ID": "run-1"}, **kw)


def test_manifest_has_the_replicas_gpus_volume_and_placement(tmp_path):
    from gir.steps.pytorchjob import manifest

    s = job_spec(tmp_path)
    m = manifest(s)
    assert (m["apiVersion"], m["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    assert m["metadata"]["namespace"] == "team-a" and len(m["metadata"]["name"]) <= 63
    replicas = m["spec"]["pytorchReplicaSpecs"]
    assert {k: v["replicas"] for k, v in replicas.items()} == {"Master": 1, "Worker": 1}
    assert m["spec"]["runPolicy"]["activeDeadlineSeconds"] == 7200
    for role in replicas.values():
        pod = role["template"]["spec"]
        (c,) = pod["containers"]
        assert c["name"] == "pytorch" and c["image"] == IMAGE
        assert c["resources"]["limits"] == {"nvidia.com/gpu": "4"}
        assert "--nnodes 2 --nproc_per_node 4" in c["command"][-1]
        assert f"--checkpoints {s.workdir}/checkpoints" in c["command"][-1]
        claims = {v["name"]: v for v in pod["volumes"]}
        assert claims["checkpoints"]["persistentVolumeClaim"]["claimName"] == "ckpt-claim"
        assert claims["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
        assert {m["mountPath"] for m in c["volumeMounts"]} == {s.mount, "/dev/shm"}
        assert pod["nodeSelector"] == {"pool": "gpu"}
        env = {e["name"]: e for e in c["env"]}
        assert env["GIR_KFP_RUN_ID"]["value"] == "run-1"
        assert env["MLFLOW_TRACKING_URI"]["valueFrom"]["secretKeyRef"]["name"] == "gir-mlflow"
    one_node = manifest(job_spec(tmp_path, nodes=1, gpus=8))["spec"]["pytorchReplicaSpecs"]
    assert list(one_node) == ["Master"]


def test_the_job_name_is_the_same_for_a_retried_attempt(tmp_path):
    from gir.steps.pytorchjob import job_name

    assert job_name("/gir/checkpoints/run-1-abc") == job_name("/gir/checkpoints/run-1-abc")
    assert job_name("/gir/checkpoints/run-1-abc") != job_name("/gir/checkpoints/run-2-abc")


def test_several_nodes_on_a_single_node_claim_is_one_line(tmp_path):
    proc = run_gir("pipeline", "compile", "-o", str(tmp_path / "x.yaml"), "--params", PARAMS,
                   "--set", "train.distributed.nodes=2", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "kubeflow.access_mode=ReadWriteMany" in proc.stderr
    assert not (tmp_path / "x.yaml").exists()

"""The PyTorchJob launcher (gir.steps.pytorchjob) against a loopback Kubernetes API.

The stand-in answers the custom-object calls of the Kubernetes Python client and plays the
Training Operator: on create, it starts every replica's container command as a local process,
with the environment the operator gives a pod (RANK, MASTER_ADDR, MASTER_PORT) and the job's
env, then reports Succeeded or Failed from their exit codes. So the workers run the real entry
point (`torchrun ... -m gir train`, gloo on CPU) on the data the launcher staged.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import tiny_params

PREFIX = "/apis/kubeflow.org/v1/namespaces/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_replicas(body: dict) -> tuple[str, str]:
    """Run every replica's container like the operator would; ('Succeeded'|'Failed', message)."""
    port, procs = free_port(), []
    rank = 0
    for role in ("Master", "Worker"):
        spec = body["spec"]["pytorchReplicaSpecs"].get(role)
        for _ in range(spec["replicas"] if spec else 0):
            (c,) = spec["template"]["spec"]["containers"]
            env = {**os.environ, **{e["name"]: e["value"] for e in c["env"] if "value" in e},
                   "RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                   "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                   "OMP_NUM_THREADS": "1"}
            procs.append(subprocess.Popen(c["command"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
            rank += 1
    errors = [p.communicate(timeout=600)[1] for p in procs]
    failed = [e[-2000:] for p, e in zip(procs, errors) if p.returncode]
    return ("Failed", failed[0]) if failed else ("Succeeded", "")


class K8sApi(BaseHTTPRequestHandler):
    """pytorchjobs create/get/delete; `operator(body)` plays the Training Operator."""

    def _send(self, code: int, out: dict):
        data = json.dumps(out).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(("POST", self.path, body))
        name = body["metadata"]["name"]
        if name in self.server.jobs:
            return self._send(409, {"kind": "Status", "reason": "AlreadyExists", "code": 409})
        job = {**body, "status": {"conditions": [{"type": "Running", "status": "True"}]}}
        self.server.jobs[name] = job

        def play():
            state, message = self.server.operator(body)
            job["status"]["conditions"].append({"type": state, "status": "True",
                                                "message": message})
        threading.Thread(target=play, daemon=True).start()
        self._send(201, body)

    def do_GET(self):
        self.server.seen.append(("GET", self.path, None))
        job = self.server.jobs.get(self.path.rsplit("/", 1)[-1])
        self._send(200, job) if job else self._send(404, {"kind": "Status", "code": 404})

    def do_DELETE(self):
        self.server.seen.append(("DELETE", self.path, None))
        self.server.jobs.pop(self.path.rsplit("/", 1)[-1], None)
        self._send(200, {"kind": "Status", "status": "Success"})

    def log_message(self, *args):
        pass


@pytest.fixture
def k8s():
    """(kubernetes ApiClient for the stand-in, its server: .jobs, .seen, .operator)."""
    from kubernetes import client

    server = ThreadingHTTPServer(("127.0.0.1", 0), K8sApi)
    server.jobs, server.seen, server.operator = {}, [], run_replicas
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = client.Configuration(host=f"http://127.0.0.1:{server.server_port}")
    yield client.ApiClient(cfg), server
    server.shutdown()
    server.server_close()


def spec_for(tmp_path, params, claim="ckpt"):
    from gir.steps.pytorchjob import JobSpec, job_name

    work = str(tmp_path / "volume" / "run-1-abc")
    d = params.train.distributed
    return JobSpec(name=job_name(work), namespace="team-a", image="gir:test", claim=claim,
                   mount=str(tmp_path / "volume"), workdir=work, nodes=d.nodes,
                   gpus_per_node=d.gpus_per_node, env={"GIR_KFP_RUN_ID": "run-1"})


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["train.distributed.gpus_per_node=2",
                                    "train.distributed.nodes=2"])
def test_workers_train_through_torchrun_and_the_model_is_collected(tiny_run, tmp_path,
                                                                   mlflow_uri, k8s, layout):
    import mlflow

    from gir.steps.pytorchjob import manifest, train_on_pytorchjob

    api, server = k8s
    params = tiny_params(layout, "train.steps=4", "train.checkpoint_every=2",
                         "train.log_every=1", "train.image_every=100")
    data = tiny_run.root / "data"
    spec = spec_for(tmp_path, params)
    out = tmp_path / "generator"
    train_on_pytorchjob(params, data / "processed", data / "split/manifest.csv", out,
                        tmp_path / "report", spec, api=api, poll=0.2)

    (created,) = [b for m, _, b in server.seen if m == "POST"]
    assert created == manifest(spec)  # what the launcher sent is what the replicas ran
    assert server.seen[0][1] == f"{PREFIX}team-a/pytorchjobs"
    assert (out / "generator.pt").is_file()
    assert (tmp_path / "report" / "log.csv").read_text().count("\n") == 5  # header + 4 steps
    (run,) = mlflow.search_runs(experiment_names=["gir"], output_format="list")
    assert run.data.tags["world_size"] == "2" and run.data.tags["engine"] == "kfp"
    assert run.data.metrics["train_steps"] == 4


def test_a_failed_job_is_one_error_and_a_retry_recreates_it(tmp_path, k8s):
    from gir.errors import GirError
    from gir.steps.pytorchjob import manifest, run_job

    api, server = k8s
    params = tiny_params("train.distributed.nodes=2")
    body = manifest(spec_for(tmp_path, params))
    server.operator = lambda b: ("Failed", "Master exited with code 1")
    with pytest.raises(GirError, match="failed: Master exited with code 1"):
        run_job(body, api, poll=0.05)
    # The retried task finds the failed job under the same name: deleted, created again.
    server.operator = lambda b: ("Succeeded", "")
    job = run_job(body, api, poll=0.05)
    assert job["status"]["conditions"][-1]["type"] == "Succeeded"
    assert [m for m, _, _ in server.seen if m != "GET"] == ["POST", "POST", "DELETE", "POST"]


def test_more_than_one_gpu_without_a_volume_is_one_error(tmp_path):
    from gir.errors import GirError
    from gir.steps.pytorchjob import train_on_pytorchjob, wants_pytorchjob

    params = tiny_params("train.distributed.gpus_per_node=2")
    assert wants_pytorchjob(params) and not wants_pytorchjob(tiny_params())
    with pytest.raises(GirError, match="torchrun --nproc_per_node"):
        train_on_pytorchjob(params, tmp_path, tmp_path / "m.csv", tmp_path / "g",
                            tmp_path / "r", spec_for(tmp_path, params, claim=""))

"""What several test files share: the tiny config, running `gir`, loopback servers, a stand-in
model, DVC and training-run helpers. Import it as `from tests.helpers import ...`; no test file
imports another test file, and conftest.py only holds fixtures.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]

# A config small enough for seconds on 2 CPU cores, as overrides of params.yaml (tiny_params),
# or as `--set` arguments of CLI, DVC and KFP runs.
TINY = [
    "data.sample.images=[astronaut, coffee, chelsea, rocket, retina]",
    "data.sample.max_side=128",
    "data.synth.per_image=3",
    "preprocess.max_side=128",
    "split.train=0.6", "split.val=0.2", "split.test=0.2", "split.min_test_scenes=1",
    "model.generator_args={width: 8, enc_blocks: [1, 1], middle_blocks: 1, dec_blocks: [1, 1]}",
    "model.discriminator_args={base: 8, layers: 2, spectral_norm: true}",
    "train.steps=12", "train.batch_size=2", "train.crop=64", "train.adversarial_start=4",
    "train.log_every=4", "train.image_every=6", "train.checkpoint_every=6",
    "detect.fit_per_image=2", "detect.eval_per_image=2", "train.init=none",
    # No shipped-model floor: a 12-step model from scratch becomes the first champion.
    "evaluate.references=[blurred, unsharp, wiener]",
]

# Tiny constructor arguments of every generator, for shape and export tests.
TINY_ARGS = {
    "nafnet": {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]},
    "fourier_unet": {"width": 8, "depth": 2, "middle_blocks": 1, "every_level": True},
    "resnet": {"width": 8, "n_blocks": 2},
}

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def tiny_params(*extra: str):
    """The project's params.yaml with TINY and extra overrides: tests run on the real values."""
    from gir.config import load_params

    return load_params(ROOT / "params.yaml", TINY + list(extra))


def run_gir(*args: str, cwd: Path | str, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `gir` console entry point in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "gir", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"gir {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(cmd: list[str], ready_url: str, log: Path, *, cwd: Path | str = ROOT,
            env: dict | None = None, timeout: float = 120) -> Iterator[subprocess.Popen]:
    """Start a server process (in its own process group), poll ready_url until it answers, and
    stop the whole group afterwards. A server that dies or never answers fails with its log."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=fh, start_new_session=True,
                                env={**os.environ, **(env or {})})
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=1)
                break
            except (OSError, urllib.error.URLError):
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"{cmd[:4]} did not come up:\n{log.read_text()}")
                time.sleep(0.5)
        yield proc
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


class StandInDeblurrer:
    """A recognisable stand-in model: adds `shift` per self-ensemble view, so an output shows
    that it went through the model and how many views ran, and counts its calls."""

    ensemble = 1

    def __init__(self, shift: int = 1):
        self.shift, self.calls = shift, 0

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.clip(rgb.astype(int) + self.shift * self.ensemble, 0, 255).astype(np.uint8)


def dvc(*args: str, cwd: Path | str) -> str:
    """Run the venv's dvc; fail with its output."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    proc = subprocess.run([str(Path(bin_dir) / "dvc"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"dvc {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def dvc_project(tmp_path: Path, params) -> Path:
    """A git + DVC repo holding a copy of gir/, dvc.yaml and the given params: stages run the
    copy, so a test may change code or params without touching the checkout."""
    from gir.config import to_dict

    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(ROOT / "gir", repo / "gir", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", repo)
    (repo / "params.yaml").write_text(yaml.safe_dump(to_dict(params)))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc("init", "-q", cwd=repo)
    dvc("config", "core.analytics", "false", cwd=repo)
    return repo


# Training runs that are killed and resumed: enough steps to kill one midway, a loss per step.
RESUME = ["train.steps=40", "train.batch_size=4", "train.log_every=1", "train.checkpoint_every=5",
          "train.image_every=1000", "train.adversarial_start=3", "train.loss.adversarial=lsgan"]
LOSSES = ["loss_g", "loss_content", "loss_fft", "loss_adv", "loss_d", "lr"]


def write_params(path: Path, *extra: str) -> Path:
    """A params file of the tiny config for resumable training runs."""
    from gir.config import to_dict

    path.write_text(yaml.safe_dump(to_dict(tiny_params(*RESUME, *extra))))
    return path


def train_cmd(root: Path, params: Path, out: Path, *extra: str) -> list[str]:
    """`gir train` on a tiny run's data, writing under out."""
    data = root / "data"
    return [sys.executable, "-m", "gir", "train", "--params", str(params),
            "--data", str(data / "processed"), "--split", str(data / "split/manifest.csv"),
            "--out", str(out / "models"), "--report", str(out / "report"),
            "--checkpoints", str(out / "ckpt"), *extra]


def read_log(path: Path) -> dict[int, dict]:
    """A training log CSV by step."""
    with open(path) as fh:
        return {int(r["step"]): r for r in csv.DictReader(fh)}


class KfpRecorder(BaseHTTPRequestHandler):
    """Answers like the KFP v2beta1 API just enough for kfp.Client, recording each request."""

    status = 200

    def _reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        self.server.seen.append((self.command, self.path.split("?")[0], body))
        path = self.path.split("?")[0]
        if self.command == "POST" and path.endswith("/experiments"):
            out = {"experiment_id": "exp-1", "display_name": body["display_name"]}
        elif self.command == "POST" and path.endswith("/runs"):
            out = {"run_id": "run-123", "experiment_id": body["experiment_id"]}
        else:
            out = {}
        data = json.dumps(out if self.status == 200 else {"message": "not here"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _reply

    def log_message(self, *args):
        pass


S3_CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def moto_s3(endpoint_env: bool = True):
    """(endpoint URL, boto3 client) of a fresh moto S3 server on 127.0.0.1, with test AWS
    credentials in the environment (and AWS_ENDPOINT_URL pointing at it when endpoint_env;
    else unset, for code that must be given the endpoint); the environment is restored after."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = {k: os.environ.get(k) for k in [*S3_CREDS, "AWS_ENDPOINT_URL"]}
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ.update(S3_CREDS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if endpoint_env:
        os.environ["AWS_ENDPOINT_URL"] = url
    try:
        yield url, boto3.client("s3", endpoint_url=url)
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

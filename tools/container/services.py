"""The cluster's services, stood in for on loopback: moto's S3 server and a real `mlflow server`
(sqlite backend store, artifacts in S3), for `make container-demo`.

python services.py WORKDIR  -> starts both, creates the buckets, writes WORKDIR/env.sh (the
variables a pod gets from the gir-s3 / gir-mlflow secrets) and WORKDIR/pids, then waits.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BUCKETS = ("gir-mlflow", "gir-photos")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"container-demo: error: {what} exited (code {proc.returncode})")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    sys.exit(f"container-demo: error: {what} does not answer at {url}")


def main(work: Path) -> None:
    from moto.server import ThreadedMotoServer

    s3_port, mlflow_port = free_port(), free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port)
    s3.start()
    endpoint = f"http://127.0.0.1:{s3_port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
           "MLFLOW_S3_ENDPOINT_URL": endpoint,
           "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}"}
    os.environ.update(env)
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    for bucket in BUCKETS:
        client.create_bucket(Bucket=bucket)
    log = open(work / "mlflow-server.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
         "--port", str(mlflow_port), "--workers", "2",
         "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
         "--default-artifact-root", "s3://gir-mlflow/artifacts", "--no-serve-artifacts"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (work / "pids").write_text(f"{server.pid}\n")

    def stop(*_):  # the server has its own process group (its workers): stop all of it
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        s3.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)   # before waiting: a stop while it starts stops it too
    signal.signal(signal.SIGINT, stop)
    wait_http(env["MLFLOW_TRACKING_URI"] + "/health", server, "mlflow server")
    (work / "env.sh").write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    while server.poll() is None:
        time.sleep(1)
    sys.exit("container-demo: error: mlflow server exited")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

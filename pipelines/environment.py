"""What each task's container gets from its environment, on a cluster and in local containers.

Secrets: every setting gir or its libraries read from the environment comes from a Kubernetes
secret (secret key = variable name). Only MLFLOW_TRACKING_URI is required: a pod without it
does not start (and the step refuses a file or sqlite URI, gir.tracking.runs). The rest are
optional: IAM roles stand in for AWS keys, AWS S3 needs no endpoint, a server may need no
login, the unsplash source is one of several.

Provenance: every task gets the engine (GIR_ENGINE), the image it was compiled for
(GIR_IMAGE_REF, and GIR_IMAGE_DIGEST when the reference or the local engine names one), the
submitter's commit (GIR_SUBMIT_COMMIT) and the fingerprint of the component code
(GIR_CODE_HASH), which the step checks against the image's own (components/settings.py).
"""

from __future__ import annotations

import os
from pathlib import Path

S3_SECRET = os.environ.get("GIR_S3_SECRET", "gir-s3")
MLFLOW_SECRET = os.environ.get("GIR_MLFLOW_SECRET", "gir-mlflow")
UNSPLASH_SECRET = os.environ.get("GIR_UNSPLASH_SECRET", "gir-unsplash")
SECRET_KEYS = {
    S3_SECRET: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                "AWS_DEFAULT_REGION", "MLFLOW_S3_ENDPOINT_URL"],
    MLFLOW_SECRET: ["MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
                    "MLFLOW_TRACKING_PASSWORD"],
    UNSPLASH_SECRET: ["UNSPLASH_ACCESS_KEY"],
}
REQUIRED_KEYS = {"MLFLOW_TRACKING_URI"}
# Every task may touch S3 (data, MLflow's artifact store) and MLflow (runs, the registry);
# only ingest reads the unsplash key.
TASK_SECRETS = [S3_SECRET, MLFLOW_SECRET]
SECRETS_FOR = {"ingest": TASK_SECRETS + [UNSPLASH_SECRET]}


def secrets_for(task_name: str) -> list[str]:
    return SECRETS_FOR.get(task_name, TASK_SECRETS)


def use_secrets(task, task_name: str) -> None:
    """Map the task's secrets to env vars: required keys, then the optional ones."""
    from kfp import kubernetes

    for secret in secrets_for(task_name):
        keys = SECRET_KEYS[secret]
        for optional in (False, True):
            chosen = {k: k for k in keys if (k not in REQUIRED_KEYS) == optional}
            if chosen:
                kubernetes.use_secret_as_env(task, secret_name=secret,
                                             secret_key_to_env=chosen, optional=optional)


def task_env(engine: str, image: str, digest: str = "") -> dict[str, str]:
    """The engine and provenance settings every task gets (see the module docstring)."""
    import components
    from components.fingerprint import code_hash

    root = Path(components.__file__).resolve().parents[1]
    if not digest and "@sha256:" in image:
        digest = image.split("@", 1)[1]
    digest = digest or (_LOCAL_IDS.get(image, "") if engine == "kfp-docker" else "")
    env = {"GIR_ENGINE": engine, "GIR_IMAGE_REF": image, "GIR_SUBMIT_COMMIT": _commit(root),
           "GIR_CODE_HASH": code_hash(root)}
    if digest:
        env["GIR_IMAGE_DIGEST"] = digest
    return env


def _commit(root: Path) -> str:
    """The submitter's commit: of the checkout the component code comes from, wherever the
    command runs (-dirty when its tracked files differ)."""
    from gir.tracking.runs import git_commit

    here = os.getcwd()
    try:
        os.chdir(root)
        return git_commit()
    finally:
        os.chdir(here)


def local_secret_values(task_name: str) -> dict[str, str]:
    """For local containers, the stand-in for the secrets: the same variables from this
    process's environment (only those set)."""
    return {k: os.environ[k] for s in secrets_for(task_name) for k in SECRET_KEYS[s]
            if os.environ.get(k)}


def configure(task, task_name: str, engine: str, image: str, digest: str = "") -> None:
    """Secrets (cluster) or their values (local containers), plus the task env."""
    env = task_env(engine, image, digest)
    if engine == "kfp-docker":
        env.update(local_secret_values(task_name))
    else:
        use_secrets(task, task_name)
    for name, value in env.items():
        task.set_env_variable(name, value)


_LOCAL_IDS: dict[str, str] = {}   # image name -> its id in the local docker engine


def without_file_tracking(defaults: dict) -> dict:
    """params with a file or sqlite mlflow.tracking_uri emptied: compiled for a cluster, the
    server comes from the gir-mlflow secret, and the step refuses anything else."""
    from gir.tracking.runs import require_server_uri

    uri = (defaults.get("mlflow") or {}).get("tracking_uri", "")
    try:
        require_server_uri(uri, "kfp")
        return defaults
    except Exception:  # noqa: BLE001 - GirError: not a server, so not compiled in
        return {**defaults, "mlflow": {**defaults["mlflow"], "tracking_uri": ""}}


def check_submit_tracking(values: dict, engine: str = "kfp") -> str:
    """Before submitting: the MLflow server the steps will use ($MLFLOW_TRACKING_URI or
    mlflow.tracking_uri), refused in one line when it is missing, a file or sqlite."""
    from gir.tracking.runs import require_server_uri

    uri = os.environ.get("MLFLOW_TRACKING_URI") or (values.get("mlflow") or {}).get(
        "tracking_uri", "")
    return require_server_uri(uri, engine)


def check_docker_run(image: str) -> None:
    """Before a local run in containers, each a one-line GirError: a docker engine answers,
    the image is there, its code is this checkout's, and MLflow is a server that answers."""
    import urllib.request

    import components
    from components.fingerprint import code_hash
    from gir.errors import GirError

    uri = check_submit_tracking({}, "kfp-docker")
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - no engine, whatever the reason
        raise GirError("no container engine: the docker API does not answer "
                       f"({type(exc).__name__}); start dockerd or set DOCKER_HOST") from None
    try:
        found = client.images.get(image)
    except Exception:  # noqa: BLE001 - ImageNotFound or an API error
        raise GirError(f"image {image} is not in the docker engine: make image, then load "
                       "it (tools/container/load.sh) or pass --image") from None
    mine = code_hash(Path(components.__file__).resolve().parents[1])
    theirs = (found.labels or {}).get("gir.code", "")
    if theirs != mine:
        raise GirError(f"the component code (code {mine}) does not match image {image}'s "
                       f"gir (code {theirs or 'unknown'}): rebuild it (make image)")
    _LOCAL_IDS[image] = found.id
    if uri.startswith("http"):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10).close()
        except OSError as exc:
            raise GirError(f"MLflow server {uri} does not answer ({exc}): start it or set "
                           "MLFLOW_TRACKING_URI") from None

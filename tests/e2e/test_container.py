"""Containers (issue 33), what can be checked without an engine: both compiled pipelines map
every environment setting from a Kubernetes secret (optional where it may be absent), carry
the provenance env, and no step's tracking URI can be sqlite or a file; refusals before any
container starts are one line. The container run itself: make container-demo (.ci/run)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.helpers import ROOT, run_gir

PARAMS = str(ROOT / "params.yaml")
IMAGE = "registry.example.com/ml/gir@sha256:" + "ab" * 32
# Every setting gir or its libraries read from a pod's environment, and whether it may be absent.
SECRET_ENV = {"AWS_ACCESS_KEY_ID": True, "AWS_SECRET_ACCESS_KEY": True, "AWS_ENDPOINT_URL": True,
              "AWS_DEFAULT_REGION": True, "MLFLOW_S3_ENDPOINT_URL": True,
              "MLFLOW_TRACKING_URI": False, "MLFLOW_TRACKING_USERNAME": True,
              "MLFLOW_TRACKING_PASSWORD": True}
PROVENANCE = {"GIR_ENGINE", "GIR_IMAGE_REF", "GIR_IMAGE_DIGEST", "GIR_SUBMIT_COMMIT",
              "GIR_CODE_HASH"}


def compiled(tmp_path, pipeline: str) -> tuple[dict, dict]:
    out = tmp_path / f"{pipeline}.yaml"
    run_gir("pipeline", "compile", "--pipeline", pipeline, "-o", str(out), "--params", PARAMS,
            "--image", IMAGE, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": ""})
    spec, platform = yaml.safe_load_all(out.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def secret_env(k8s: dict, executor: str) -> dict[str, bool]:
    """env var -> optional, from the executor's secretAsEnv entries."""
    return {e["envVar"]: s["optional"] for s in k8s.get(executor, {}).get("secretAsEnv", [])
            for e in s["keyToEnv"]}


@pytest.mark.parametrize("pipeline", ["train", "rectify"])
def test_every_setting_from_a_secret_and_no_file_tracking(tmp_path, pipeline):
    spec, k8s = compiled(tmp_path, pipeline)
    executors = {name: ex for name, ex in spec["deploymentSpec"]["executors"].items()
                 if ex["container"]["image"] == IMAGE}   # not KFP's own PVC stubs
    assert len(executors) == (8 if pipeline == "train" else 3)
    for name, ex in executors.items():
        mapped = secret_env(k8s, name)
        assert {k: mapped.get(k) for k in SECRET_ENV} == SECRET_ENV, name
        if name == "exec-ingest":
            assert mapped["UNSPLASH_ACCESS_KEY"] is True
        env = {e["name"]: e["value"] for e in ex["container"].get("env", [])}
        assert PROVENANCE <= set(env), name
        assert env["GIR_ENGINE"] == "kfp" and env["GIR_IMAGE_REF"] == IMAGE
        assert env["GIR_IMAGE_DIGEST"] == IMAGE.split("@")[1]
        assert re.fullmatch(r"[0-9a-f]{16}", env["GIR_CODE_HASH"])
        assert not set(env) & set(SECRET_ENV), f"{name}: a secret's value compiled in"
    # The pipeline's own default cannot name a file store either (params.yaml's is sqlite).
    for param in spec["root"]["inputDefinitions"]["parameters"].values():
        text = str(param.get("defaultValue", ""))
        assert "sqlite:" not in text and "file:" not in text


def test_the_step_refuses_a_file_store_on_kfp(monkeypatch):
    """In a pod (GIR_ENGINE=kfp) the tracking URI from the secret must be a server."""
    from gir.config import MlflowConfig
    from gir.errors import GirError
    from gir.tracking.runs import tracking_uri

    monkeypatch.setenv("GIR_ENGINE", "kfp")
    for uri in ("", "sqlite:///mlflow.db", "file:///tmp/mlruns", "mlruns"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        with pytest.raises(GirError, match="lost with it"):
            tracking_uri(MlflowConfig(tracking_uri=uri or "sqlite:///mlflow.db"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert tracking_uri(MlflowConfig()) == "http://mlflow:5000"
    monkeypatch.setenv("GIR_ENGINE", "dvc")   # elsewhere the embedded default still works
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(MlflowConfig()) == MlflowConfig().tracking_uri


def test_preflight_refuses_other_code_and_file_tracking_in_one_line(tmp_path):
    """The first thing a step does in its container: one line, exit 2, no traceback."""
    import subprocess
    import sys

    code = "from components.settings import preflight; preflight()"
    cases = {"GIR_CODE_HASH": ("0" * 16, "does not match the image's gir"),
             "MLFLOW_TRACKING_URI": ("sqlite:///mlflow.db", "lost with it")}
    for var, (value, message) in cases.items():
        env = {"PATH": "/usr/bin:/bin", "GIR_ENGINE": "kfp",
               "MLFLOW_TRACKING_URI": "http://mlflow:5000", var: value}
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and message in lines[0], proc.stderr


@pytest.mark.parametrize("uri", ["", "sqlite:///mlflow.db"])
def test_docker_runner_and_submit_refuse_a_file_store_before_starting(tmp_path, uri):
    for args in (["run", "--local", "--runner", "docker", "--root", str(tmp_path / "r")],
                 ["submit", "--host", "http://127.0.0.1:9"]):
        proc = run_gir("pipeline", *args, "--params", PARAMS, cwd=tmp_path, check=False,
                       env={"MLFLOW_TRACKING_URI": uri})
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        errors = [x for x in proc.stderr.splitlines() if "error" in x]
        assert len(errors) == 1 and "lost with it" in errors[0], proc.stderr
    assert not (tmp_path / "r").exists()


def test_docker_runner_without_an_engine_is_one_line(tmp_path):
    proc = run_gir("pipeline", "run", "--local", "--runner", "docker", "--params", PARAMS,
                   "--root", str(tmp_path / "r"), cwd=tmp_path, check=False,
                   env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
                        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [x for x in proc.stderr.splitlines() if "error" in x]
    assert len(errors) == 1 and "no container engine" in errors[0], proc.stderr


def test_locks_pin_every_dependency_with_hashes():
    """requirements-dev.lock (make install) and requirements.lock (the image) pin every
    dependency of pyproject.toml, with hashes, at the same versions."""
    import tomllib

    from packaging.requirements import Requirement

    def pins(path):
        text = (ROOT / path).read_text()
        blocks = re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:\w+)+)",
                            text, re.M)
        assert len(blocks) == len(re.findall(r"^[A-Za-z0-9][\w.-]*==", text, re.M)), path
        return {re.sub(r"[-_.]+", "-", n).lower(): v for n, v, _ in blocks}

    dev, image = pins("requirements-dev.lock"), pins("requirements.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec, lock in [(project["dependencies"], image),
                       (project["optional-dependencies"]["test"], dev)]:
        for req in map(Requirement, spec):
            name = re.sub(r"[-_.]+", "-", req.name).lower()
            assert name in lock, f"{name} not locked: run tools/container/lock.sh"
            assert req.specifier.contains(lock[name], prereleases=True), (name, lock[name])
    assert all(dev[n] == v for n, v in image.items())

"""Kubeflow: the compiled spec's structure, and `gir pipeline submit` against a recording server.

The spec is checked by parsing the YAML KFP writes (not by grepping it): seven steps chained by
their dependencies plus the independent detector branch, the GPU on the training task only,
retries on the data steps, the image on every executor, and params.yaml's sections as the
pipeline's parameters and defaults.
"""

from __future__ import annotations

import json
import socket

import pytest
import yaml

from gir.config import params_from_struct, to_dict
from pipelines import param_defaults
from tests.helpers import ROOT, run_gir

STEPS = ["ingest", "validate", "preprocess", "split", "train", "evaluate", "register"]
DATA_STEPS = STEPS[:4]
ALL_TASKS = STEPS + ["detector"]   # the blur detector: an independent branch
IMAGE = "registry.example.com/ml/gir:test"
PARAMS = str(ROOT / "params.yaml")
SERVER = {"MLFLOW_TRACKING_URI": "http://mlflow.example:5000"}   # submit refuses a file store


def compile_spec(tmp_path, *args: str, env: dict | None = None) -> tuple[dict, dict]:
    out = tmp_path / "gir.yaml"
    run_gir("pipeline", "compile", "-o", str(out), "--params", PARAMS, *args, cwd=tmp_path,
            env=env)
    spec, platform = yaml.safe_load_all(out.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def executor(spec: dict, task: str) -> dict:
    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]][
        "executorLabel"]
    return spec["deploymentSpec"]["executors"][label]["container"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_spec(tmp_path_factory.mktemp("compile"), "--image", IMAGE)


def test_seven_steps_in_order_and_the_detector_beside_them(compiled):
    tasks = compiled[0]["root"]["dag"]["tasks"]
    # + train's per-run checkpoint volume (tests/pipelines/test_kubeflow_cluster.py)
    assert sorted(tasks) == sorted(ALL_TASKS + ["createpvc", "deletepvc"])
    for before, after in zip(STEPS, STEPS[1:]):
        assert before in tasks[after].get("dependentTasks", []), (before, after)
    assert "dependentTasks" not in tasks["ingest"]
    assert "dependentTasks" not in tasks["detector"]
    # No run id among the detector's inputs: KFP's cache then keeps it while its params and
    # image stay the same, instead of registering a new gir-detector version every run.
    assert set(tasks["detector"]["inputs"]["parameters"]) == {"detect", "data", "mlflow",
                                                              "engine"}


def test_gpu_toleration_and_requests_on_train_only(compiled):
    spec, k8s = compiled
    for step in ALL_TASKS:
        resources = executor(spec, step).get("resources", {})
        assert resources.get("resourceCpuRequest") and resources.get("resourceMemoryRequest")
        gpu = resources.get("accelerator")
        tolerations = k8s.get(f"exec-{step}", {}).get("tolerations")
        if step == "train":
            assert gpu["resourceType"] == "nvidia.com/gpu" and gpu["resourceCount"] == "1"
            assert tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                    "effect": "NoSchedule"}]
        else:
            assert gpu is None and tolerations is None, step


def test_retries_on_data_steps_caching_and_image_everywhere(compiled):
    spec, _ = compiled
    tasks = spec["root"]["dag"]["tasks"]
    for step in ALL_TASKS:
        assert tasks[step]["cachingOptions"]["enableCache"] is True
        retry = tasks[step].get("retryPolicy")
        retried = step in DATA_STEPS or step == "train"  # train resumes its checkpoint
        assert (retry["maxRetryCount"] > 0) if retried else retry is None, step
    images = {e["container"]["image"] for n, e in spec["deploymentSpec"]["executors"].items()
              if not n.endswith("pvc")}   # CreatePVC/DeletePVC: the KFP driver's own steps
    assert images == {IMAGE}


def test_credentials_come_from_secrets(compiled):
    _, k8s = compiled
    def env_from_secrets(step):
        return {e["envVar"]: s["secretName"] for s in k8s.get(f"exec-{step}", {}).get(
            "secretAsEnv", []) for e in s["keyToEnv"]}
    assert env_from_secrets("train")["MLFLOW_TRACKING_URI"] == "gir-mlflow"
    assert env_from_secrets("register")["AWS_SECRET_ACCESS_KEY"] == "gir-s3"
    assert env_from_secrets("ingest")["AWS_ACCESS_KEY_ID"] == "gir-s3"
    assert env_from_secrets("detector")["MLFLOW_TRACKING_URI"] == "gir-mlflow"


def test_parameters_are_params_yaml(compiled):
    """Same names and defaults as params.yaml; train is tagged engine=kfp with the run id."""
    spec, _ = compiled
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    defaults = {k: v["defaultValue"] for k, v in inputs.items()}
    expected = param_defaults(PARAMS)
    # params.yaml's sqlite store would be a file in the pod: compiled out (the secret's wins)
    expected["mlflow"]["tracking_uri"] = ""
    assert to_dict(params_from_struct(defaults)) == expected
    train_inputs = spec["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert train_inputs["engine"]["runtimeValue"]["constant"] == "kfp"
    assert train_inputs["kfp_run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    # Each step gets only its sections, so KFP's cache keeps data steps when train.* changes.
    assert set(spec["root"]["dag"]["tasks"]["ingest"]["inputs"]["parameters"]) == {
        "seed", "data", "listing"}


def test_ingest_cache_key_follows_the_source_listing(tmp_path):
    """A photo added to a folder source changes ingest's `listing` input (its KFP cache key);
    compiling again with nothing changed gives the same key."""
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 24), "red").save(photos / "a.png")

    def key() -> str:
        spec, _ = compile_spec(tmp_path, "--set", "data.source=folder",
                               "--set", f"data.folder.path={photos}")
        inputs = spec["root"]["dag"]["tasks"]["ingest"]["inputs"]["parameters"]
        return inputs["listing"]["runtimeValue"]["constant"]

    first = key()
    assert key() == first
    Image.new("RGB", (32, 24), "blue").save(photos / "b.png")
    assert key() != first


def test_set_changes_defaults_and_env_sets_image(tmp_path):
    spec, _ = compile_spec(tmp_path, "--set", "train.steps=5", env={"GIR_IMAGE": "gir:from-env"})
    assert spec["root"]["inputDefinitions"]["parameters"]["train"]["defaultValue"]["steps"] == 5
    assert {executor(spec, s)["image"] for s in ALL_TASKS} == {"gir:from-env"}


# ----------------------------------------------------------------------------- submit



def test_submit_posts_the_compiled_pipeline_with_the_parameters(tmp_path, kfp_api):
    url, server = kfp_api()
    proc = run_gir("pipeline", "submit", "--host", url, "--experiment", "deblur-exp",
                   "--image", IMAGE, "--params", PARAMS, "--set", "train.steps=7",
                   "--set", "seed=3", cwd=tmp_path, env=SERVER)
    assert proc.stdout.strip() == f"{url}/#/runs/details/run-123"
    calls = [(m, p) for m, p, _ in server.seen]
    assert ("POST", "/apis/v2beta1/experiments") in calls
    posted = {p: b for m, p, b in server.seen if m == "POST"}
    assert posted["/apis/v2beta1/experiments"]["display_name"] == "deblur-exp"
    run = posted["/apis/v2beta1/runs"]
    assert run["experiment_id"] == "exp-1"
    spec, _ = compile_spec(tmp_path, "--image", IMAGE)
    assert run["pipeline_spec"]["pipeline_spec"] == spec
    assert "gir-mlflow" in json.dumps(run["pipeline_spec"]["platform_spec"])
    expected = param_defaults(PARAMS, ["train.steps=7", "seed=3"])
    assert run["runtime_config"]["parameters"] == {"train": expected["train"], "seed": 3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["refused", "not-kfp", "not-a-url"])
def test_bad_host_is_one_line(tmp_path, kfp_api, case):
    host = {"refused": lambda: f"http://127.0.0.1:{free_port()}",
            "not-kfp": lambda: kfp_api(status=404)[0],
            "not-a-url": lambda: "kfp.example"}[case]()
    proc = run_gir("pipeline", "submit", "--host", host, "--params", PARAMS, cwd=tmp_path,
                   check=False, env=SERVER)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("gir pipeline: error:"), proc.stderr
    assert proc.stdout == ""

"""Legible MLflow runs and crash-safe training: run names, dataset inputs, experiment kind,
model cards on registered versions; SIGTERM ends a run KILLED with a last checkpoint, the
next run resumes it in the same MLflow run, and runs left RUNNING by a dead process are
marked KILLED."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import torch

from tests.helpers import read_log, train_cmd, write_params


def _client(uri: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient()


def test_run_name_dataset_and_experiment_kind(tiny_run):
    from gir.data.manifest import data_version, read_manifest
    from gir.tracking.runs import params_hash

    client = _client(tiny_run.uri)
    run = client.get_run(tiny_run.run_id)
    p = tiny_run.params
    assert run.info.run_name == f"nafnet-w8-12st-resynth0.5-lsgan-test-{params_hash(p)}"
    assert run.data.tags["gir.step"] == "train"
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"

    version = data_version(read_manifest(tiny_run.root / "data/split/manifest.csv"))
    inputs = {(d.dataset.name, d.dataset.digest, d.dataset.source,
               {t.key: t.value for t in d.tags}["mlflow.data.context"])
              for d in run.inputs.dataset_inputs}
    src = '{"uri": "data/split/manifest.csv"}'
    assert inputs == {("gir-pairs-train", version, src, "training"),
                      ("gir-pairs-test", version, src, "testing")}
    assert version == run.data.tags["data_version"]


def test_registered_version_has_a_model_card(tiny_run):
    client = _client(tiny_run.uri)
    d = tiny_run.decision
    card = client.get_model_version(d["model_name"], str(d["version"])).description
    run = client.get_run(tiny_run.run_id)
    assert run.info.run_name in card and "nafnet" in card
    assert run.data.tags["data_version"] in card and run.data.tags["git_commit"] in card
    m = tiny_run.metrics
    for kind, by_method in m["per_kind"].items():  # one table row per blur kind
        row = next(line for line in card.splitlines() if line.startswith(f"| {kind} |"))
        assert f"{by_method['model']['psnr']:.2f} / {by_method['model']['ssim']:.3f}" in row
        assert f"{by_method['blurred']['psnr']:.2f}" in row


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert path.exists(), "no checkpoint before the process ended"


def _runs(client, status: str | None = None):
    exp = client.get_experiment_by_name("gir")
    runs = client.search_runs([exp.experiment_id], "tags.`gir.step` = 'train'")
    return [r for r in runs if status is None or r.info.status == status]


def test_sigterm_checkpoints_ends_killed_and_the_next_run_continues_it(tiny_run, tmp_path,
                                                                       mlflow_uri):
    params = write_params(tmp_path / "params.yaml", "train.checkpoint_every=15")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    proc = subprocess.Popen(train_cmd(tiny_run.root, params, out), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt = out / "ckpt" / "checkpoint.pt"
    _wait_for(ckpt, proc)           # step 15 is on disk; stop it a little later, off the grid
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    stopped = torch.load(ckpt, map_location="cpu", weights_only=False)["step"]
    assert 15 <= stopped < 40
    assert re.search(rf"stopped by SIGTERM at step {stopped}; checkpoint", err), err
    assert "Traceback" not in err
    client = _client(mlflow_uri)
    [run] = _runs(client)
    assert run.info.status == "KILLED"

    again = subprocess.run(train_cmd(tiny_run.root, params, out), env=env, text=True,
                           capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"train: resuming from step {stopped} of" in again.stderr
    [after] = _runs(client)
    assert after.info.run_id == run.info.run_id and after.info.status == "FINISHED"
    assert after.data.tags["gir.resumed_from_step"] == str(stopped)
    history = client.get_metric_history(run.info.run_id, "loss_g")
    assert sorted(m.step for m in history) == list(range(1, 41))
    assert sorted(read_log(out / "report/log.csv")) == list(range(1, 41))


def test_a_run_left_running_by_a_dead_process_is_marked_killed(tiny_run, tmp_path, mlflow_uri):
    params = write_params(tmp_path / "params.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    proc = subprocess.Popen(train_cmd(tiny_run.root, params, out), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(out / "ckpt" / "checkpoint.pt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    client = _client(mlflow_uri)
    [dead] = _runs(client, "RUNNING")

    # Other params: the checkpoint is not resumed, and the dead run is ended for good.
    other = write_params(tmp_path / "other.yaml", "train.steps=6")
    r = subprocess.run(train_cmd(tiny_run.root, other, out), env=env, text=True,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "train: starting afresh (the checkpoint at step" in r.stderr
    assert "made with different params" in r.stderr
    assert f"MLflow run {dead.info.run_id} was left RUNNING by a dead process" in r.stderr
    assert client.get_run(dead.info.run_id).info.status == "KILLED"
    assert not _runs(client, "RUNNING")
    assert len(_runs(client, "FINISHED")) == 1


def test_run_meta_is_an_argument_and_crosses_processes_only_through_the_environment(monkeypatch):
    """Who launched a run tags it: given as an argument (the KFP train component), else read
    from the environment a launching process left (gir sweep's children, PyTorchJob pods)."""
    from gir.tracking.runs import RunMeta, run_tags

    for var in RunMeta.ENV.values():
        monkeypatch.delenv(var, raising=False)
    meta = RunMeta(kfp_run_id="run-1", sweep_id="s1", sweep_parent="p1")
    tags = run_tags("kfp", "v1", "train", meta)
    assert (tags["kfp_run_id"], tags["gir.sweep_id"], tags["mlflow.parentRunId"]) == \
        ("run-1", "s1", "p1")
    assert "kfp_run_id" not in run_tags("cli", "v1")        # nothing given, nothing in the env
    assert RunMeta(kfp_run_id="run-1").env() == {"GIR_KFP_RUN_ID": "run-1"}
    for var, value in meta.env().items():
        monkeypatch.setenv(var, value)
    assert RunMeta.from_env() == meta and run_tags("cli", "v1")["gir.sweep_id"] == "s1"

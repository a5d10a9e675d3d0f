"""Crash-safe `dvc repro`: `gir train` killed with SIGKILL at a random step, the next
`dvc repro` resumes from its checkpoint in the same MLflow run, with the losses and final
metrics of an uninterrupted run, and leaves one FINISHED training run, none RUNNING."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import LOSSES, RESUME, ROOT, dvc_project, read_log, run_gir, tiny_params
from tests.helpers import dvc as _dvc


def _train_pid(repo: Path) -> int | None:
    """The `gir train` process dvc started in repo (found through /proc)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        if "train" in words and any(w.endswith("gir") for w in words) and cwd == str(repo):
            return int(proc.name)
    return None


@pytest.mark.timeout(1800)   # two dvc repro runs and a reference training: minutes on 2 busy cores
def test_sigkill_under_dvc_repro_resumes_exactly(tmp_path, mlflow_uri):
    import mlflow

    repo = dvc_project(tmp_path, tiny_params(*RESUME))
    _dvc("repro", "split", cwd=repo)

    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"],
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    dvc = [str(Path(bin_dir) / "dvc"), "repro", "evaluate"]
    first = subprocess.Popen(dvc, cwd=repo, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    ckpt = repo / "checkpoints/checkpoint.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.uniform(0, 1.0))        # a random step past the first checkpoint
    pid = _train_pid(repo)
    assert pid, "gir train was not running"
    os.kill(pid, signal.SIGKILL)
    assert first.wait(timeout=120) != 0
    assert not (repo / "models/deblur/generator.pt").exists(), "killed after the last step"
    import torch

    start = torch.load(ckpt, map_location="cpu", weights_only=False)["step"]
    assert 0 < start < 40

    mlflow.set_tracking_uri(mlflow_uri)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("gir")

    def runs(status=None):
        found = client.search_runs([exp.experiment_id], "tags.`gir.step` = 'train'")
        return [r for r in found if status is None or r.info.status == status]

    [killed] = runs("RUNNING")

    again = subprocess.run(dvc, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"train: resuming from step {start} of checkpoints/checkpoint.pt" in again.stderr
    assert [r.info.run_id for r in runs()] == [killed.info.run_id]
    assert runs("FINISHED") and not runs("RUNNING")

    # The same training, uninterrupted, in its own store.
    ref = tmp_path / "ref"
    ref_env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
               "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'ref.db'}"}
    data = ["--data", str(repo / "data/processed"),
            "--split", str(repo / "data/split/manifest.csv")]
    p = ["--params", str(repo / "params.yaml")]
    run_gir("train", *p, *data, "--out", str(ref / "models"), "--report", str(ref / "report"),
            "--checkpoints", str(ref / "ckpt"), cwd=tmp_path, env=ref_env)
    run_gir("evaluate", *p, *data, "--model", str(ref / "models"), "--out",
            str(ref / "metrics.json"), "--per-image", str(ref / "per_image.csv"),
            cwd=tmp_path, env=ref_env)
    want, got = read_log(ref / "report/log.csv"), read_log(repo / "reports/train/log.csv")
    assert sorted(got) == sorted(want) == list(range(1, 41))
    for step in range(1, 41):
        assert [got[step][k] for k in LOSSES] == [want[step][k] for k in LOSSES], step
    m_ref = json.loads((ref / "metrics.json").read_text())
    m_got = json.loads((repo / "reports/metrics.json").read_text())
    assert m_got["methods"] == m_ref["methods"] and m_got["per_kind"] == m_ref["per_kind"]

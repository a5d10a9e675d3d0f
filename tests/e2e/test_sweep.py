"""`gir sweep` for real: a 2x2 grid on the tiny config through DVC's experiment queue and
through KFP's local runner gives 4 children under one MLflow parent, the comparison table and
figure as the parent's artifacts, and exactly one child registered (one alias moved)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gir.config import to_dict
from tests.helpers import ROOT, dvc_project, run_gir, tiny_params
from tests.helpers import dvc as _dvc

GRID = ["--grid", "train.loss.adversarial=[none, lsgan]", "--grid", "train.lr=[0.001, 0.004]"]


def _check_sweep(uri: str, engine: str, stderr: str) -> dict:
    """4 FINISHED children under one FINISHED parent, comparison artifacts, one registered."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("gir")
    [parent] = client.search_runs([exp.experiment_id], "tags.`gir.step` = 'sweep'")
    sweep_id = parent.data.tags["gir.sweep_id"]
    assert f"sweep {sweep_id}: 4 configs on {engine}" in stderr
    assert parent.info.status == "FINISHED"
    kids = client.search_runs([exp.experiment_id], f"tags.`gir.sweep_id` = '{sweep_id}' "
                              "and tags.`gir.step` = 'train'")
    assert len(kids) == 4
    assert {k.data.tags["mlflow.parentRunId"] for k in kids} == {parent.info.run_id}
    assert {k.info.status for k in kids} == {"FINISHED"}
    assert {k.data.tags["engine"] for k in kids} == {engine}
    assert {(k.data.params["train.loss.adversarial"], k.data.params["train.lr"])
            for k in kids} == {("none", "0.001"), ("none", "0.004"), ("lsgan", "0.001"),
                               ("lsgan", "0.004")}
    assert len({k.info.run_name for k in kids}) == 4
    arts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert arts == {"sweep/comparison.csv", "sweep/comparison.md", "sweep/comparison.png"}
    local = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id,
                                                artifact_path="sweep/comparison.csv")
    import pandas as pd

    table = pd.read_csv(local)
    assert len(table) == 4 and table["psnr"].notna().all()
    assert list(table["psnr"]) == sorted(table["psnr"], reverse=True)
    assert any(c.endswith(".psnr") and c != "psnr" for c in table.columns)  # per blur kind
    best = table.iloc[0]["run_id"]
    assert parent.data.tags["gir.best_run_id"] == best
    kid_ids = {k.info.run_id for k in kids}
    versions = [v for v in client.search_model_versions("name = 'gir-deblur'")
                if v.run_id in kid_ids]
    assert [v.run_id for v in versions] == [best]  # only the best child is registered
    [version] = versions
    aliases = client.get_model_version("gir-deblur", version.version).aliases
    assert len(aliases) == 1 and aliases[0] in ("champion", "challenger")
    assert "nafnet" in client.get_model_version("gir-deblur", version.version).description
    return {"parent": parent, "kids": kids, "best": best, "table": table}


@pytest.mark.timeout(1800)   # 4 experiments, each a DVC workspace: minutes on 2 busy cores
def test_sweep_through_dvc_experiments(tmp_path, mlflow_uri):
    repo = dvc_project(tmp_path, tiny_params())
    _dvc("repro", cwd=repo)
    (repo / ".gitignore").write_text("checkpoints/\nmlruns/\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "tiny"], cwd=repo, check=True)

    bin_dir = str(Path(sys.executable).parent)
    env = {"PATH": bin_dir + os.pathsep + os.environ["PATH"],
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "gir", "sweep", *GRID, "--runner", "dvc",
                           "-j", "2"], cwd=repo, env={**os.environ, **env}, text=True,
                          capture_output=True, timeout=1700)
    assert proc.returncode == 0, proc.stderr
    got = _check_sweep(mlflow_uri, "dvc", proc.stderr)
    # The workspace now holds the best experiment, registered through the register stage.
    reg = json.loads((repo / "reports/registration.json").read_text())
    assert reg["run_id"] == got["best"]
    shown = json.loads(_dvc("exp", "show", "--json", cwd=repo))
    names = {e.get("name") for rev in shown for e in (rev.get("experiments") or [])
             for e in (e.get("revs") or [])}
    assert sum(1 for n in names if n and n.startswith("sweep-")) == 4, names
    assert "psnr" in proc.stdout  # the table printed


@pytest.mark.timeout(1800)
def test_sweep_through_kfp_local(tmp_path, mlflow_uri):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(to_dict(tiny_params())))
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "gir", "sweep", "--params", str(params), *GRID,
                           "--runner", "kfp-local", "--root", str(tmp_path / "root")],
                          cwd=tmp_path, env={**os.environ, **env}, text=True,
                          capture_output=True, timeout=1700)
    assert proc.returncode == 0, proc.stderr
    got = _check_sweep(mlflow_uri, "kfp-local", proc.stderr)
    decision = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert decision["run_id"] == got["best"]


def test_bad_grid_is_one_line(tmp_path):
    for grid, msg in (("train.steps", "expected KEY=[VALUE"),
                      ("train.nope=[1, 2]", "sweep config train.nope=1")):
        r = run_gir("sweep", "--grid", grid, cwd=tmp_path, check=False)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr

"""`gir pipeline run --local`: the KFP DAG end to end through kfp.local's SubprocessRunner, on
the tiny config, into a temporary MLflow store — tracked like a DVC run, tagged kfp-local."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT, TINY, run_gir


@pytest.mark.slow
def test_local_run_registers_a_model_tagged_kfp_local(tmp_path):
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    root = tmp_path / "pipeline_root"
    # With the shipped model among the references, as in params.yaml: the floor rule applies.
    sets = [a for s in TINY for a in ("--set", s)]
    sets += ["--set", "evaluate.references=[blurred, unsharp, pretrained]"]
    proc = run_gir("pipeline", "run", "--local", "--params", str(ROOT / "params.yaml"),
                   "--root", str(root), *sets, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})

    run_dir = next(root.iterdir())
    assert f"artifacts in {run_dir}" in proc.stderr
    assert (run_dir / "train" / "generator").is_dir()
    assert (run_dir / "validate" / "quality_report").read_text().startswith("<!doctype html>")
    decision = json.loads((run_dir / "register" / "registration").read_text())
    # params.yaml scores the shipped model beside the new one; a 12-step model from scratch
    # falls short of it, so the first version is only the challenger (the floor rule).
    assert decision["version"] == 1 and decision["alias"] == "challenger"
    assert decision["floor"] == "the shipped pretrained model"
    assert decision["new_score"] < decision["floor_score"]
    assert json.loads(proc.stdout) == decision

    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(decision["run_id"])
    assert run.data.tags["engine"] == "kfp-local"
    assert run.data.tags["kfp_run_id"]
    # Same experiment, param and metric names as a DVC run of the same config.
    assert mlflow.get_experiment(run.info.experiment_id).name == "gir"
    assert run.data.params["train.steps"] == "12"
    assert run.data.params["data.sample.max_side"] == "128"
    assert {"test.psnr", "test.ssim", "val_psnr", "loss_g"} <= set(run.data.metrics)
    version = MlflowClient().get_model_version_by_alias("gir-deblur", "challenger")
    assert version.run_id == run.info.run_id
    # The independent detector branch ran too: fitted, tracked and registered.
    assert (run_dir / "detector" / "detector_model" / "detector.json").is_file()
    detector = MlflowClient().get_model_version_by_alias("gir-detector", "champion")
    assert mlflow.get_run(detector.run_id).data.tags["engine"] == "kfp-local"

"""The whole pipeline on the tiny config: tracked, evaluated honestly, registered, promoted."""

import json

import mlflow
import pytest
from mlflow import MlflowClient

from gir.data.manifest import read_manifest


def test_run_is_tracked_with_params_tags_metrics_and_figure(tiny_run):
    mlflow.set_tracking_uri(tiny_run.uri)
    run = mlflow.get_run(tiny_run.run_id)
    assert run.data.params["train.steps"] == "12"
    assert run.data.params["model.generator"] == "nafnet"
    assert run.data.tags["engine"] == "test"
    assert run.data.tags["git_commit"] and run.data.tags["data_version"]
    assert "test.psnr" in run.data.metrics and "test.methods.blurred.psnr" in run.data.metrics
    history = MlflowClient().get_metric_history(tiny_run.run_id, "loss_g")
    assert [m.step for m in history] == [4, 8, 12]
    artifacts = {a.path for a in MlflowClient().list_artifacts(tiny_run.run_id, "train")}
    assert {"train/log.csv", "train/samples.png"} <= artifacts


def test_evaluation_uses_only_the_test_split_per_kind(tiny_run):
    m = tiny_run.metrics
    df = read_manifest(tiny_run.root / "data/split/manifest.csv")
    test_ids = set(df[df["split"] == "test"]["pair_id"])
    import pandas as pd

    per_image = pd.read_csv(tiny_run.root / "reports/eval_per_image.csv")
    assert set(per_image["pair_id"]) == test_ids
    assert m["pairs"] == len(test_ids)
    assert {"model", "blurred", "unsharp"} <= set(m["methods"])
    assert set(m["per_kind"]) == set(df[df["split"] == "test"]["blur_kind"])
    saved = json.loads((tiny_run.root / "reports/metrics.json").read_text())
    assert saved["psnr"] == m["psnr"]


def test_first_registration_is_champion(tiny_run):
    d = tiny_run.decision
    assert d["alias"] == "champion" and d["version"] == 1
    mlflow.set_tracking_uri(tiny_run.uri)
    mv = MlflowClient().get_model_version_by_alias("gir-deblur", "champion")
    assert str(mv.version) == "1" and float(mv.tags["psnr"]) == pytest.approx(tiny_run.metrics["psnr"])


def test_promotion_compares_on_the_same_test_data(tiny_run, tmp_path, monkeypatch):
    """A second, worse model (untrained weights) must not take the champion alias."""
    import shutil

    from gir.rectifier.inference import load_generator, save_generator
    from gir.steps.register import register

    monkeypatch.chdir(tiny_run.root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'copy.db'}")
    shutil.copy(tiny_run.root / "mlflow.db", tmp_path / "copy.db")
    worse = tmp_path / "worse"
    shutil.copytree(tiny_run.root / "models", worse)
    g = load_generator(worse)
    for p in g.parameters():  # break the model: outputs far from sharp
        p.data.normal_(0, 0.5)
    save_generator(worse, g, "nafnet", tiny_run.params.model.generator_args)
    metrics = json.loads((tiny_run.root / "reports/metrics.json").read_text())
    metrics["psnr"] = 1.0  # what evaluate would report for it
    (tmp_path / "m.json").write_text(json.dumps(metrics))
    d = register(tiny_run.params, "data/processed", "data/split/manifest.csv", worse,
                 tmp_path / "m.json", tmp_path / "reg.json")
    assert d["alias"] == "challenger" and d["version"] == 2
    assert d["champion_score"] == pytest.approx(tiny_run.metrics["psnr"], abs=1e-3)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("gir-deblur", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("gir-deblur", "challenger").version) == "2"


def test_promote_by_hand_moves_the_alias(tiny_run, tmp_path):
    import shutil

    from tests.helpers import run_gir

    shutil.copy(tiny_run.root / "mlflow.db", tmp_path / "p.db")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'p.db'}"}
    proc = run_gir("promote", "1", "--alias", "challenger", cwd=tmp_path, env=env)
    assert "gir-deblur@challenger -> v1" in proc.stderr
    bad = run_gir("promote", "9", cwd=tmp_path, env=env, check=False)
    assert bad.returncode != 0 and "has no version 9" in bad.stderr
    assert "Traceback" not in bad.stderr

"""Training's seams: the schedule and optimiser params, and the loop's trackers (none, a JSON
record) standing in for MLflow without any monkeypatching."""

from __future__ import annotations

import csv
import json

import pytest

from tests.helpers import tiny_params


def test_warmup_and_floor_are_params():
    from gir.training.trainer import lr_lambda, warmup_steps

    assert warmup_steps(600) == 60 and warmup_steps(5000) == 100 and warmup_steps(5) == 1
    assert warmup_steps(600, 7) == 7
    f = lr_lambda(100, 10, 0.05)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(100) == pytest.approx(0.05) and f(55) == pytest.approx(0.05 + 0.95 * 0.5)
    assert lr_lambda(100, 10)(100) == pytest.approx(0.01)   # the default floor


def test_trainer_takes_betas_warmup_and_floor_from_params():
    import torch

    from gir.training.trainer import Trainer

    p = tiny_params("train.betas=[0.8, 0.95]", "train.betas_d=[0.4, 0.9]", "train.warmup=3",
                    "train.lr_floor=0.5", "train.steps=10")
    tr = Trainer(p, torch.device("cpu"))
    assert tr.opt_g.param_groups[0]["betas"] == (0.8, 0.95)
    assert tr.opt_d.param_groups[0]["betas"] == (0.4, 0.9)
    lam = tr.sched_g.lr_lambdas[0]
    assert lam(0) == pytest.approx(1 / 3) and lam(10) == pytest.approx(0.5)


def test_record_tracker_keeps_the_run_as_json(tiny_run, tmp_path, monkeypatch):
    from gir.steps.train import train
    from gir.training.trackers import RecordTracker

    store = tmp_path / "untouched.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    data = tiny_run.root / "data"
    record = tmp_path / "record.json"
    res = train(tiny_params(), data / "processed", data / "split/manifest.csv", tmp_path / "m",
                tmp_path / "r", tmp_path / "c", engine="test", tracker=RecordTracker(record))
    assert res.run_id == "device-run" and res.steps == 12
    rec = json.loads(record.read_text())
    assert rec["status"] == "FINISHED" and rec["params"]["train.steps"] == "12"
    assert rec["tags"]["engine"] == "test" and rec["tags"]["gir.step"] == "train"
    logged = {m["step"]: m["loss_g"] for m in rec["metrics"] if "loss_g" in m}
    with open(tmp_path / "r/log.csv") as fh:
        assert logged == {int(r["step"]): float(r["loss_g"]) for r in csv.DictReader(fh)}
    vals = [m for m in rec["metrics"] if "val_psnr" in m]   # train.image_every=6
    assert [m["step"] for m in vals] == [6, 12] and vals[-1]["val_psnr"] == res.val_psnr
    assert rec["metrics"][-1]["train_steps"] == 12 and "train/log.csv" in rec["artifacts"]
    assert json.loads((tmp_path / "m/run.json").read_text())["run_id"] == "device-run"
    assert not store.exists(), "the record tracker must not touch MLflow"


def test_no_tracker_trains_without_a_run(tiny_run, tmp_path, monkeypatch):
    from gir.steps.train import train
    from gir.training.trackers import Tracker

    store = tmp_path / "untouched.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    data = tiny_run.root / "data"
    res = train(tiny_params("train.steps=4"), data / "processed", data / "split/manifest.csv",
                tmp_path / "m", tmp_path / "r", tmp_path / "c", tracker=Tracker())
    assert res.run_id == "" and (tmp_path / "m/generator.pt").is_file()
    assert not (tmp_path / "m/run.json").exists() and not store.exists()


def test_training_does_not_depend_on_the_detector():
    """A detector change must not re-run the train stage (dvc.yaml deps follow the imports)."""
    from importgraph import code_deps

    deps = code_deps("gir.steps.train")
    assert "gir/training/trainer.py" in deps
    assert not [d for d in deps if "detect" in d or d.endswith("resolve.py")], deps

"""The blur detector is trained, tracked and registered like the deblurrer, and
resolve_detector() uses what the pipeline produced: explicit file, models/detector/, the registered
champion, then the built-in fit."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest

from gir.errors import GirError
from gir.rectifier.detect import Detector, Linear, save_detector
from gir.tracking.resolve import LOCAL_DETECTOR
from gir.tracking.resolve import resolve_detector as get_detector
from tests.helpers import run_gir, tiny_params


def _marked(seed: int) -> Detector:
    """A syntactically valid detector whose fitted_on says where it came from."""
    lin = Linear([0.0], [1.0], [[1.0]], [0.0], [0, 1])
    return Detector(lin, lin, fitted_on={"seed": seed})


def _bench():
    """A few labelled photos: sharp crops and the same crops motion-blurred (10 px)."""
    import numpy as np

    from gir.data import blur
    from gir.data.sources.sample import load_sample_image
    from gir.rectifier.detect_eval import EvalItem
    from gir.rectifier.detect_fit import camera_finish

    rng = np.random.default_rng(0)
    items = []
    for name in ("coffee", "chelsea", "rocket"):
        photo = load_sample_image(name)
        for i, (y, x) in enumerate(((0, 0), (100, 150), (150, 50))):
            lin = blur.srgb_to_linear(photo[y:y + 160, x:x + 200] / 255.0)
            items.append(EvalItem(f"{name}{i}-sharp", camera_finish(lin, rng), "sharp", "sharp"))
            k = blur.motion_kernel(10.0, rng).astype(np.float64)
            items.append(EvalItem(f"{name}{i}-motion", camera_finish(blur.convolve(lin, k), rng),
                                  "motion", "motion", 10.0))
    return items


def test_train_register_and_promote(tmp_path, mlflow_uri, monkeypatch):
    """Champion moves only with evidence: recall on the benchmark's blurred photos, at the
    false-alarm rate on its sharp ones, higher with a paired interval above zero."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from skimage.data import data_dir

    from gir.rectifier import detect_fit
    from gir.rectifier.detect import load_detector
    from gir.steps.detector import train_detector

    p, bench = tiny_params(), _bench()
    shipped = load_detector(detect_fit.SHIPPED_FIT)   # the fit itself is tested by test_dvc
    monkeypatch.setattr(detect_fit, "fit_detector", lambda seed, per_image: _invert(shipped))
    out, metrics_path = tmp_path / "models/detector", tmp_path / "reports/detector.json"
    d = train_detector(p, out, metrics_path, engine="test", bench=bench)
    metrics = json.loads(metrics_path.read_text())
    assert (out / "detector.json").is_file() and (out / "detect_eval.png").is_file()
    assert metrics["benchmark"]["photos"] == {"sharp": 9, "blurred": 9}
    assert d["alias"] == "champion" and d["version"] == 1 and d["reason"] == "no champion yet"
    assert json.loads((out / "registration.json").read_text()) == d

    mlflow.set_tracking_uri(mlflow_uri)
    run = mlflow.get_run(d["run_id"])
    assert run.info.run_name == "detector" and run.data.tags["engine"] == "test"
    assert run.data.params["detect.false_alarm_rate"] == "0.05"
    assert "benchmark.calibration.ece" in run.data.metrics
    assert set(metrics["blur_type"]) == {"accuracy", "motion_vs_isotropic"}
    assert 0 <= run.data.metrics["benchmark.blur_type.motion_vs_isotropic"] <= 1
    assert {"detector/detector.json", "detector/detect_eval.png"} <= {
        a.path for a in MlflowClient().list_artifacts(d["run_id"], "detector")}

    # The real fit finds the blurred photos the inverted one missed: it takes the alias.
    monkeypatch.setattr(detect_fit, "fit_detector", lambda seed, per_image: shipped)
    better = train_detector(p, tmp_path / "better", tmp_path / "better.json", engine="test",
                            bench=bench)
    assert better["alias"] == "champion" and better["interval"]["low"] > 0, better
    assert better["new_score"] > better["champion_score"]

    # The same fit again is no better: only the challenger.
    again = train_detector(p, tmp_path / "again", tmp_path / "again.json", engine="test",
                           bench=bench)
    assert again["alias"] == "challenger" and again["interval"]["low"] <= 0, again
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("gir-detector", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("gir-detector", "challenger").version) == "3"

    # The registered pyfunc: image in, decision out.
    model = mlflow.pyfunc.load_model("models:/gir-detector@champion")
    png = base64.b64encode((Path(data_dir) / "clock_motion.png").read_bytes()).decode()
    row = model.predict(pd.DataFrame({"image": [png]})).iloc[0]
    assert bool(row["blurred"]) and row["blur_type"] in ("motion", "defocus", "gaussian")

    # With no detector file here, get_detector() takes the registered champion.
    monkeypatch.delenv("GIR_DETECTOR", raising=False)
    monkeypatch.chdir(tmp_path / "reports")
    monkeypatch.setenv("GIR_CACHE", str(tmp_path / "cache"))
    assert get_detector().fitted_on == shipped.fitted_on
    # A second process reads the champion from the SQLite store and its cached fit: no MLflow.
    import gir.tracking.pyfunc
    import gir.tracking.resolve

    gir.tracking.resolve._DETECTORS.clear()
    monkeypatch.setattr(gir.tracking.pyfunc, "load_registered_detector",
                        lambda uri: pytest.fail("the cached champion should not load the pyfunc"))
    assert get_detector().fitted_on == shipped.fitted_on


def _invert(det: Detector) -> Detector:
    """The same detector with its tile network's output flipped: a clearly worse one."""
    tiles = dataclasses.replace(det.tiles, weights=det.tiles.weights[:-1] + [
        [[-v for v in row] for row in det.tiles.weights[-1]]],
        biases=det.tiles.biases[:-1] + [[-v for v in det.tiles.biases[-1]]])
    return dataclasses.replace(det, tiles=tiles)


def test_resolution_order(tmp_path, monkeypatch, capsys):
    """path > $GIR_DETECTOR > models/detector/detector.json > registry > built-in fit."""
    import gir.tracking.resolve

    monkeypatch.setattr(gir.tracking.resolve, "builtin_detector", lambda: _marked(4))
    monkeypatch.delenv("GIR_DETECTOR", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert get_detector().fitted_on == {"seed": 4}   # no store, no file: the built-in fit

    save_detector(_marked(1), project / LOCAL_DETECTOR)
    assert get_detector().fitted_on == {"seed": 1}
    save_detector(_marked(2), tmp_path / "env.json")
    monkeypatch.setenv("GIR_DETECTOR", str(tmp_path / "env.json"))
    assert get_detector().fitted_on == {"seed": 2}
    save_detector(_marked(3), tmp_path / "given.json")
    assert get_detector(tmp_path / "given.json").fitted_on == {"seed": 3}
    assert capsys.readouterr().err == ""

    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GirError, match="not a GIR detector"):
        get_detector(tmp_path / "bad.json")


def test_store_without_a_detector_is_quiet(tmp_path, monkeypatch, mlflow_uri, capsys):
    import gir.tracking.resolve
    from gir.config import MlflowConfig
    from gir.tracking.runs import setup

    mlflow = setup(MlflowConfig(tracking_uri=mlflow_uri, experiment="other"))
    with mlflow.start_run():   # a store that exists but has no gir-detector
        pass
    monkeypatch.setattr(gir.tracking.resolve, "builtin_detector", lambda: _marked(4))
    monkeypatch.delenv("GIR_DETECTOR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert get_detector().fitted_on == {"seed": 4}
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_cli_bad_detector_is_one_line(tmp_path):
    from skimage.data import data_dir

    (tmp_path / "bad.json").write_text("[]")
    proc = run_gir("detect", str(Path(data_dir) / "clock_motion.png"), "--detector",
                   str(tmp_path / "bad.json"), cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"gir detect: error: detector {tmp_path / 'bad.json'}: not a GIR detector file"), lines

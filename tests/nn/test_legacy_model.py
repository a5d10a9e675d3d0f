"""A model registered before the package layout (logged at commit 321ab05, whose entry file
runs ``from gir.registry import GirDeblurModel``) still loads and deblurs, byte for byte."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURE = Path(__file__).parents[1] / "fixtures" / "pre_refactor_model"


def _png_b64(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_the_fixture_was_logged_with_the_old_layout():
    assert "from gir.registry import GirDeblurModel" in (FIXTURE / "deblur" /
                                                        "mlflow_model.py").read_text()


def test_pre_refactor_pyfunc_loads_and_predicts(tmp_path):
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(str(FIXTURE / "deblur"))
    rgb, expected = np.load(FIXTURE / "input.npy"), np.load(FIXTURE / "expected.npy")
    out = model.predict(pd.DataFrame({"image": [_png_b64(rgb)]}))
    got = np.asarray(Image.open(io.BytesIO(base64.b64decode(out["image"][0]))).convert("RGB"))
    assert np.array_equal(got, expected)


def test_pre_refactor_model_registered_resolves_by_uri(tmp_path, mlflow_uri):
    import mlflow

    from gir.tracking.resolve import resolve_deblurrer
    from gir.tracking.runs import use_experiment

    mlflow.set_tracking_uri(mlflow_uri)
    use_experiment(mlflow, "legacy")     # its artifacts in tmp_path, not ./mlruns
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(FIXTURE / "deblur"), "model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "gir-legacy")
    deblurrer = resolve_deblurrer(f"models:/gir-legacy/{version.version}", quiet=True)
    rgb, expected = np.load(FIXTURE / "input.npy"), np.load(FIXTURE / "expected.npy")
    assert np.array_equal(deblurrer(rgb), expected)

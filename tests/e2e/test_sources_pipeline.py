"""GoPro-layout and Unsplash (loopback API) sources each feed the whole pipeline through to a
registered model. The folder source does it from s3:// in tests/e2e/test_s3_remote.py (a local
folder is the same code with a local filesystem; it is gated in tests/steps/test_gate_bad_inputs.py)."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

import gir.data.sources.unsplash as unsplash
from datatrees import make_gopro_tree, run_pipeline
from gir.data.manifest import read_manifest
from tests.helpers import tiny_params

pytestmark = pytest.mark.slow
# The data path is what is under test here: the shortest training that still registers.
SHORT = ("train.steps=4", "train.image_every=4", "train.checkpoint_every=4")


def _check_registered(root, uri, source):
    import mlflow

    mlflow.set_tracking_uri(uri)
    mv = MlflowClient().get_model_version_by_alias("gir-deblur", "champion")
    assert str(mv.version) == "1"
    df = read_manifest(root / "data/split/manifest.csv")
    assert (df["source"] == source).all() and (df["split"] == "test").any()
    # The gate's reports, GX Data Docs included, are MLflow artifacts of a quality-gate run.
    runs = mlflow.search_runs(filter_string="tags.step = 'validate'", output_format="list")
    arts = {a.path for a in MlflowClient().list_artifacts(runs[0].info.run_id, "quality")}
    assert {"quality/quality.html", "quality/data_docs"} <= arts


def test_gopro_to_registered_model(tmp_path, mlflow_uri):
    gopro = make_gopro_tree(tmp_path / "GOPRO_Large")
    params = tiny_params(*SHORT, "data.source=gopro", f"data.gopro.root={gopro}",
                         "validate.max_quarantine_fraction=0.5")
    (tmp_path / "proj").mkdir()
    run_pipeline(params, tmp_path / "proj")
    _check_registered(tmp_path / "proj", mlflow_uri, "gopro")
    split = read_manifest(tmp_path / "proj/data/split/manifest.csv")
    assert set(split[split["split"] == "test"]["scene"]) == {"GOPR0003_00_00"}  # official


def test_unsplash_to_registered_model(tmp_path, mlflow_uri, monkeypatch):
    from datatrees import KEY, FakeUnsplash

    api = FakeUnsplash(n_photos=5)
    monkeypatch.setattr(unsplash, "SLEEP", lambda s: None)
    monkeypatch.setenv("UNSPLASH_ACCESS_KEY", KEY)
    params = tiny_params(*SHORT, "data.source=unsplash", f"data.unsplash.api_url={api.url}",
                         "data.unsplash.count=5", "data.synth.per_image=2")
    (tmp_path / "proj").mkdir()
    try:
        run_pipeline(params, tmp_path / "proj")
    finally:
        api.server.shutdown()
    _check_registered(tmp_path / "proj", mlflow_uri, "unsplash")
    import mlflow

    run = mlflow.get_run(MlflowClient().get_model_version_by_alias("gir-deblur",
                                                                   "champion").run_id)
    assert KEY not in str(run.data.params) + str(run.data.tags)

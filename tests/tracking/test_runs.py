"""gir.tracking.runs: a SQLite store keeps its artifacts beside its database, whatever the
current directory, and an experiment made elsewhere keeps its own location."""

from __future__ import annotations

import os


def test_a_new_experiment_keeps_its_artifacts_beside_the_sqlite_store(tmp_path, monkeypatch):
    from gir.config import MlflowConfig
    from gir.tracking.runs import setup

    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "store").mkdir()
    mlflow = setup(MlflowConfig(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'm.db'}",
                                experiment="beside"))
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "note.txt")
    assert run.info.artifact_uri.startswith((tmp_path / "store" / "mlruns" / "beside").as_uri())
    assert (tmp_path / "store" / "mlruns").is_dir() and not os.listdir(elsewhere)

    # An experiment that exists keeps the location it was made with.
    mlflow.create_experiment("made-before", artifact_location=(tmp_path / "own").as_uri())
    mlflow = setup(MlflowConfig(tracking_uri=mlflow.get_tracking_uri(), experiment="made-before"))
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "note.txt")
    assert run.info.artifact_uri.startswith((tmp_path / "own").as_uri())


def test_only_a_sqlite_file_store_has_a_location_beside_it(tmp_path):
    from gir.tracking.runs import artifacts_beside

    assert artifacts_beside(f"sqlite:///{tmp_path}/a.db?timeout=5", "gir") == (
        tmp_path / "mlruns" / "gir").as_uri()
    assert artifacts_beside(f"sqlite:///{tmp_path}/a.db", "a/b c") == (
        tmp_path / "mlruns" / "a_b_c").as_uri()      # one folder, whatever the name
    assert artifacts_beside("sqlite:///:memory:", "gir") is None
    assert artifacts_beside("http://mlflow:5000", "gir") is None

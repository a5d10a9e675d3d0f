"""Shared fixtures: isolated MLflow stores, a tiny config, and one tiny pipeline run per session.

Every test runs with telemetry off and MLflow pointed at a temporary SQLite store, so the
suite never touches the project's own mlflow.db and never reaches the network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

ROOT = Path(__file__).resolve().parents[1]

# A config small enough for seconds on 2 CPU cores; used with `--set` by CLI, DVC and KFP tests.
TINY = [
    "data.sample.images=[astronaut, coffee, chelsea, rocket, retina]",
    "data.sample.max_side=128",
    "data.synth.per_image=3",
    "preprocess.max_side=128",
    "split.train=0.6", "split.val=0.2", "split.test=0.2", "split.min_test_scenes=1",
    "model.generator_args={width: 8, enc_blocks: [1, 1], middle_blocks: 1, dec_blocks: [1, 1]}",
    "model.discriminator_args={base: 8, layers: 2, spectral_norm: true}",
    "train.steps=12", "train.batch_size=2", "train.crop=64", "train.adversarial_start=4",
    "train.log_every=4", "train.image_every=6", "train.checkpoint_every=6",
    "detect.fit_per_image=2", "detect.eval_per_image=2", "train.init=none",
]


def tiny_params(*extra: str):
    from gir.config import params_from_dict

    return params_from_dict({}, TINY + list(extra))


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh SQLite tracking store for one test: for subprocesses (the variable) and for
    clients made in this process (set_tracking_uri; _forget_tracking_uri undoes it)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture(autouse=True)
def _forget_tracking_uri():
    """Tests that call mlflow.set_tracking_uri must not point later tests at their store."""
    yield
    if "mlflow" in sys.modules:
        sys.modules["mlflow"].set_tracking_uri(None)


def run_gir(*args: str, cwd: Path | str, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `gir` console entry point in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "gir", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"gir {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole pipeline once, through the step functions, on the tiny config.

    Returns a namespace with the paths and the MLflow URI; tests must not modify it.
    """
    from types import SimpleNamespace

    from gir.steps.evaluate import evaluate
    from gir.steps.ingest import ingest
    from gir.steps.preprocess import preprocess
    from gir.steps.register import register
    from gir.steps.split import split
    from gir.steps.train import train
    from gir.steps.validate import validate

    root = tmp_path_factory.mktemp("tiny_run")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    cwd = os.getcwd()
    os.chdir(root)
    try:
        p = tiny_params()
        ingest(p, "data/raw")
        validate(p.validate, "data/raw", "data/validated", "reports/quality")
        preprocess(p.preprocess, "data/raw", "data/validated/manifest.csv", "data/processed")
        split(p.split, p.seed, "data/processed", "data/split")
        result = train(p, "data/processed", "data/split/manifest.csv", "models", "reports/train",
                       "checkpoints", engine="test")
        metrics = evaluate(p.evaluate, p.mlflow, "data/processed", "data/split/manifest.csv",
                           "models", "reports/metrics.json", "reports/eval_per_image.csv")
        decision = register(p, "data/processed", "data/split/manifest.csv", "models",
                            "reports/metrics.json", "reports/registration.json")
    finally:
        os.chdir(cwd)
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old
    return SimpleNamespace(root=root, uri=uri, params=p, run_id=result.run_id, metrics=metrics,
                           decision=decision)

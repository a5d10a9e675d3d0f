"""MLflow at the edge: where runs go, what every run is tagged with, and how steps share a run.

train starts the run and records its id next to the model (``run.json``); evaluate and
register reopen the same run, so one pipeline execution is one row in the MLflow UI whatever
engine ran it (``dvc``, ``kfp-local``, ``kfp``, ``cli``).
"""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gir.config import MlflowConfig, Params, flatten, to_dict
from gir.data.imageio import write_text_atomic

RUN_FILE = "run.json"


def tracking_uri(cfg: MlflowConfig) -> str:
    """MLFLOW_TRACKING_URI (a team server) wins over params.yaml's embedded default."""
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri


def setup(cfg: MlflowConfig, experiment: bool = True):
    """Point MLflow at the tracking store (and experiment); returns the mlflow module."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import logging

    import mlflow

    for noisy in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    if experiment:
        mlflow.set_experiment(cfg.experiment)
    return mlflow


def git_commit() -> str:
    """The commit the code ran at, with '-dirty' when the tree had uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("GIR_GIT_COMMIT", "unknown")


def run_tags(engine: str, data_version: str) -> dict[str, str]:
    tags = {"engine": engine, "git_commit": git_commit(), "data_version": data_version,
            "mlflow.source.git.commit": git_commit()}
    if os.environ.get("GIR_KFP_RUN_ID"):
        tags["kfp_run_id"] = os.environ["GIR_KFP_RUN_ID"]
    return tags


def log_params(mlflow, params: Params) -> None:
    """All of params.yaml, flattened to dotted keys (MLflow caps values at 6000 chars)."""
    flat = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
            for k, v in flatten(to_dict(params)).items()}
    items = list(flat.items())
    for i in range(0, len(items), 90):  # log_params takes at most 100 per call
        mlflow.log_params(dict(items[i: i + 90]))


def write_run_file(out_dir: str | Path, run_id: str, experiment_id: str) -> None:
    write_text_atomic(Path(out_dir) / RUN_FILE,
                      json.dumps({"run_id": run_id, "experiment_id": experiment_id}, indent=2))


def read_run_id(model_dir: str | Path) -> str | None:
    path = Path(model_dir) / RUN_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("run_id")


@contextmanager
def reopen_run(cfg: MlflowConfig, model_dir: str | Path) -> Iterator:
    """Continue the run that trained the model in model_dir (or a fresh one if unknown)."""
    mlflow = setup(cfg)
    run_id = read_run_id(model_dir)
    if run_id:
        try:
            mlflow.get_run(run_id)
        except Exception:  # the store was reset since training: do not fail the step for it
            run_id = None
    with mlflow.start_run(run_id=run_id) as run:
        yield mlflow, run

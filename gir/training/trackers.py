"""Where a training run's record goes: MLflow, nowhere, or a JSON record.

The loop calls the same few methods on any of them. ``Tracker`` itself records nothing (for
quick experiments and tests); ``RecordTracker`` keeps everything in a dict written as JSON (a
GPU machine without MLflow: ``tools/gpu_lease`` imports the record as an MLflow run later);
``MlflowTracker`` is the default: a run per training, resumed with its checkpoint, dead runs
of killed processes marked KILLED.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from gir.config import MlflowConfig, Params
from gir.data.imageio import write_text_atomic


class Tracker:
    """Records nothing; the interface every tracker has."""

    kind = "none"

    def __init__(self) -> None:
        self.run_id, self.experiment_id = "", ""

    @contextmanager
    def run(self, resume_id: str | None, name: str) -> Iterator[str]:
        """Open the run (resume_id: continue that run if it still exists); yields its id."""
        yield self.run_id

    def describe(self, params: Params, tags: dict, manifest: str | Path) -> None:
        """What a new run is: all params, its tags, the training split as its dataset."""

    def set_tags(self, tags: dict) -> None:
        pass

    def log_metrics(self, values: dict, step: int) -> None:
        pass

    def log_image(self, image, key: str, step: int) -> None:
        pass

    def log_artifact(self, path: str | Path, folder: str) -> None:
        pass

    def end(self, status: str) -> None:
        """End the run now with this status (KILLED after a signal)."""


class RecordTracker(Tracker):
    """Everything in self.record, written as JSON to path (if given) when the run closes."""

    kind = "record"

    def __init__(self, path: str | Path | None = None, run_id: str = "device-run") -> None:
        super().__init__()
        self.path = Path(path) if path else None
        self.run_id, self.experiment_id = run_id, "0"
        self.record: dict = {"params": {}, "tags": {}, "metrics": [], "artifacts": [],
                             "status": None}

    @contextmanager
    def run(self, resume_id: str | None, name: str) -> Iterator[str]:
        self.record["run_name"] = name
        try:
            yield self.run_id
        except BaseException:
            self.record["status"] = self.record["status"] or "FAILED"
            raise
        finally:
            self.record["status"] = self.record["status"] or "FINISHED"
            self.save()

    def save(self) -> None:
        if self.path:
            write_text_atomic(self.path, json.dumps(self.record, indent=1))

    def describe(self, params: Params, tags: dict, manifest: str | Path) -> None:
        from gir.tracking.runs import flat_params

        self.record["params"].update({k: str(v) for k, v in flat_params(params).items()})
        self.set_tags(tags)
        self.record["dataset"] = {"manifest": str(manifest), "split": "train"}

    def set_tags(self, tags: dict) -> None:
        self.record["tags"].update({k: str(v) for k, v in tags.items()})

    def log_metrics(self, values: dict, step: int) -> None:
        self.record["metrics"].append({"step": step, "t": time.time(), **values})

    def log_artifact(self, path: str | Path, folder: str) -> None:
        self.record["artifacts"].append(f"{folder}/{Path(path).name}")

    def end(self, status: str) -> None:
        self.record["status"] = status


class MlflowTracker(Tracker):
    """An MLflow run in params.mlflow's store and experiment."""

    kind = "mlflow"

    def __init__(self, cfg: MlflowConfig, say: Callable[[str], None] = print) -> None:
        super().__init__()
        self.cfg, self.say, self.mlflow = cfg, say, None

    @contextmanager
    def run(self, resume_id: str | None, name: str) -> Iterator[str]:
        from gir.tracking.runs import end_dead_runs, setup

        mlflow = self.mlflow = setup(self.cfg)
        exp_id = mlflow.get_experiment_by_name(self.cfg.experiment).experiment_id
        for dead in end_dead_runs(mlflow, exp_id, "train", keep=resume_id):
            self.say(f"train: MLflow run {dead} was left RUNNING by a dead process: "
                     "marked KILLED")
        if resume_id:
            try:
                mlflow.get_run(resume_id)
            except Exception:  # noqa: BLE001 - the store was reset: continue in a new run
                resume_id = None
        with mlflow.start_run(run_id=resume_id, run_name=None if resume_id else name) as run:
            self.run_id, self.experiment_id = run.info.run_id, run.info.experiment_id
            yield self.run_id

    def describe(self, params: Params, tags: dict, manifest: str | Path) -> None:
        import os

        from gir.data.dataset import data_location
        from gir.tracking.runs import log_dataset, log_params

        log_params(self.mlflow, params)
        self.mlflow.set_tags(tags)
        # the dataset's source is where the data lives (a bucket, a DVC version), not a path
        # inside this pod; GIR_DATA_SOURCE (set by a pipeline) still wins
        source = os.environ.get("GIR_DATA_SOURCE") or data_location(params)
        log_dataset(self.mlflow, manifest, "train", "training", source=source)

    def set_tags(self, tags: dict) -> None:
        self.mlflow.set_tags(tags)

    def log_metrics(self, values: dict, step: int) -> None:
        self.mlflow.log_metrics(values, step=step)

    def log_image(self, image, key: str, step: int) -> None:
        self.mlflow.log_image(image, key=key, step=step)

    def log_artifact(self, path: str | Path, folder: str) -> None:
        self.mlflow.log_artifact(str(path), folder)

    def end(self, status: str) -> None:
        self.mlflow.end_run(status)

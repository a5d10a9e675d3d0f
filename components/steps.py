"""The pipeline steps as KFP lightweight components (seven for the deblurrer, one detector).

Each body imports `gir` and calls the same step function as `gir <step>` and dvc.yaml: no step
logic lives here, only the mapping from KFP artifacts (directories and files on the pod) to the
step's paths. KFP runs the function's source inside the project image, so every import must be
inside the body.

Inputs named after a params.yaml section (`seed`, `data`, `train`, ...) receive that section;
a component declares exactly the sections it reads, as dvc.yaml's `params:` do, so KFP's cache
re-runs a step only when its own params change. pipelines/ passes sections by these names.
"""

from typing import List

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from components.settings import IMAGE

# The image already has kfp and gir installed: never pip-install at run time.
component = dsl.component(base_image=IMAGE, install_kfp_package=False)


@component
def ingest(seed: int, data: dict, raw: Output[Dataset], listing: str = ""):
    """Run the configured data source; `raw` holds manifest.csv and the pairs it names.
    `listing` (a digest of the source's files, unused here) is part of the cache key, so new
    photos in a folder or bucket re-run ingest."""
    from components.settings import preflight

    preflight()

    from gir.config import params_from_struct
    from gir.steps.ingest import ingest as step

    step(params_from_struct({"seed": seed, "data": data}), raw.path)


@component
def validate(validate: dict, mlflow: dict, raw: Input[Dataset], validated: Output[Dataset],
             quality_report: Output[HTML], quality: Output[Metrics]):
    """The quality gate: passing pairs' manifest (+ quarantine.csv), its HTML report, counts;
    its MLflow run (`quality-gate`) as under dvc repro."""
    from components.settings import preflight

    preflight()

    import json
    import shutil
    import tempfile
    from pathlib import Path

    from gir.config import params_from_struct
    from gir.steps.validate import validate as step

    report_dir = Path(tempfile.mkdtemp())
    try:
        p = params_from_struct({"validate": validate, "mlflow": mlflow})
        step(p.validate, raw.path, validated.path, report_dir, p.mlflow)
    finally:  # a failed gate still leaves its report for the person debugging the run
        if (report_dir / "quality.html").exists():
            shutil.copyfile(report_dir / "quality.html", quality_report.path)
    for key, value in json.loads((report_dir / "quality.json").read_text()).items():
        if isinstance(value, (int, float)):
            quality.log_metric(key, value)


@component
def preprocess(preprocess: dict, raw: Input[Dataset], validated: Input[Dataset],
               processed: Output[Dataset]):
    """Resize and normalise the pairs that passed the gate."""
    from components.settings import preflight

    preflight()

    from gir.config import params_from_struct
    from gir.steps.preprocess import preprocess as step

    step(params_from_struct({"preprocess": preprocess}).preprocess, raw.path,
         f"{validated.path}/manifest.csv", processed.path)


@component
def split(seed: int, split: dict, processed: Input[Dataset], split_manifest: Output[Dataset]):
    """Assign train/val/test by scene; `split_manifest` holds manifest.csv."""
    from components.settings import preflight

    preflight()

    from gir.config import params_from_struct
    from gir.steps.split import split as step

    p = params_from_struct({"seed": seed, "split": split})
    step(p.split, p.seed, processed.path, split_manifest.path)


@component
def train(seed: int, data: dict, validate: dict, preprocess: dict, split: dict, model: dict,
          train: dict, evaluate: dict, register: dict, mlflow: dict, engine: str,
          kfp_run_id: str, processed: Input[Dataset], split_manifest: Input[Dataset],
          generator: Output[Model], train_report: Output[Artifact], overrides: list = [],
          sweep_id: str = "", parent_run_id: str = "", checkpoint_pvc: str = ""):
    """Train the cGAN (on the task's GPU when it has one).

    It takes every section because the MLflow run logs all params, exactly as a DVC run does;
    the engine and KFP run id become tags of that run. In a sweep, overrides (``key=value``)
    are this child's settings and the run nests under the sweep's parent run. With more than
    one GPU (train.distributed) it launches a PyTorchJob on the checkpoint claim
    (checkpoint_pvc) and collects its model: gir/steps/pytorchjob.py.
    """
    from components.settings import preflight

    preflight()

    import os
    import tempfile

    from gir.config import params_from_dict, params_from_struct, to_dict
    from gir.steps.train import train as step
    from gir.tracking.runs import RunMeta

    meta = RunMeta(kfp_run_id, sweep_id, parent_run_id if sweep_id else "")
    params = params_from_struct({
        "seed": seed, "data": data, "validate": validate, "preprocess": preprocess,
        "split": split, "model": model, "train": train, "evaluate": evaluate,
        "register": register, "mlflow": mlflow})
    if overrides:
        params = params_from_dict(to_dict(params), list(overrides))
    # Checkpoints on a volume that outlives the pod ($GIR_CHECKPOINT_ROOT, e.g. a PVC) let a
    # KFP retry of this task resume where the killed attempt stopped.
    root = os.environ.get("GIR_CHECKPOINT_ROOT")
    if root:
        from gir.tracking.runs import params_hash

        checkpoints = os.path.join(root, f"{kfp_run_id}-{params_hash(params)}")
    else:
        checkpoints = tempfile.mkdtemp()
    from gir.steps import pytorchjob

    if pytorchjob.wants_pytorchjob(params):  # > 1 GPU: a PyTorchJob on the checkpoint volume
        pytorchjob.train_on_pytorchjob(
            params, processed.path, f"{split_manifest.path}/manifest.csv", generator.path,
            train_report.path, pytorchjob.spec_from_env(params, checkpoint_pvc, checkpoints,
                                                        engine, meta))
        return
    step(params, processed.path, f"{split_manifest.path}/manifest.csv", generator.path,
         train_report.path, checkpoints, engine=engine, meta=meta)


@component
def evaluate(evaluate: dict, mlflow: dict, processed: Input[Dataset],
             split_manifest: Input[Dataset], generator: Input[Model],
             evaluation: Output[Artifact], test_metrics: Output[Metrics]):
    """PSNR/SSIM on the held-out split; `evaluation` holds metrics.json + per-image CSV."""
    from components.settings import preflight

    preflight()

    from pathlib import Path

    from gir.config import params_from_struct
    from gir.steps.evaluate import evaluate as step

    p = params_from_struct({"evaluate": evaluate, "mlflow": mlflow})
    out = Path(evaluation.path)
    m = step(p.evaluate, p.mlflow, processed.path, f"{split_manifest.path}/manifest.csv",
             generator.path, out / "metrics.json", out / "eval_per_image.csv")
    for method, scores in m["methods"].items():
        for name in ("psnr", "ssim"):
            test_metrics.log_metric(f"{method}.{name}", scores[name])


@component
def register(model: dict, evaluate: dict, register: dict, mlflow: dict,
             processed: Input[Dataset], split_manifest: Input[Dataset],
             generator: Input[Model], evaluation: Input[Artifact],
             registration: Output[Artifact]):
    """Register the model in MLflow; champion only if it beats the champion on this test set."""
    from components.settings import preflight

    preflight()

    from gir.config import params_from_struct
    from gir.steps.register import register as step

    p = params_from_struct({"model": model, "evaluate": evaluate, "register": register,
                          "mlflow": mlflow})
    step(p, processed.path, f"{split_manifest.path}/manifest.csv", generator.path,
         f"{evaluation.path}/metrics.json", registration.path)


@component
def sweep_register(seed: int, data: dict, validate: dict, preprocess: dict, split: dict,
                   model: dict, train: dict, evaluate: dict, register: dict, mlflow: dict,
                   configs: list, sweep_id: str, parent_run_id: str,
                   processed: Input[Dataset], split_manifest: Input[Dataset],
                   generators: Input[List[Model]], evaluations: Input[List[Artifact]],
                   registration: Output[Artifact]):
    """A sweep's end: compare the children on the MLflow parent run, register the best."""
    from components.settings import preflight

    preflight()

    from gir.config import params_from_struct
    from gir.steps.sweep import register_best

    p = params_from_struct({
        "seed": seed, "data": data, "validate": validate, "preprocess": preprocess,
        "split": split, "model": model, "train": train, "evaluate": evaluate,
        "register": register, "mlflow": mlflow})
    register_best(p, [list(c) for c in configs], sweep_id, parent_run_id, processed.path,
                        f"{split_manifest.path}/manifest.csv", [g.path for g in generators],
                        registration.path)


@component
def detector(detect: dict, data: dict, mlflow: dict, engine: str,
             detector_model: Output[Model], detector_metrics: Output[Metrics]):
    """Fit, score and register the blur detector (gir-detector); independent of the data steps.

    Its inputs are dvc.yaml's params for it (detect, data for data.synth, mlflow) and no run
    id: KFP's cache key is those and the image, so a run with the same ones reuses the last
    result instead of registering another version (as under DVC)."""
    from components.settings import preflight

    preflight()

    import json
    import tempfile
    from pathlib import Path

    from gir.config import params_from_struct
    from gir.steps.detector import train_detector as step

    p = params_from_struct({"detect": detect, "data": data, "mlflow": mlflow})
    metrics = Path(tempfile.mkdtemp()) / "detector.json"
    step(p, detector_model.path, metrics, engine=engine)
    m = json.loads(metrics.read_text())
    for name, value in m["blur_map"].items():
        if isinstance(value, (int, float)):
            detector_metrics.log_metric(name, value)
    if "blur_type" in m:   # only with the independent benchmark
        detector_metrics.log_metric("type_accuracy", m["blur_type"]["accuracy"])

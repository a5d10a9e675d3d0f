"""Model references to local weights: what ``train.init`` and ``gir export`` start from.

Kept apart from resolve.py (which also resolves detectors) so that training depends on this
and not on the detector's code: a detector change does not re-run the train stage.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gir.config import MlflowConfig
from gir.errors import GirError
from gir.nn.shipped import file_sha256, shipped_model_dir
from gir.tracking.runs import setup

log = logging.getLogger("gir")


def is_mlflow_uri(ref: str) -> bool:
    return "://" in ref or ref.startswith(("models:/", "runs:/"))


def model_source_dir(model: str) -> tuple[Path, object | None]:
    """A local directory with generator.json + generator.pt for a directory or an MLflow URI.

    The second value is a TemporaryDirectory to clean up (or None). For `gir export --onnx`.
    """
    import tempfile

    from gir.rectifier.inference import SPEC_FILE

    if Path(model).is_dir():
        return Path(model), None
    if not is_mlflow_uri(model):
        raise GirError(f"--model {model}: neither a model directory nor an MLflow model URI")
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    setup(MlflowConfig(), experiment=False)
    tmp = tempfile.TemporaryDirectory(prefix="gir-export-")
    try:
        root = Path(mlflow.artifacts.download_artifacts(artifact_uri=model, dst_path=tmp.name))
    except MlflowException as exc:
        tmp.cleanup()
        raise GirError(f"cannot load model {model}: {str(exc).splitlines()[0]}") from None
    specs = list(root.rglob(SPEC_FILE))
    if not specs:
        tmp.cleanup()
        raise GirError(f"{model} is not a GIR deblurring model (no {SPEC_FILE})")
    return specs[0].parent, tmp


def resolve_init(ref: str) -> dict | None:
    """The weights ``train.init`` names: {spec, state, source, sha256}, or None to start afresh.

    ref: ``pretrained`` (the shipped model), ``none``, a model directory, or an MLflow URI.
    """
    from gir.rectifier.inference import WEIGHTS_FILE, read_generator

    if ref == "none":
        return None
    tmp = None
    if ref == "pretrained":
        model_dir = shipped_model_dir()
        if model_dir is None:
            log.warning("gir: train.init: this install ships no pretrained model; starting "
                        "from scratch")
            return None
        source = "the shipped pretrained model"
    elif Path(ref).is_dir() or is_mlflow_uri(ref):
        model_dir, tmp = model_source_dir(ref)
        source = ref
    else:
        raise GirError(f"train.init: {ref!r} is not 'pretrained', 'none', a model directory "
                       f"or an MLflow model URI")
    try:
        spec, state = read_generator(model_dir)
        sha = file_sha256(Path(model_dir) / WEIGHTS_FILE)
    finally:
        if tmp:
            tmp.cleanup()
    return {"spec": spec, "state": state, "source": source, "sha256": sha}

"""GIR's MLflow pyfunc models: the deblurrer and the detector, logged as models-from-code.

Both take a string column ``image`` (base64 file bytes, any size and mode), so
``mlflow models serve`` answers plain JSON and nothing freezes an input shape (the pt2 pitfall).
The entry files MLflow executes on load live in ``gir/serving/`` (mlflow_model.py,
mlflow_detector.py); this module holds the classes they instantiate and the loaders.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pandas as pd

from gir.data.imageio import decode_image, encode_png
from gir.errors import GirError
from gir.rectifier.detect import Detector, detect, load_detector

# The models-from-code entry files (a path MLflow copies into the model, not an import).
SERVING_DIR = Path(__file__).resolve().parents[1] / "serving"
DEBLUR_ENTRY = SERVING_DIR / "mlflow_model.py"
DETECTOR_ENTRY = SERVING_DIR / "mlflow_detector.py"
DETECTOR_OUTPUTS = [("boolean", "blurred"), ("string", "blur_type"), ("double", "confidence"),
                    ("double", "blurred_fraction")]


def pyfunc_base():
    """mlflow.pyfunc.PythonModel, imported here so callers define their model classes lazily."""
    import warnings

    # Signatures are declared explicitly in log_code_model; MLflow's nudge towards an input
    # example is noise in every command's output.
    warnings.filterwarnings("ignore", message=".*input example was not provided.*")
    import mlflow.pyfunc

    return mlflow.pyfunc.PythonModel


def requirements() -> list[str]:
    """Pinned versions of what a GIR pyfunc needs (whatever of them is installed here)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for pkg in ("gir", "torch", "mlflow", "numpy", "pillow", "pandas", "scikit-image"):
        try:
            reqs.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            pass
    return reqs


def log_code_model(mlflow, code_file: str | Path, artifacts: dict[str, str],
                   outputs: list[tuple[str, str]], params: list[tuple[str, str, object]] = ()):
    """Log code_file (which calls mlflow.models.set_model) as the run's pyfunc 'model'.

    Input is always a string column ``image`` (base64 file bytes, any size); outputs are
    (type, name) columns; params, (name, type, default), are what predict's params accept.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    signature = ModelSignature(inputs=Schema([ColSpec("string", "image")]),
                               outputs=Schema([ColSpec(t, n) for t, n in outputs]),
                               params=ParamSchema([ParamSpec(n, t, d) for n, t, d in params])
                               if params else None)
    return mlflow.pyfunc.log_model(name="model", python_model=str(code_file),
                                   artifacts={k: str(v) for k, v in artifacts.items()},
                                   signature=signature, pip_requirements=requirements())




def _images(model_input) -> list[np.ndarray]:
    """Decode the ``image`` column (base64 file bytes) of a pyfunc input."""
    if isinstance(model_input, dict):
        model_input = pd.DataFrame(model_input)
    if "image" not in getattr(model_input, "columns", []):
        raise GirError("input needs a column 'image' with base64-encoded image files")
    return [decode_image(base64.b64decode(b64), f"image[{i}]")[0]
            for i, b64 in enumerate(model_input["image"])]


class GirDeblurModel(pyfunc_base()):
    """MLflow pyfunc: DataFrame column ``image`` (base64 file bytes) -> column ``image`` (PNG).

    params ``ensemble`` (1, 2, 4 or 8): the self-ensemble's views per image, e.g.
    ``{"dataframe_split": ..., "params": {"ensemble": 8}}`` to `mlflow models serve`.
    """

    def load_context(self, context):
        # torch is imported here, not at module level: the detector's pyfunc stays light.
        from gir.rectifier.inference import Deblurrer, load_generator, resolve_device

        model_dir = Path(context.artifacts["generator"]).parent
        device = resolve_device("auto")
        self.deblurrer = Deblurrer(load_generator(model_dir, device), device)

    def predict(self, context, model_input: "pd.DataFrame", params: dict | None = None):
        from gir.rectifier.ensemble import with_ensemble

        # This request's views only: the loaded model is shared by every request.
        deblurrer = with_ensemble(self.deblurrer, int((params or {}).get("ensemble", 1)))
        out = [base64.b64encode(encode_png(deblurrer(rgb))).decode()
               for rgb in _images(model_input)]
        return pd.DataFrame({"image": out})


class GirDetectorModel(pyfunc_base()):
    """MLflow pyfunc: column ``image`` (base64 file bytes) -> the decision per image."""

    def load_context(self, context):
        self.detector = load_detector(context.artifacts["detector"])

    def predict(self, context, model_input: "pd.DataFrame", params: dict | None = None):
        rows = []
        for rgb in _images(model_input):
            d = detect(rgb, self.detector)
            rows.append({"blurred": d.blurred, "blur_type": d.blur_type,
                         "confidence": d.confidence, "blurred_fraction": d.blurred_fraction})
        return pd.DataFrame(rows, columns=[name for _, name in DETECTOR_OUTPUTS])


def log_deblur_pyfunc(mlflow, model_dir: str | Path):
    """Log model_dir's generator as the run's pyfunc model 'model'; return its model info."""
    from gir.rectifier.inference import SPEC_FILE, WEIGHTS_FILE

    model_dir = Path(model_dir)
    return log_code_model(mlflow, DEBLUR_ENTRY,
                          {"generator": model_dir / WEIGHTS_FILE,
                           "generator_spec": model_dir / SPEC_FILE},
                          outputs=[("string", "image")],
                          params=[("ensemble", "long", 1)])


def log_detector_pyfunc(mlflow, detector_file: str | Path):
    """Log a detector.json as the run's pyfunc model 'model'; return its model info."""
    return log_code_model(mlflow, DETECTOR_ENTRY, {"detector": detector_file}, DETECTOR_OUTPUTS)


def _load_inner(uri: str, cls: type):
    """The GIR python model inside the pyfunc at uri, or one clear GirError."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        model = mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise GirError(f"cannot load model {uri}: {str(exc).splitlines()[0]}") from None
    inner = model.unwrap_python_model()
    if not isinstance(inner, cls):
        what = "deblurring" if cls is GirDeblurModel else "detector"
        raise GirError(f"{uri} is not a GIR {what} model")
    return inner


def load_pyfunc_deblurrer(uri: str):
    """The Deblurrer inside a registered pyfunc (models:/gir-deblur@champion, runs:/...)."""
    return _load_inner(uri, GirDeblurModel).deblurrer


def load_registered_detector(uri: str) -> Detector:
    """The Detector inside a registered gir-detector pyfunc (models:/gir-detector@champion)."""
    return _load_inner(uri, GirDetectorModel).detector

"""The `detector` step: fit the blur detector, score it, track it and register it in MLflow.

Like the deblurrer: the fit is deterministic (``detect.seed``), the numbers come from held-out
synthetic composites (gir.detect_fit), the run is tagged with the engine and git commit, and the
registered model ``gir-detector`` (a pyfunc: image in, decision out) becomes ``champion`` only
if its blur-map F-measure is at least the current champion's, both scored now on the same
composites; otherwise it is the ``challenger``. gir.detect.get_detector() then uses it.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from gir.config import Params, flatten, to_dict
from gir.detect import DETECTOR_FILE, Detector
from gir.errors import GirError
from gir.imageio import write_text_atomic
from gir.promotion import CHAMPION, log_code_model, promote_by_score, pyfunc_base

REGISTRATION_FILE = "registration.json"
METRIC = "f_measure"   # blur-map F-measure: what promotion compares
OUTPUTS = [("boolean", "blurred"), ("string", "blur_type"), ("double", "confidence"),
           ("double", "blurred_fraction")]


class GirDetectorModel(pyfunc_base()):
    """MLflow pyfunc: column ``image`` (base64 file bytes) -> the decision per image."""

    def load_context(self, context):
        from gir.detect import load_detector

        self.detector = load_detector(context.artifacts["detector"])

    def predict(self, context, model_input: "pd.DataFrame", params: dict | None = None):
        import base64

        from gir.detect import detect
        from gir.imageio import decode_image

        if isinstance(model_input, dict):
            model_input = pd.DataFrame(model_input)
        if "image" not in getattr(model_input, "columns", []):
            raise GirError("input needs a column 'image' with base64-encoded image files")
        rows = []
        for i, b64 in enumerate(model_input["image"]):
            rgb, _ = decode_image(base64.b64decode(b64), f"image[{i}]")
            d = detect(rgb, self.detector)
            rows.append({"blurred": d.blurred, "blur_type": d.blur_type,
                         "confidence": d.confidence, "blurred_fraction": d.blurred_fraction})
        return pd.DataFrame(rows, columns=[name for _, name in OUTPUTS])


def train_detector(params: Params, out_dir: str | Path, metrics_path: str | Path,
                   engine: str = "cli") -> dict:
    """Fit, score, log and register the detector.

    Writes out_dir/detector.json, the held-out numbers to metrics_path (DVC metrics) and the
    registry decision to out_dir/registration.json; returns that decision.
    """
    import skimage
    from mlflow import MlflowClient

    from gir.detect import save_detector
    from gir.detect_fit import blur_map_scores, evaluate_detector, fit_detector
    from gir.tracking import run_tags, setup

    cfg = params.detect
    out_dir = Path(out_dir)
    detector = fit_detector(cfg.seed, cfg.fit_per_image)
    save_detector(detector, out_dir / DETECTOR_FILE)
    metrics = evaluate_detector(detector, per_image=cfg.eval_per_image)
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2))

    mlflow = setup(params.mlflow)
    tags = run_tags(engine, f"scikit-image {skimage.__version__} sample photos")
    with mlflow.start_run(run_name="detector", tags=tags) as run:
        mlflow.log_params(flatten({"detect": to_dict(cfg)}))
        mlflow.log_metrics({k: float(v) for k, v in flatten(metrics).items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
        mlflow.log_artifact(str(out_dir / DETECTOR_FILE), "detector")
        mlflow.log_artifact(str(metrics_path), "detector")
        info = log_code_model(mlflow, Path(__file__).with_name("mlflow_detector.py"),
                              {"detector": out_dir / DETECTOR_FILE}, OUTPUTS)
        version = mlflow.register_model(info.model_uri, cfg.model_name)
        client = MlflowClient()
        for tag, value in ((METRIC, metrics["blur_map"][METRIC]),
                           ("type_accuracy", metrics["blur_type"]["accuracy"]),
                           ("seed", cfg.seed)):
            client.set_model_version_tag(cfg.model_name, version.version, tag, str(value))

        def score_champion(uri: str) -> float:
            # The same held-out composites (same seed and count) the new detector was scored on.
            return blur_map_scores(load_registered_detector(uri), cfg.eval_per_image)[METRIC]

        decision = {"model_name": cfg.model_name, "version": int(version.version),
                    **promote_by_score(client, cfg.model_name, version.version, METRIC,
                                       metrics["blur_map"][METRIC], score_champion,
                                       ties_win=True)}
        mlflow.set_tags({"registered_version": version.version,
                         "registered_alias": decision["alias"]})
        decision.update(model_uri=f"models:/{cfg.model_name}/{version.version}",
                        run_id=run.info.run_id)
    write_text_atomic(out_dir / REGISTRATION_FILE, json.dumps(decision, indent=2))
    return decision


def load_registered_detector(uri: str) -> Detector:
    """The Detector inside a registered gir-detector pyfunc (models:/gir-detector@champion)."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        model = mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise GirError(f"cannot load model {uri}: {str(exc).splitlines()[0]}") from None
    inner = model.unwrap_python_model()
    if not isinstance(inner, GirDetectorModel):
        raise GirError(f"{uri} is not a GIR detector model")
    return inner.detector


@contextmanager
def _brief_http():
    """A tracking server that is down answers within seconds, not after MLflow's retries."""
    brief = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    saved = {k: os.environ.get(k) for k in brief}
    for k, v in brief.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def registered_champion(params: Params) -> Detector | None:
    """models:/<detect.model_name>@champion, or None (quietly) if the store does not have it."""
    from mlflow import MlflowClient

    from gir.tracking import setup

    name = params.detect.model_name
    with _brief_http():
        setup(params.mlflow, experiment=False)
        try:
            MlflowClient().get_model_version_by_alias(name, CHAMPION)
        except Exception:  # noqa: BLE001 - no model, no alias, no store: all mean "not here"
            return None
        try:
            return load_registered_detector(f"models:/{name}@{CHAMPION}")
        except Exception as exc:  # noqa: BLE001 - there but unusable: say so once, fall back
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"gir: not using models:/{name}@{CHAMPION}: {reason}", file=sys.stderr)
            return None

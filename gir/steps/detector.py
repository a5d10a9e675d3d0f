"""The `detector` step: fit the blur detector, score it, track it and register it in MLflow.

Like the deblurrer: the fit is deterministic (``detect.seed``), the numbers come from held-out
synthetic composites (gir.rectifier.detect_fit), the run is tagged with the engine and git commit, and the
registered model ``gir-detector`` (a pyfunc: image in, decision out) becomes ``champion`` only
if its blur-map F-measure is at least the current champion's, both scored now on the same
composites; otherwise it is the ``challenger``. gir.tracking.resolve then hands it to `gir detect`.
"""

from __future__ import annotations

import json
from pathlib import Path

from gir.config import Params, flatten, to_dict
from gir.rectifier.detect import DETECTOR_FILE
from gir.data.imageio import write_text_atomic
from gir.tracking.promotion import promote_by_score
from gir.tracking.pyfunc import load_registered_detector, log_detector_pyfunc

REGISTRATION_FILE = "registration.json"
METRIC = "f_measure"   # blur-map F-measure: what promotion compares


def train_detector(params: Params, out_dir: str | Path, metrics_path: str | Path,
                   engine: str = "cli") -> dict:
    """Fit, score, log and register the detector.

    Writes out_dir/detector.json, the held-out numbers to metrics_path (DVC metrics) and the
    registry decision to out_dir/registration.json; returns that decision.
    """
    import skimage
    from mlflow import MlflowClient

    from gir.rectifier.detect import save_detector
    from gir.rectifier.detect_fit import blur_map_scores, evaluate_detector, fit_detector
    from gir.tracking.runs import run_tags, setup

    cfg = params.detect
    out_dir = Path(out_dir)
    detector = fit_detector(cfg.seed, cfg.fit_per_image)
    save_detector(detector, out_dir / DETECTOR_FILE)
    metrics = evaluate_detector(detector, per_image=cfg.eval_per_image)
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2))

    mlflow = setup(params.mlflow)
    tags = run_tags(engine, f"scikit-image {skimage.__version__} sample photos", "detector")
    with mlflow.start_run(run_name="detector", tags=tags) as run:
        mlflow.log_params(flatten({"detect": to_dict(cfg)}))
        mlflow.log_metrics({k: float(v) for k, v in flatten(metrics).items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
        mlflow.log_artifact(str(out_dir / DETECTOR_FILE), "detector")
        mlflow.log_artifact(str(metrics_path), "detector")
        info = log_detector_pyfunc(mlflow, out_dir / DETECTOR_FILE)
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

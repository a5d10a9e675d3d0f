"""The `detector` step: fit the blur detector, score it, track it and register it in MLflow.

Like the deblurrer: the fit is deterministic (``detect.seed``), the run is tagged with the engine
and git commit, and the registered model ``gir-detector`` (a pyfunc: image in, decision out)
becomes ``champion`` only with evidence. The evidence is the independent benchmark's photos
(gir.data.benchmark, through gir.rectifier.detect_eval.benchmark_items): the
new fit's recall on its blurred photos, at the threshold that calls detect.false_alarm_rate of
its sharp photos blurred, must beat the champion's, scored now on the same photos, with a
paired bootstrap 95% interval whose lower bound is above zero. Otherwise it is the
``challenger``. gir.tracking.resolve then hands the champion to `gir detect`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from gir.config import Params, flatten, to_dict
from gir.data.imageio import write_text_atomic
from gir.rectifier.detect import DETECTOR_FILE, Detector, with_operating_point
from gir.rectifier.detect_eval import (
    EvalItem,
    benchmark_items,
    paired_recall_interval,
    score_items,
    seconds_per_photo,
    summarise,
    threshold_at,
    write_figure,
)
from gir.tracking.promotion import CHALLENGER, CHAMPION
from gir.tracking.pyfunc import load_registered_detector, log_detector_pyfunc

REGISTRATION_FILE = "registration.json"
FIGURE_FILE = "detect_eval.png"
METRIC = "recall_at_far"   # recall at detect.false_alarm_rate on the benchmark: what promotion compares


def evaluate_on(detector: Detector, items: list[EvalItem], rate: float,
                figure: str | Path | None = None) -> tuple[dict, list[dict]]:
    """(summary, per-photo records) of detector on items; the figure written if asked."""
    records = score_items(detector, items)
    summary = summarise(records, rate)
    if figure:
        write_figure(summary, figure)
    return summary, records


def mlflow_metrics(summary: dict) -> dict:
    """The numeric leaves of a summary as MLflow metric names (no curves, no counts of bins)."""
    flat = flatten({k: v for k, v in summary.items() if k not in ("roc", "calibration")})
    flat["calibration.ece"] = summary["calibration"]["ece"]
    flat["calibration.probability_ece"] = summary["calibration"]["probability"]["ece"]
    return {re.sub(r"[^\w\-. /]", "_", k): float(v) for k, v in flat.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None}


def recall_hits(records: list[dict], rate: float) -> np.ndarray:
    """Per blurred photo (in order): 1 if called blurred at the threshold that calls `rate`
    of the same benchmark's sharp photos blurred, else 0."""
    sharp = [r["score"] for r in records if r["kind"] == "sharp"]
    t = threshold_at(np.array(sharp), rate) if sharp else 0.5
    return np.array([float(r["score"] >= t) for r in records if r["kind"] != "sharp"])


def detect_eval(params: Params, detector: Detector, items: list[EvalItem], out_dir: str | Path,
                log_mlflow: bool = True, engine: str = "cli") -> dict:
    """`gir detect-eval`: score detector on the benchmark items; write detect_eval.json and
    the figure to out_dir; log both to an MLflow run named detect-eval."""
    out_dir = Path(out_dir)
    rate = params.detect.false_alarm_rate
    detector = with_operating_point(detector, rate)
    summary, records = evaluate_on(detector, items, rate, out_dir / FIGURE_FILE)
    if items:
        summary["seconds_1280x720"] = seconds_per_photo(detector, items[0].rgb)
    summary["records"] = records
    write_text_atomic(out_dir / "detect_eval.json", json.dumps(summary, indent=2))
    if log_mlflow:
        from gir.tracking.runs import run_tags, setup

        mlflow = setup(params.mlflow)
        with mlflow.start_run(run_name="detect-eval",
                              tags=run_tags(engine, "independent benchmark", "detect-eval")):
            mlflow.log_params(flatten({"detect": to_dict(params.detect)}))
            mlflow.log_metrics(mlflow_metrics(summary))
            mlflow.log_artifact(str(out_dir / FIGURE_FILE), "detect_eval")
            mlflow.log_artifact(str(out_dir / "detect_eval.json"), "detect_eval")
    return summary


def promote_with_evidence(client, name: str, version: str, new_hits: np.ndarray,
                          champion_hits) -> dict:
    """champion when there is none yet, or when the paired bootstrap interval of recall(new) -
    recall(champion) on the same blurred photos has its lower bound above zero."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    decision = {"metric": METRIC, "new_score": round(float(np.mean(new_hits)), 4)
                if len(new_hits) else None, "champion_version": None, "champion_score": None}
    if champion is None:
        alias, reason = CHAMPION, "no champion yet"
    elif not len(new_hits):
        alias, reason = CHALLENGER, "no benchmark photos to show evidence on"
    elif (old := champion_hits(f"models:/{name}@{CHAMPION}")) is None:
        alias, reason = CHAMPION, (f"champion v{champion.version} is a detector format this "
                                   f"gir cannot run; replaced")
    else:
        ci = paired_recall_interval(new_hits, old)
        decision.update(champion_version=int(champion.version),
                        champion_score=round(float(np.mean(old)), 4), interval=ci)
        wins = ci["low"] > 0
        alias = CHAMPION if wins else CHALLENGER
        reason = (f"{'beats' if wins else 'does not beat'} champion v{champion.version}: "
                  f"recall {decision['new_score']:.3f} vs {decision['champion_score']:.3f}, "
                  f"paired 95% interval [{ci['low']:+.3f}, {ci['high']:+.3f}] over {ci['n']} "
                  f"blurred photos {'above' if wins else 'not above'} zero")
    client.set_registered_model_alias(name, alias, version)
    decision.update(alias=alias, reason=reason)
    return decision


def train_detector(params: Params, out_dir: str | Path, metrics_path: str | Path,
                   engine: str = "cli", bench: list[EvalItem] | None = None) -> dict:
    """Fit, score, log and register the detector.

    Writes out_dir/detector.json, the numbers to metrics_path (DVC metrics: synthetic blur map
    and, given bench items, the independent benchmark) and the registry decision to
    out_dir/registration.json; returns that decision.
    """
    import skimage
    from mlflow import MlflowClient

    from gir.rectifier.detect import save_detector
    from gir.rectifier.detect_fit import blur_map_scores, fit_detector
    from gir.tracking.runs import run_tags, setup

    cfg = params.detect
    out_dir = Path(out_dir)
    detector = with_operating_point(fit_detector(cfg.seed, cfg.fit_per_image),
                                    cfg.false_alarm_rate)
    save_detector(detector, out_dir / DETECTOR_FILE)
    metrics = {"blur_map": blur_map_scores(detector, cfg.eval_per_image)}
    records = []
    if bench is None:
        bench = benchmark_items(params.data.synth, cfg.eval_per_kind)
    if bench:
        metrics["benchmark"], records = evaluate_on(detector, bench, cfg.false_alarm_rate,
                                                    out_dir / FIGURE_FILE)
        metrics["benchmark"].pop("roc")
        metrics["blur_type"] = {k: metrics["benchmark"]["blur_type"][k]
                                for k in ("accuracy", "motion_vs_isotropic")}
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2))

    mlflow = setup(params.mlflow)
    tags = run_tags(engine, f"scikit-image {skimage.__version__} sample photos", "detector")
    with mlflow.start_run(run_name="detector", tags=tags) as run:
        mlflow.log_params(flatten({"detect": to_dict(cfg)}))
        mlflow.log_metrics({f"blur_map.{k}": float(v) for k, v in metrics["blur_map"].items()})
        if bench:
            mlflow.log_metrics({f"benchmark.{k}": v for k, v in mlflow_metrics(
                metrics["benchmark"]).items()})
            mlflow.log_artifact(str(out_dir / FIGURE_FILE), "detector")
        mlflow.log_artifact(str(out_dir / DETECTOR_FILE), "detector")
        mlflow.log_artifact(str(metrics_path), "detector")
        info = log_detector_pyfunc(mlflow, out_dir / DETECTOR_FILE)
        version = mlflow.register_model(info.model_uri, cfg.model_name)
        client = MlflowClient()
        client.set_model_version_tag(cfg.model_name, version.version, "seed", str(cfg.seed))

        def champion_hits(uri: str) -> np.ndarray | None:
            # The same benchmark photos the new detector was scored on, at the same rate.
            try:
                champion = load_registered_detector(uri)
            except Exception:  # noqa: BLE001 - an older format (v1) or a broken model
                return None
            return recall_hits(score_items(champion, bench or []), cfg.false_alarm_rate)

        decision = {"model_name": cfg.model_name, "version": int(version.version),
                    **promote_with_evidence(client, cfg.model_name, version.version,
                                            recall_hits(records, cfg.false_alarm_rate),
                                            champion_hits)}
        mlflow.set_tags({"registered_version": version.version,
                         "registered_alias": decision["alias"]})
        decision.update(model_uri=f"models:/{cfg.model_name}/{version.version}",
                        run_id=run.info.run_id)
    write_text_atomic(out_dir / REGISTRATION_FILE, json.dumps(decision, indent=2))
    return decision

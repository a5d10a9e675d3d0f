"""The detector's scoring arithmetic on cases with known answers: thresholds at a false-alarm
rate, ROC, calibration error, type confusion and the paired bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest

from gir.rectifier.detect import MLP, Detector, Linear
from gir.rectifier.detect_eval import (
    calibration,
    confusion,
    extent_bucket,
    paired_recall_interval,
    roc_curve,
    summarise,
    threshold_at,
)


def _rec(kind, score, called=None, predicted=None, extent=None):
    r = {"id": f"{kind}-{score}", "kind": kind, "row": kind, "extent": extent,
         "bucket": extent_bucket(extent), "score": score,
         "called_blurred": score >= 0.5 if called is None else called}
    if kind != "sharp":
        r["predicted_type"], r["true_type"] = predicted, {"shake": "motion"}.get(kind, kind)
    return r


def test_threshold_calls_at_most_that_share_of_sharp_photos_blurred():
    sharp = np.linspace(0, 0.99, 100)
    for rate in (0.0, 0.01, 0.05, 0.1):
        t = threshold_at(sharp, rate)
        assert (sharp >= t).mean() <= rate
        assert (sharp >= threshold_at(sharp, rate + 0.01)).mean() > (sharp >= t).mean()


def test_detector_threshold_follows_its_operating_point():
    lin = Linear([0.0], [1.0], [[1.0]], [0.0], [0, 1])
    det = Detector(lin, lin, sharp_scores=list(np.linspace(0, 0.99, 100)))
    assert det.threshold(0.05) > det.threshold(0.2)
    assert sum(s >= det.threshold(0.05) for s in det.sharp_scores) == 5
    assert Detector(lin, lin).threshold() == 0.5          # no calibration scores: 0.5


def test_roc_and_recall_table():
    recs = [_rec("sharp", s) for s in (0.1, 0.2, 0.3, 0.9)] + \
           [_rec("motion", s, predicted="motion", extent=5) for s in (0.95, 0.8, 0.4)] + \
           [_rec("shake", 0.99, predicted="motion", extent=20)]
    s = summarise(recs, 0.25)
    assert s["photos"] == {"sharp": 4, "blurred": 4}
    # At 10% false alarms (none of 4) the threshold is just above 0.9: 0.95 and 0.99 found;
    # at 25% (one of 4) it is just above 0.3: all four.
    assert s["recall_at_far"]["far_0.1"] == 0.5 and s["recall_at_far"]["far_0.25"] == 1.0
    assert s["operating_point"] == {"target_false_alarm_rate": 0.25, "false_alarm_rate": 0.25,
                                    "recall": 0.75}
    assert s["by_kind"]["shake"]["n"] == 1 and s["by_extent"]["3-7 px"]["n"] == 3
    roc = roc_curve(np.array([0.1, 0.9]), np.array([0.5, 0.95]))
    assert roc["far"][0] == 0 and roc["far"][-1] == 1 and roc["recall"][-1] == 1


def test_calibration_error_known_answer():
    perfect = [_rec("sharp", 0.05)] * 19 + [_rec("motion", 0.05, predicted="motion")] + \
              [_rec("motion", 0.95, predicted="motion")] * 19 + [_rec("sharp", 0.95)]
    assert calibration(perfect)["ece"] == pytest.approx(0.0, abs=1e-9)
    assert calibration(perfect)["probability"]["ece"] == pytest.approx(0.0, abs=1e-9)
    # Every call made with confidence 0.95, half of them wrong.
    overconfident = [_rec("sharp", 0.95)] * 10 + [_rec("motion", 0.95, predicted="motion")] * 10
    assert calibration(overconfident)["ece"] == pytest.approx(0.45)
    assert calibration(overconfident)["probability"]["ece"] == pytest.approx(0.45)


def test_confusion_counts_shake_as_motion():
    recs = [_rec("shake", 0.9, predicted="motion"), _rec("defocus", 0.9, predicted="gaussian"),
            _rec("gaussian", 0.9, predicted="gaussian"), _rec("motion", 0.2, predicted=None)]
    c = confusion(recs)
    assert c["matrix"]["motion"]["motion"] == 1 and c["matrix"]["motion"]["none"] == 1
    assert c["accuracy"] == 0.5 and c["n"] == 4
    assert c["motion_vs_isotropic"] == 0.75    # defocus typed gaussian: right all round


def test_paired_interval():
    better = paired_recall_interval(np.ones(40), np.r_[np.ones(20), np.zeros(20)])
    assert better["mean"] == 0.5 and better["low"] > 0.3
    same = paired_recall_interval(np.r_[np.ones(20), np.zeros(20)],
                                  np.r_[np.ones(20), np.zeros(20)])
    assert same["low"] == 0 and same["high"] == 0


def test_mlp_matches_sklearn():
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + x[:, 1] ** 2 > 1).astype(int)
    ours = MLP.fit(x, y, hidden=(8,), seed=1)
    ref = MLPClassifier((8,), alpha=1e-3, max_iter=400, early_stopping=True,
                        random_state=1).fit((x - x.mean(0)) / (x.std(0) + 1e-6), y)
    np.testing.assert_allclose(ours.proba(x), ref.predict_proba(
        (x - x.mean(0)) / (x.std(0) + 1e-6)), atol=1e-9)


def test_detect_eval_writes_the_figure_and_logs_to_mlflow(tmp_path, mlflow_uri):
    import mlflow
    from mlflow import MlflowClient

    from gir.data import blur
    from gir.data.sources.sample import load_sample_image
    from gir.rectifier.detect_eval import EvalItem
    from gir.steps.detector import detect_eval
    from gir.tracking.resolve import resolve_detector
    from tests.helpers import tiny_params

    photo = load_sample_image("coffee")[:160, :200]
    rng = np.random.default_rng(0)
    items = [EvalItem("s", photo, "sharp", "sharp"),
             EvalItem("m", blur.degrade(photo, blur.random_blur("motion", rng), rng), "motion",
                      "heldout/motion", 12.0),
             EvalItem("g", blur.degrade(photo, blur.random_blur("gaussian", rng), rng),
                      "gaussian", "train/gaussian", 5.0)]
    s = detect_eval(tiny_params(), resolve_detector(), items, tmp_path)
    assert (tmp_path / "detect_eval.png").stat().st_size > 1000
    assert s["photos"] == {"sharp": 1, "blurred": 2} and s["heldout_family"]["n"] == 1
    assert s["seconds_1280x720"]["wall"] > 0 and len(s["records"]) == 3
    mlflow.set_tracking_uri(mlflow_uri)
    run = mlflow.search_runs(search_all_experiments=True, filter_string=
                             "attributes.run_name = 'detect-eval'", output_format="list")[0]
    assert "calibration.ece" in run.data.metrics and "blur_type.accuracy" in run.data.metrics
    assert "detect_eval/detect_eval.png" in {
        a.path for a in MlflowClient().list_artifacts(run.info.run_id, "detect_eval")}


def test_out_of_fold_scores_rows_it_never_fits_on():
    """The Platt scaling scores the mild-blur photos without fitting the photo model on them:
    rows outside fit_rows, even with labels contradicting the rest, change no score."""
    from gir.rectifier.detect_fit import _out_of_fold

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = (x[:, 0] > 0).astype(int)
    photos = np.repeat(np.arange(4), 30)
    fit_rows = np.arange(120) % 3 != 0
    flipped = np.where(fit_rows, y, 1 - y)
    a = _out_of_fold(x, y, photos, 1.0, fit_rows)
    b = _out_of_fold(x, flipped, photos, 1.0, fit_rows)
    np.testing.assert_allclose(a, b)
    assert ((a[:, 1] > 0.5) == (y == 1)).mean() > 0.9     # and the unfitted rows are scored
    assert not np.allclose(a, _out_of_fold(x, flipped, photos, 1.0))


@pytest.mark.parametrize("family,kind,most", [("mild_motion", "motion", 4), ("mild_shake", "motion", 4),
                                              ("mild_defocus", "defocus", 3),
                                              ("mild_gaussian", "gaussian", 2.5)])
def test_mild_families_blur_a_little_and_are_typed(family, kind, most):
    from gir.rectifier.detect_fit import TYPE_OF, blur_linear

    rng = np.random.default_rng(3)
    point = np.zeros((41, 41, 1))
    point[20, 20] = 1.0
    for _ in range(5):
        psf, drawn = blur_linear(point, family, rng)
        assert 0 < drawn["extent"] <= most
        assert abs(psf.sum() - 1) < 1e-6 and psf.max() < 1      # spread, energy kept
    assert TYPE_OF[family] == kind

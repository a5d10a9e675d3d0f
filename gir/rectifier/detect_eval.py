"""Scoring the blur detector on labelled photos: recall at fixed false-alarm rates on sharp
photos (ROC), blur-type confusion, calibration (reliability, ECE), and a paired bootstrap
interval for comparing two detectors on the same photos.

Pure numpy (plus matplotlib for the figure): the photos come from the caller, e.g. the
independent benchmark (gir.benchmarks.detector) in `gir detect-eval` and the `detector` stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gir.rectifier.detect import Detector, classify_type, detect

FALSE_ALARM_RATES = (0.01, 0.02, 0.05, 0.1)
EXTENT_BUCKETS = ((0, 3, "under 3 px"), (3, 7, "3-7 px"), (7, 15, "7-15 px"),
                  (15, 1e9, "15 px and more"))
TYPES = ("motion", "defocus", "gaussian")
TYPE_OF_KIND = {"motion": "motion", "shake": "motion", "defocus": "defocus",
                "gaussian": "gaussian"}   # shake counts as motion
CALIBRATION_BINS = 10


@dataclass
class EvalItem:
    """One labelled photo: kind is a blur kind (motion, shake, defocus, gaussian) or "sharp";
    row names the benchmark row it belongs to (e.g. held-out family, mild motion, sharp)."""

    item_id: str
    rgb: np.ndarray
    kind: str
    row: str
    extent: float | None = None


HELDOUT_GROUPS = ("heldout", "mild_heldout")   # the benchmark's held-out blur family


def blur_extent(blur_params: dict) -> float | None:
    """How far a blur reaches (px), from a benchmark pair's recorded blur parameters."""
    for key, factor in (("extent_px", 1.0), ("extent", 1.0), ("length", 1.0),
                        ("radius", 2.0), ("sigma", 2.5)):
        if isinstance(blur_params.get(key), (int, float)):
            return float(blur_params[key]) * factor
    return None


def benchmark_items(synth, per_kind: int = 2, photo_dir=None, seed: int = 2026,
                    max_side: int = 512) -> list[EvalItem]:
    """The independent benchmark (gir.data.benchmark: its photos, the training and held-out
    families, mild blur) as labelled photos, row "<group>/<kind>". Sharp rows: each photo as
    it is, and per_kind camera renders of it without blur (noise, tone curve, JPEG), so false
    alarms are counted on the same photos the blurred rows come from."""
    import json

    from gir.data import benchmark
    from gir.data.blur import BlurSpec
    from gir.data.heldout_blur import render_camera
    from gir.data.sources.synthetic import image_rng

    photos = benchmark.load_photos(photo_dir, max_side)
    items = []
    for p in benchmark.benchmark_pairs(photos, synth, per_kind=per_kind, seed=seed):
        group, kind = p.row["group"], p.row["kind"]
        if kind == "sharp":
            items.append(EvalItem(p.pair_id, p.blur, "sharp", "sharp"))
            continue
        items.append(EvalItem(p.pair_id, p.blur, kind, f"{group}/{kind}",
                              blur_extent(json.loads(p.row["blur_params"] or "{}"))))
    identity = np.ones((1, 1), np.float32)
    for name, photo in photos.items():
        rng = image_rng(seed + 1, name)
        for i in range(per_kind):
            spec = BlurSpec("gaussian", identity, {})
            img = render_camera(photo, spec, benchmark.camera_degradations(rng), rng)
            items.append(EvalItem(f"{name}-camera-{i}", img, "sharp", "sharp/camera"))
    return items


def extent_bucket(extent: float | None) -> str:
    if extent is None:
        return "unknown"
    return next(name for lo, hi, name in EXTENT_BUCKETS if lo <= extent < hi)


def score_items(detector: Detector, items: list[EvalItem]) -> list[dict]:
    """Run the detector on every item: its blur score, decision at the detector's operating
    point, and (for blurred items, whatever the decision) the blur type it would report."""
    out = []
    for it in items:
        det = detect(it.rgb, detector)
        rec = {"id": it.item_id, "kind": it.kind, "row": it.row, "extent": it.extent,
               "bucket": extent_bucket(it.extent), "score": det.blur_score,
               "called_blurred": det.blurred, "threshold": det.threshold}
        if it.kind != "sharp":
            kind = det.blur_type
            if kind is None:
                from gir.rectifier.blur_features import to_grey

                kind, _ = classify_type(to_grey(it.rgb), det.labels, detector)
            rec["predicted_type"] = kind
            rec["true_type"] = TYPE_OF_KIND.get(it.kind, it.kind)
        out.append(rec)
    return out


def threshold_at(sharp_scores: np.ndarray, rate: float) -> float:
    """The smallest score threshold that calls at most `rate` of these sharp photos blurred."""
    s = np.sort(np.asarray(sharp_scores, np.float64))
    k = int(np.floor(rate * len(s)))
    return float(np.nextafter(s[len(s) - 1 - k], 2.0)) if k < len(s) else 0.0


def roc_curve(sharp: np.ndarray, blurred: np.ndarray) -> dict:
    """False-alarm rate (sharp called blurred) and recall at every distinct threshold."""
    thresholds = np.unique(np.concatenate([sharp, blurred, [np.inf]]))[::-1]
    far = [(sharp >= t).mean() if len(sharp) else 0.0 for t in thresholds]
    rec = [(blurred >= t).mean() if len(blurred) else 0.0 for t in thresholds]
    return {"far": [round(float(v), 4) for v in far], "recall": [round(float(v), 4) for v in rec]}


def _recall_table(recs: list[dict], thresholds: dict, key: str) -> dict:
    """Per value of key (kind / row / bucket): recall at each fixed-FAR threshold and at the
    detector's operating point, with the count."""
    table = {}
    for value in sorted({r[key] for r in recs if r["kind"] != "sharp"}):
        group = [r for r in recs if r["kind"] != "sharp" and r[key] == value]
        scores = np.array([r["score"] for r in group])
        row = {f"far_{rate:g}": round(float((scores >= t).mean()), 4)
               for rate, t in thresholds.items()}
        row["operating_point"] = round(float(np.mean([r["called_blurred"] for r in group])), 4)
        row["n"] = len(group)
        table[value] = row
    return table


def reliability(p: np.ndarray, y: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Per equal-width bin of p: count, mean p and share of y; expected calibration error =
    the count-weighted mean |mean p - share|."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(p[m].mean() - y[m].mean())
            rows.append({"bin": b, "n": int(m.sum()), "mean_score": round(float(p[m].mean()), 4),
                         "blurred_share": round(float(y[m].mean()), 4)})
    return {"ece": round(float(ece), 4), "bins": rows}


def calibration(recs: list[dict], bins: int = CALIBRATION_BINS) -> dict:
    """Calibration of what `gir detect` reports. ``ece``/``bins``: its confidence (P(the
    blurred / not blurred call is right)) against how often the call is right. ``probability``:
    P(blurred) against the share truly blurred."""
    p = np.array([r["score"] for r in recs])
    y = np.array([r["kind"] != "sharp" for r in recs], float)
    called = np.array([r["called_blurred"] for r in recs], bool)
    confidence = np.where(called, p, 1 - p)
    right = (called == (y == 1)).astype(float)
    return {**reliability(confidence, right, bins), "probability": reliability(p, y, bins)}


def confusion(recs: list[dict]) -> dict:
    """Blur type truth (shake as motion) x predicted type over blurred photos, the accuracy,
    and the accuracy of the coarser call motion vs isotropic (defocus or Gaussian)."""
    blurred = [r for r in recs if r["kind"] != "sharp"]
    table = {t: {p: 0 for p in TYPES + ("none",)} for t in TYPES}
    for r in blurred:
        if r["true_type"] in table:
            table[r["true_type"]][r["predicted_type"] or "none"] += 1
    n = sum(sum(v.values()) for v in table.values())
    correct = sum(table[t][t] for t in TYPES)
    # The coarser question a photo answers more reliably: along a path, or all round?
    isotropic = [t for t in TYPES if t != "motion"]
    coarse = table["motion"]["motion"] + sum(table[t][p] for t in isotropic for p in isotropic)
    return {"accuracy": round(correct / max(n, 1), 4),
            "motion_vs_isotropic": round(coarse / max(n, 1), 4), "n": n, "matrix": table}


def summarise(recs: list[dict], operating_rate: float) -> dict:
    """Everything `gir detect-eval` reports, from score_items' records."""
    sharp = np.array([r["score"] for r in recs if r["kind"] == "sharp"])
    blurred = np.array([r["score"] for r in recs if r["kind"] != "sharp"])
    rates = sorted(set(FALSE_ALARM_RATES) | {operating_rate})
    thresholds = {rate: threshold_at(sharp, rate) for rate in rates} if len(sharp) else {}
    op_far = float(np.mean([r["called_blurred"] for r in recs if r["kind"] == "sharp"])) if len(
        sharp) else None
    op_recall = float(np.mean([r["called_blurred"] for r in recs if r["kind"] != "sharp"])) if len(
        blurred) else None
    return {
        "photos": {"sharp": int(len(sharp)), "blurred": int(len(blurred))},
        "operating_point": {"target_false_alarm_rate": operating_rate,
                            "false_alarm_rate": None if op_far is None else round(op_far, 4),
                            "recall": None if op_recall is None else round(op_recall, 4)},
        "recall_at_far": {f"far_{rate:g}": round(float((blurred >= t).mean()), 4)
                          for rate, t in thresholds.items()},
        "by_kind": _recall_table(recs, thresholds, "kind"),
        "by_row": _recall_table(recs, thresholds, "row"),
        "by_extent": _recall_table(recs, thresholds, "bucket"),
        "blur_type": confusion(recs),
        "calibration": calibration(recs),
        "roc": roc_curve(sharp, blurred),
        "heldout_family": family_summary(recs, thresholds, HELDOUT_GROUPS),
    }


def family_summary(recs: list[dict], thresholds: dict, groups=HELDOUT_GROUPS) -> dict:
    """Recall (at each false-alarm rate on all sharp photos, and at the operating point) and
    blur-type accuracy over the blurred photos of some benchmark groups (rows "<group>/...")."""
    group = [r for r in recs if r["kind"] != "sharp" and r["row"].split("/")[0] in groups]
    if not group:
        return {"n": 0}
    scores = np.array([r["score"] for r in group])
    out = {f"recall_far_{rate:g}": round(float((scores >= t).mean()), 4)
           for rate, t in thresholds.items()}
    out["recall_operating_point"] = round(float(np.mean([r["called_blurred"] for r in group])), 4)
    types = confusion(group)
    out["type_accuracy"] = types["accuracy"]
    out["type_motion_vs_isotropic"] = types["motion_vs_isotropic"]
    out["n"] = len(group)
    return out


def paired_recall_interval(hits_new: np.ndarray, hits_old: np.ndarray, n_boot: int = 2000,
                           seed: int = 0, level: float = 0.95) -> dict:
    """Bootstrap interval of mean(hits_new - hits_old) over the same blurred photos (paired:
    resampling photos keeps each photo's two outcomes together)."""
    d = np.asarray(hits_new, float) - np.asarray(hits_old, float)
    if d.size == 0:
        return {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 0}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (n_boot, d.size))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": round(float(d.mean()), 4), "low": round(float(lo), 4),
            "high": round(float(hi), 4), "n": int(d.size), "level": level}


def write_figure(summary: dict, path) -> None:
    """ROC (operating point marked), reliability diagram and type confusion in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (roc, rel, conf) = plt.subplots(1, 3, figsize=(15, 4.6))
    roc.plot(summary["roc"]["far"], summary["roc"]["recall"], drawstyle="steps-post")
    op = summary["operating_point"]
    if op["false_alarm_rate"] is not None:
        roc.plot([op["false_alarm_rate"]], [op["recall"]], "o", color="C3",
                 label=f"operating point (target {op['target_false_alarm_rate']:.0%})")
        roc.legend(loc="lower right")
    roc.set(xlabel="false-alarm rate on sharp photos", ylabel="recall (blurred photos)",
            title="ROC", xlim=(0, 1), ylim=(0, 1.02))
    cal = summary["calibration"]
    centres = [(b["bin"] + 0.5) / CALIBRATION_BINS for b in cal["bins"]]
    rel.bar(centres, [b["blurred_share"] for b in cal["bins"]], width=1 / CALIBRATION_BINS,
            edgecolor="k", alpha=0.6, label="share right")
    rel.plot([0, 1], [0, 1], "k--", lw=1)
    rel.plot([b["mean_score"] for b in cal["bins"]], [b["blurred_share"] for b in cal["bins"]],
             "o-", color="C3", label="mean confidence")
    rel.set(xlabel="confidence of the call", ylabel="share of calls that are right",
            title=f"reliability (ECE {cal['ece']:.3f})", xlim=(0, 1), ylim=(0, 1))
    rel.legend(loc="upper left")
    matrix = summary["blur_type"]["matrix"]
    cols = list(TYPES) + ["none"]
    grid = np.array([[matrix[t][c] for c in cols] for t in TYPES])
    conf.imshow(grid, cmap="Blues")
    for (i, j), v in np.ndenumerate(grid):
        conf.text(j, i, str(v), ha="center", va="center")
    conf.set(xticks=range(len(cols)), xticklabels=cols, yticks=range(len(TYPES)),
             yticklabels=TYPES, xlabel="predicted", ylabel="true (shake = motion)",
             title=f"blur type (accuracy {summary['blur_type']['accuracy']:.0%}; motion vs "
                   f"isotropic {summary['blur_type']['motion_vs_isotropic']:.0%})")
    fig.tight_layout()
    from gir.data.imageio import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def seconds_per_photo(detector: Detector, rgb: np.ndarray, size=(1280, 720),
                      repeats: int = 3) -> dict:
    """Median wall and CPU (this process, all threads) seconds of detect() on rgb resized to
    size (W, H): wall is what users wait, CPU what it costs when the machine is shared."""
    import time

    from PIL import Image

    img = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        detect(img, detector)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": round(float(np.median(wall)), 3), "cpu": round(float(np.median(cpu)), 3)}

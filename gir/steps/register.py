"""Step 7, register: log the generator as an MLflow pyfunc, register it, promote it on evidence.

The pyfunc takes base64-encoded images of any size and mode and returns base64 PNGs, so
``mlflow models serve`` answers plain JSON and nothing freezes an input shape (the pt2 pitfall).
The new version, the current champion (scored now) and the shipped model are scored pair by
pair on the test split plus the independent benchmark (gir.data.benchmark); the version becomes
``champion`` only when the lower bound of the 95% bootstrap interval of its paired gain exceeds
``register.margin`` against both, otherwise it is the ``challenger``. The intervals and the
number of pairs go to reports/registration.json and the version's model card.
"""

from __future__ import annotations

import json
from pathlib import Path

from gir.config import Params
from gir.data.imageio import write_text_atomic
from gir.errors import GirError
from gir.rectifier.scoring import PRETRAINED
from gir.tracking.promotion import CHALLENGER, CHAMPION, promote_with_evidence
from gir.tracking.pyfunc import load_pyfunc_deblurrer, log_deblur_pyfunc

FLOOR = "the shipped pretrained model"
__all__ = ["CHALLENGER", "CHAMPION", "promote", "register", "evidence_pairs", "per_pair_scores"]


def evidence_pairs(params: Params, data_dir: str | Path, split_manifest: str | Path,
                   split: str) -> tuple[list, dict]:
    """The pairs a promotion is decided on: the split's pairs plus the independent
    benchmark's (register.benchmark_per_kind draws per group and kind), and their counts."""
    from gir.data.benchmark import benchmark_pairs, load_photos
    from gir.data.dataset import load_split

    cfg = params.register
    pairs = list(load_split(data_dir, split_manifest, split, params.evaluate.max_images))
    counts = {"test_split": len(pairs), "benchmark": 0}
    if cfg.benchmark_per_kind > 0:
        photos = load_photos(cfg.benchmark_photos or None, cfg.benchmark_max_side)
        bench = benchmark_pairs(photos, params.data.synth, cfg.benchmark_per_kind)
        for p in bench:  # pair ids of their own, so they never meet a split's
            p.pair_id = f"bench:{p.pair_id}"
        pairs += bench
        counts["benchmark"] = len(bench)
    return pairs, counts


def per_pair_scores(deblur, pairs: list, metric: str = "psnr") -> dict[str, float]:
    """{pair_id: metric of deblur(blurred) against the sharp image}; PSNR capped at 100 dB
    (an output equal to its target would be infinite)."""
    from gir.rectifier.scoring import psnr, ssim

    fn = psnr if metric == "psnr" else ssim
    out = {}
    for pair in pairs:
        value = fn(pair.sharp, deblur(pair.blur))
        out[pair.pair_id] = min(value, 100.0) if metric == "psnr" else value
    return out


def split_means(ids: list[str], new: dict, champion: dict, floor: dict | None) -> dict:
    """Mean scores on the test split alone (the numbers evaluate reports), for reading beside
    the intervals: new_score, champion_score, and the floor's."""
    def mean(scores: dict) -> float | None:
        vals = [scores[i] for i in ids if i in scores]
        return round(sum(vals) / len(vals), 4) if vals else None

    out = {"new_score": mean(new), "champion_score": mean(champion) if champion else None}
    if floor is not None:
        out.update(floor=FLOOR, floor_score=mean(floor))
    return out


def evidence_card(decision: dict) -> str:
    """The model card's paragraph on the promotion decision."""
    lines = ["", "## Promotion evidence", "",
             f"`@{decision['alias']}`: {decision['reason']}.", "",
             f"Pairs: {decision['pairs']} ({decision['counts']['test_split']} of the test split, "
             f"{decision['counts']['benchmark']} of the independent benchmark); paired "
             f"{decision['metric']} gain, 95% bootstrap interval; margin {decision['margin']:g}."]
    return "\n".join(lines)


def register(
    params: Params,
    data_dir: str | Path,
    split_manifest: str | Path,
    model_dir: str | Path,
    metrics_path: str | Path,
    out_path: str | Path,
) -> dict:
    """Log + register the model, then set champion/challenger on evidence; write the decision."""
    from mlflow import MlflowClient

    from gir.nn.shipped import shipped_model_dir
    from gir.rectifier.inference import Deblurrer
    from gir.tracking.runs import model_card, reopen_run

    cfg = params.register
    metrics = json.loads(Path(metrics_path).read_text())
    pairs, counts = evidence_pairs(params, data_dir, split_manifest, metrics["split"])
    if not pairs:
        raise GirError(f"register: no pairs to decide on (the {metrics['split']} split is empty)")
    new_scores = per_pair_scores(Deblurrer.from_dir(model_dir), pairs, cfg.metric)
    # The floor is what users get without a champion: the shipped model, when the project
    # scores it (evaluate.references: pretrained).
    shipped = shipped_model_dir() if PRETRAINED in params.evaluate.references else None
    floor = None if shipped is None else (FLOOR, per_pair_scores(Deblurrer.from_dir(shipped),
                                                                 pairs, cfg.metric))
    champion_scores: dict = {}

    def score_champion(uri: str) -> dict:
        champion_scores.update(per_pair_scores(load_pyfunc_deblurrer(uri), pairs, cfg.metric))
        return champion_scores
    with reopen_run(params.mlflow, model_dir) as (mlflow, run):
        info = log_deblur_pyfunc(mlflow, model_dir)
        version = mlflow.register_model(info.model_uri, cfg.model_name)
        client = MlflowClient()
        for tag, value in (("psnr", metrics["psnr"]), ("ssim", metrics["ssim"]),
                           ("test_set", metrics["test_set"]),
                           ("generator", params.model.generator)):
            client.set_model_version_tag(cfg.model_name, version.version, tag, str(value))
        decision = {"model_name": cfg.model_name, "version": int(version.version),
                    "metric": cfg.metric, "counts": counts, **promote_with_evidence(
                        client, cfg.model_name, version.version, new_scores, score_champion,
                        floor=floor, margin=cfg.margin, n_boot=cfg.bootstrap,
                        unit="dB" if cfg.metric == "psnr" else cfg.metric)}
        test_ids = [p.pair_id for p in pairs[:counts["test_split"]]]
        decision.update(split_means(test_ids, new_scores, champion_scores,
                                    floor[1] if floor else None))
        card = model_card(params, metrics, mlflow.get_run(run.info.run_id))
        client.update_model_version(cfg.model_name, version.version,
                                    description=card + evidence_card(decision))
        for what, c in decision["comparisons"].items():
            client.set_model_version_tag(cfg.model_name, version.version, f"gain_vs_{what}",
                                         f"{c['mean']} [{c['low']}, {c['high']}] n={c['n']}")
        mlflow.set_tags({"registered_version": version.version,
                         "registered_alias": decision["alias"]})
        decision.update(model_uri=f"models:/{cfg.model_name}/{version.version}",
                        run_id=run.info.run_id)
    write_text_atomic(out_path, json.dumps(decision, indent=2))
    return decision


def promote(name: str, version: int, alias: str = CHAMPION) -> str | None:
    """Point alias at version by hand (the MLflow-native way to roll forward or back).

    Returns the version the alias pointed at before, if any.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        raise GirError(f"model {name} has no version {version}") from None
    try:
        previous = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        previous = None
    client.set_registered_model_alias(name, alias, str(version))
    return previous

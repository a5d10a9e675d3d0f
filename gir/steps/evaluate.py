"""Step 6, evaluate: PSNR/SSIM on the held-out test split, per blur kind, against references.

Whole processed images (no crops), never the training split. Every method is scored on the
same pairs (gir.rectifier.scoring): the model, the blurred input itself (the bar to clear), and
classical references (unsharp mask; Wiener / Richardson-Lucy with the true kernel), and
the pretrained model shipped with gir (what fine-tuning started from).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gir.config import EvaluateConfig, MlflowConfig, flatten
from gir.data.dataset import load_split
from gir.data.imageio import write_text_atomic
from gir.data.manifest import data_version, read_manifest
from gir.errors import GirError
from gir.nn.shipped import shipped_model_dir
from gir.rectifier.scoring import PRETRAINED, REFERENCES, model_method, score, summarise

log = logging.getLogger("gir")


def evaluate(
    cfg: EvaluateConfig,
    mlflow_cfg: MlflowConfig,
    data_dir: str | Path,
    split_manifest: str | Path,
    model_dir: str | Path,
    metrics_path: str | Path,
    per_image_path: str | Path | None = None,
) -> dict:
    """Score the model in model_dir on the test split; write metrics JSON; log to its run."""
    import pandas as pd

    from gir.rectifier.inference import Deblurrer
    from gir.tracking.runs import log_dataset, reopen_run

    pairs = load_split(data_dir, split_manifest, cfg.split, cfg.max_images)
    if not pairs:
        raise GirError(f"evaluate: the {cfg.split} split is empty")
    df = read_manifest(split_manifest)
    deblurrer = Deblurrer.from_dir(model_dir)
    unknown = [r for r in cfg.references if r not in REFERENCES and r != PRETRAINED]
    if unknown:
        raise GirError(f"evaluate.references: unknown {unknown[0]!r} "
                       f"(known: {', '.join([*REFERENCES, PRETRAINED])})")
    methods = {"model": model_method(deblurrer),
               **{r: REFERENCES[r] for r in cfg.references if r in REFERENCES}}
    if PRETRAINED in cfg.references:
        shipped = shipped_model_dir()
        if shipped is None:
            log.warning("evaluate: no pretrained model ships with this install; not scored")
        else:  # what the user gets without training: the bar a fine-tuned model must clear
            methods[PRETRAINED] = model_method(Deblurrer.from_dir(shipped))
    rows = score(methods, pairs, progress=True)
    summary = summarise(rows)
    base = summary["methods"].get("blurred", {}).get("psnr")
    metrics = {
        "split": cfg.split,
        "pairs": len(pairs),
        "test_set": data_version(df[df["split"] == cfg.split]),
        "psnr": summary["methods"]["model"]["psnr"],
        "ssim": summary["methods"]["model"]["ssim"],
        "psnr_gain_over_blurred": round(summary["methods"]["model"]["psnr"] - base, 4)
        if base is not None else None,
        **summary,
    }
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2))
    if per_image_path:
        buf = pd.DataFrame(rows).to_csv(index=False)
        write_text_atomic(per_image_path, buf)
    with reopen_run(mlflow_cfg, model_dir) as (mlflow, _):
        numeric = {f"test.{k}": v for k, v in flatten(metrics).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        mlflow.log_metrics(numeric)
        log_dataset(mlflow, split_manifest, cfg.split, "testing")
        mlflow.log_artifact(str(metrics_path), "evaluation")
        if per_image_path:
            mlflow.log_artifact(str(per_image_path), "evaluation")
    return metrics

"""Step 7, register: log the generator as an MLflow pyfunc, register it, promote it honestly.

The pyfunc takes base64-encoded images of any size and mode and returns base64 PNGs, so
``mlflow models serve`` answers plain JSON and nothing freezes an input shape (the pt2 pitfall).
A new version becomes ``champion`` only if it beats the current champion when both are scored
now, on the same test pairs; otherwise it is the ``challenger``.
"""

from __future__ import annotations

import json
from pathlib import Path

from gir.config import Params
from gir.errors import GirError
from gir.data.imageio import write_text_atomic
from gir.rectifier.scoring import PRETRAINED
from gir.tracking.promotion import CHALLENGER, CHAMPION, promote_by_score
from gir.tracking.pyfunc import load_pyfunc_deblurrer, log_deblur_pyfunc

__all__ = ["CHALLENGER", "CHAMPION", "promote", "register"]


def register(
    params: Params,
    data_dir: str | Path,
    split_manifest: str | Path,
    model_dir: str | Path,
    metrics_path: str | Path,
    out_path: str | Path,
) -> dict:
    """Log + register the model, then set champion/challenger; write the decision as JSON."""
    from mlflow import MlflowClient

    from gir.data.dataset import load_split
    from gir.rectifier.scoring import model_method, score, summarise
    from gir.tracking.runs import model_card, reopen_run

    cfg = params.register
    metrics = json.loads(Path(metrics_path).read_text())
    key = cfg.metric
    with reopen_run(params.mlflow, model_dir) as (mlflow, run):
        info = log_deblur_pyfunc(mlflow, model_dir)
        version = mlflow.register_model(info.model_uri, cfg.model_name)
        client = MlflowClient()
        for tag, value in (("psnr", metrics["psnr"]), ("ssim", metrics["ssim"]),
                           ("test_set", metrics["test_set"]),
                           ("generator", params.model.generator)):
            client.set_model_version_tag(cfg.model_name, version.version, tag, str(value))
        client.update_model_version(cfg.model_name, version.version,
                                    description=model_card(params, metrics,
                                                           mlflow.get_run(run.info.run_id)))

        def score_champion(uri: str) -> float:
            # Score the champion now, on exactly the pairs the new model was scored on.
            pairs = load_split(data_dir, split_manifest, metrics["split"],
                               params.evaluate.max_images)
            champ = load_pyfunc_deblurrer(uri)
            return summarise(score({"model": model_method(champ)}, pairs))["methods"][
                "model"][key]

        # Without a champion, the shipped model is what users get: a new version must match
        # it on these pairs (evaluate scored it there, references: pretrained).
        shipped = metrics.get("methods", {}).get(PRETRAINED)
        floor = ("the shipped pretrained model", shipped[key]) if shipped else None
        decision = {"model_name": cfg.model_name, "version": int(version.version),
                    **promote_by_score(client, cfg.model_name, version.version, key,
                                       metrics[key], score_champion, floor=floor)}
        alias = decision["alias"]
        mlflow.set_tags({"registered_version": version.version, "registered_alias": alias})
        decision.update(model_uri=f"models:/{cfg.model_name}/"
                        f"{version.version}", run_id=run.info.run_id)
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

"""A sweep's last step where all children's models are at hand (KFP's sweep pipeline):
compare the children on the MLflow parent run, then register the best one through the usual
register step and its champion/challenger rule. (With DVC, `gir sweep` applies the best
experiment and runs the register stage instead.)"""

from __future__ import annotations

from pathlib import Path

from gir.config import Params
from gir.errors import GirError


def register_best(params: Params, cfgs: list[list[str]], sweep_id: str, parent_id: str,
                  data_dir: str | Path, split_manifest: str | Path,
                  model_dirs: list[str | Path], out_path: str | Path) -> dict:
    """Compare the children on the parent run, register the best by the usual rule."""
    import tempfile

    from gir.steps.register import register
    from gir.tracking import sweep
    from gir.tracking.runs import read_run_id, setup

    mlflow = setup(params.mlflow)
    keys = sweep.grid_keys(cfgs)
    _, best = sweep.finish(mlflow, params.mlflow.experiment, sweep_id, parent_id, keys,
                           params.register.metric, expected=len(cfgs))
    by_run = {read_run_id(d): Path(d) for d in model_dirs}
    if best["run_id"] not in by_run:
        raise GirError(f"sweep {sweep_id}: the best run {best['run_id']} has no model here")
    child = sweep.config_params(params, cfgs)[
        sweep.match_config(best, keys, sweep.config_params(params, cfgs))]
    with tempfile.TemporaryDirectory() as tmp:
        metrics = mlflow.artifacts.download_artifacts(
            run_id=best["run_id"], artifact_path="evaluation/metrics.json", dst_path=tmp)
        return register(child, data_dir, split_manifest, by_run[best["run_id"]], metrics,
                        out_path)

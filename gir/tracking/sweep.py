"""Sweeps in MLflow: a grid of settings, one parent run, children tagged with the sweep id,
and the comparison (a table per blur kind x config, and a figure) logged on the parent.

The engines that run the children (DVC's experiment queue, KFP's ParallelFor) live at the edge
(gir/cli/sweep.py, pipelines/); they all end here: `compare` reads the children back from
MLflow, `finish` logs the comparison and returns the best child, which the usual register
step (champion/challenger rule) then registers.
"""

from __future__ import annotations

import io
import itertools
import json
import uuid
from pathlib import Path

from gir.config import Params, flatten, load_params, to_dict
from gir.errors import GirError
from gir.tracking.runs import STEP_TAG, SWEEP_TAG, process_tags, use_experiment

PARENT_STEP = "sweep"


def parse_grid(items: list[str]) -> list[tuple[str, list]]:
    """``key=[a,b]`` (YAML flow list) per --grid, in order: [(key, [a, b]), ...]."""
    import yaml

    grid = []
    for item in items:
        key, sep, text = item.partition("=")
        try:
            values = yaml.safe_load(text) if sep else None
        except yaml.YAMLError:
            values = None
        if not key.strip() or not isinstance(values, list) or not values:
            raise GirError(f"--grid {item!r}: expected KEY=[VALUE, VALUE, ...]")
        if key.strip() in dict(grid):
            raise GirError(f"--grid {key.strip()}: given twice")
        grid.append((key.strip(), values))
    if not grid:
        raise GirError("give at least one --grid KEY=[VALUE, ...]")
    return grid


def _text(value) -> str:
    """A value as a `--set` / `dvc exp run -S` override writes it (YAML flow style)."""
    import yaml

    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def configs(grid: list[tuple[str, list]]) -> list[list[str]]:
    """Every combination as a list of ``key=value`` overrides, first key varying slowest."""
    keys = [k for k, _ in grid]
    return [[f"{k}={_text(v)}" for k, v in zip(keys, combo)]
            for combo in itertools.product(*(vals for _, vals in grid))]


def check_configs(params_file: str | Path, base: list[str], cfgs: list[list[str]]) -> list[Params]:
    """Fail before anything runs if one combination is not valid params."""
    out = []
    for overrides in cfgs:
        try:
            out.append(load_params(params_file, base + overrides))
        except GirError as exc:
            raise GirError(f"sweep config {' '.join(overrides)}: {exc}") from None
    return out


def grid_keys(cfgs: list[list[str]]) -> list[str]:
    return [o.split("=", 1)[0] for o in cfgs[0]]


def config_params(base: Params, cfgs: list[list[str]]) -> list[Params]:
    """Each config's full params: base plus its overrides."""
    from gir.config import params_from_dict

    return [params_from_dict(to_dict(base), overrides) for overrides in cfgs]


def match_config(best, keys: list[str], all_params: list[Params]) -> int:
    """Which config the best child ran (by the values its MLflow run logged)."""
    for i, p in enumerate(all_params):
        if all(str(best[k]) == v for k, v in logged_values(p, keys).items()):
            return i
    raise GirError(f"no sweep config matches the best run {best['run_id']}")


def logged_values(params: Params, keys: list[str]) -> dict[str, str]:
    """The values of keys as MLflow logs them (runs.log_params), to find a config's child."""
    flat = flatten(to_dict(params))
    out = {}
    for k in keys:
        v = flat.get(k, to_dict(params).get(k))
        if v is None:  # a whole section (e.g. model.generator_args) is flattened further
            sub = {f: x for f, x in flat.items() if f.startswith(k + ".")}
            out[k] = json.dumps(sub, sort_keys=True)
        else:
            out[k] = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return out


def new_sweep_id() -> str:
    return uuid.uuid4().hex[:8]


def start_parent(mlflow, experiment: str, sweep_id: str, grid, engine: str) -> str:
    """The parent run the children nest under (RUNNING until finish); returns its id."""
    client = mlflow.MlflowClient()
    exp = use_experiment(mlflow, experiment)
    name = "sweep-" + "-".join(k.split(".")[-1] for k, _ in grid) + f"-{engine}-{sweep_id}"
    run = client.create_run(exp.experiment_id, run_name=name, tags={
        STEP_TAG: PARENT_STEP, SWEEP_TAG: sweep_id, "engine": engine,
        "gir.grid": json.dumps(grid), **process_tags()})
    client.log_param(run.info.run_id, "grid", json.dumps(grid)[:6000])
    return run.info.run_id


def child_env(sweep_id: str, parent_id: str, tracking_uri: str) -> dict[str, str]:
    """What a child process needs to tag itself and reach the same store from any directory."""
    return {"GIR_SWEEP_ID": sweep_id, "GIR_SWEEP_PARENT": parent_id,
            "MLFLOW_TRACKING_URI": absolute_uri(tracking_uri)}


def absolute_uri(uri: str) -> str:
    """sqlite:///relative.db -> sqlite:////abs/relative.db (children run in other folders)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def children(mlflow, experiment_id: str, sweep_id: str) -> list:
    client = mlflow.MlflowClient()
    return client.search_runs(
        [experiment_id], f"tags.`{SWEEP_TAG}` = '{sweep_id}' and tags.`{STEP_TAG}` = 'train'")


def compare(runs, keys: list[str]):
    """One row per child: its grid values, then test PSNR/SSIM overall and per blur kind."""
    import pandas as pd

    rows = []
    for r in runs:
        m, p = r.data.metrics, r.data.params
        row = {"run": r.info.run_name, "run_id": r.info.run_id, "status": r.info.status}
        row.update({k: p.get(k, "") for k in keys})
        row["psnr"], row["ssim"] = m.get("test.psnr"), m.get("test.ssim")
        for name, value in sorted(m.items()):
            parts = name.split(".")  # test.per_kind.<kind>.model.psnr
            if len(parts) == 5 and parts[:2] == ["test", "per_kind"] and parts[3] == "model":
                row[f"{parts[2]}.{parts[4]}"] = value
        base = m.get("test.methods.blurred.psnr")
        row["gain_over_blurred"] = None if base is None or row["psnr"] is None \
            else round(row["psnr"] - base, 4)
        rows.append(row)
    return pd.DataFrame(rows)


def figure_png(table, keys: list[str], metric: str) -> bytes:
    """Grouped bars: the metric per blur kind (and overall) for every config."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted(c[: -len(metric) - 1] for c in table.columns if c.endswith(f".{metric}"))
    cols = [metric] + [f"{k}.{metric}" for k in kinds]
    labels = ["all"] + kinds
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(cols), 4))
    width = 0.8 / max(1, len(table))
    for i, (_, row) in enumerate(table.iterrows()):
        name = ", ".join(f"{k.split('.')[-1]}={row[k]}" for k in keys)
        ax.bar([j + i * width for j in range(len(cols))],
               [float(row[c]) if row.get(c) is not None else 0.0 for c in cols], width,
               label=name)
    ax.set_xticks([j + width * (len(table) - 1) / 2 for j in range(len(cols))], labels)
    ax.set_ylabel(f"test {metric}")
    lo = min(float(v) for c in cols for v in table[c].dropna()) if len(table) else 0
    ax.set_ylim(bottom=lo - 0.5 if metric == "psnr" else max(0.0, lo - 0.05))
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("sweep: test " + metric + " per blur kind")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def adopt_up_to_date(mlflow, experiment_id: str, sweep_id: str, parent_id: str,
                     keys: list[str], all_params: list[Params]) -> list[str]:
    """Configs no child ran because their results were already there (DVC skips a config
    equal to the workspace's): tag the latest finished, evaluated run of the same params as
    the child. Returns the adopted run ids."""
    from gir.tracking.runs import params_hash

    client = mlflow.MlflowClient()
    kids = children(mlflow, experiment_id, sweep_id)
    have = [{k: r.data.params.get(k) for k in keys} for r in kids]
    adopted = []
    for p in all_params:
        if logged_values(p, keys) in have:
            continue
        found = client.search_runs(
            [experiment_id], f"tags.`gir.params_hash` = '{params_hash(p)}' and "
            f"tags.`{STEP_TAG}` = 'train' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"])
        found = [r for r in found if "test.psnr" in r.data.metrics]
        if found:
            run_id = found[0].info.run_id
            client.set_tag(run_id, SWEEP_TAG, sweep_id)
            client.set_tag(run_id, "mlflow.parentRunId", parent_id)
            client.set_tag(run_id, "gir.sweep_reused", "true")
            adopted.append(run_id)
    return adopted


def finish(mlflow, experiment: str, sweep_id: str, parent_id: str, keys: list[str],
           metric: str = "psnr", expected: int | None = None,
           all_params: list[Params] | None = None):
    """Compare the children, log table + figure on the parent, end it; returns (table, best).

    best is the row of the child with the highest test metric (None if no child has one).
    all_params (every config's params) lets configs that were already up to date reuse
    their existing run.
    """
    import tempfile

    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if all_params:
        adopt_up_to_date(mlflow, exp.experiment_id, sweep_id, parent_id, keys, all_params)
    table = compare(children(mlflow, exp.experiment_id, sweep_id), keys)
    scored = table.dropna(subset=[metric]) if len(table) else table
    if expected is not None and len(scored) != expected:
        client.set_terminated(parent_id, "FAILED")
        raise GirError(f"sweep {sweep_id}: {len(scored)} of {expected} children have a test "
                       f"{metric}; see the failed ones in MLflow (tag {SWEEP_TAG}={sweep_id})")
    table = table.sort_values(metric, ascending=False, na_position="last")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        table.to_csv(out / "comparison.csv", index=False)
        (out / "comparison.md").write_text(table.drop(columns=["run_id"]).to_markdown(
            index=False, floatfmt=".4f") if _has_tabulate() else table.to_string(index=False))
        if len(scored):
            (out / "comparison.png").write_bytes(figure_png(table, keys, metric))
        for f in sorted(out.iterdir()):
            client.log_artifact(parent_id, str(f), "sweep")
    best = table.iloc[0] if len(scored) else None
    if best is not None:
        client.log_metric(parent_id, f"best.{metric}", float(best[metric]))
        client.set_tag(parent_id, "gir.best_run_id", best["run_id"])
    client.set_terminated(parent_id, "FINISHED")
    return table, best


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def table_text(table, keys: list[str], metric: str = "psnr") -> str:
    """The comparison as the terminal shows it."""
    cols = ["run"] + keys + [metric, "ssim", "gain_over_blurred"] + sorted(
        c for c in table.columns if c.count(".") == 1 and c.split(".")[1] in ("psnr", "ssim")
        and c not in keys)
    return table[[c for c in cols if c in table.columns]].to_string(
        index=False, float_format=lambda v: f"{v:.4f}")


"""Step 2, validate: the great-expectations quality gate over the manifest.

The gate decides from the facts ingest measured once per file (gir.data.facts), so it never decodes
an image again; it only re-hashes local files to catch data changed since ingest. Each
expectation is a rule about pairs: both twins present and decodable, equal sizes, minimum
resolution, supported modes, no exact duplicates, no near-duplicates across splits, the blurred
image measurably less sharp than its twin. Rows that break a rule go to ``quarantine.csv``
with the rule and the file's own error as the reason, never silently dropped; the step fails
only when the quarantined fraction exceeds ``validate.max_quarantine_fraction``.

Near-duplicates (perceptual hashes within ``validate.near_duplicate_bits``): the gate runs
before the split, so where no split is given yet the near-duplicate photos are merged into one
scene (the splitter never cuts a scene, so they can never land in different splits). Where
the source fixed the split (GoPro's official train/test), a near-duplicate of a val/test
photo found in an earlier split is quarantined there: the benchmark's test set stays whole.

Reports: quality.json (DVC metrics), quality.html (summary + quarantine table) and the GX
Data Docs site under data_docs/, a DVC output and, when an MLflow config is given, artifacts.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gir.config import MlflowConfig, ValidateConfig
from gir.data.imageio import write_text_atomic
from gir.data.manifest import data_version, read_manifest, write_manifest
from gir.data.quality import SUPPORTED_MODES, add_checks
from gir.errors import GateFailed, GirError


@dataclass
class GateResult:
    passed: int
    quarantined: int
    fraction: float
    success: bool
    rules: list[dict]


# --------------------------------------------------------------------------- the GX suite


def _suite(cfg: ValidateConfig):
    """The expectations, each with the reason a failing row is quarantined for."""
    import great_expectations.expectations as gxe

    inset = gxe.ExpectColumnValuesToBeInSet
    return [
        (gxe.ExpectColumnValuesToNotBeNull(column="pair_id"), "missing pair id"),
        (gxe.ExpectColumnValuesToBeUnique(column="pair_id"), "duplicate pair id"),
        (inset(column="check_blur_ok", value_set=[True]),
         "blurred image missing or not decodable"),
        (inset(column="check_sharp_ok", value_set=[True]), "sharp image missing or not decodable"),
        (inset(column="check_sizes_equal", value_set=[True]), "blurred and sharp sizes differ"),
        (gxe.ExpectColumnValuesToBeBetween(column="check_min_side", min_value=cfg.min_side),
         f"smaller than {cfg.min_side}px"),
        (inset(column="check_mode", value_set=SUPPORTED_MODES), "unsupported image mode"),
        (inset(column="check_blur_unique", value_set=[True]),
         "exact duplicate of another blurred file (sha256)"),
        (inset(column="check_sharp_unique", value_set=[True]),
         "exact duplicate of another photo (sha256)"),
        (inset(column="check_no_leak", value_set=[True]),
         "near-duplicate of a photo in another split (perceptual hash)"),
        (gxe.ExpectColumnValuesToBeBetween(column="check_sharpness_ratio",
                                           min_value=cfg.min_sharpness_ratio, strict_min=True),
         f"blurred image not less sharp than its twin (ratio <= {cfg.min_sharpness_ratio:g})"),
        (inset(column="check_unchanged", value_set=[True]),
         "file changed since ingest (sha256 mismatch)"),
    ]


def run_suite(df: pd.DataFrame, cfg: ValidateConfig,
              docs_dir: Path | None = None) -> tuple[dict[str, list[str]], list[dict]]:
    """Run the suite through a GX checkpoint; reasons per failing pair_id, and rule stats.

    With docs_dir, a file-mode context in a temporary folder builds GX Data Docs, copied there.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    with tempfile.TemporaryDirectory(prefix="gir-gx-") as tmp:
        ctx = (gx.get_context(mode="file", project_root_dir=tmp) if docs_dir
               else gx.get_context(mode="ephemeral"))
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch_def = (ctx.data_sources.add_pandas("gir").add_dataframe_asset("manifest")
                     .add_batch_definition_whole_dataframe("all"))
        suite = ctx.suites.add(gx.ExpectationSuite(name="gir_pairs"))
        reasons_by_rule = {}
        for expectation, reason in _suite(cfg):
            expectation.notes = reason
            added = suite.add_expectation(expectation)
            reasons_by_rule[added.id] = reason
        definition = ctx.validation_definitions.add(
            gx.ValidationDefinition(name="gir_gate", data=batch_def, suite=suite))
        checkpoint = ctx.checkpoints.add(gx.Checkpoint(
            name="gir_gate", validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")] if docs_dir else [],
            result_format={"result_format": "COMPLETE",
                           "unexpected_index_column_names": ["pair_id"]}))
        result = checkpoint.run(batch_parameters={"dataframe": df})
        if docs_dir:
            _copy_docs(Path(tmp), docs_dir)
    reasons: dict[str, list[str]] = {}
    rules = []
    for run_result in result.run_results.values():
        for r in run_result.results:
            reason = reasons_by_rule.get(r.expectation_config.id, r.expectation_config.type)
            bad = [row["pair_id"] for row in (r.result.get("unexpected_index_list") or [])]
            for pid in bad:
                reasons.setdefault(str(pid), [])
                if reason not in reasons[str(pid)]:
                    reasons[str(pid)].append(reason)
            rules.append({"rule": reason, "expectation": r.expectation_config.type,
                          "column": r.expectation_config.kwargs.get("column"),
                          "success": bool(r.success), "failing_rows": len(bad)})
    return reasons, rules


def _copy_docs(gx_root: Path, docs_dir: Path) -> None:
    """Replace docs_dir with the Data Docs site GX built under gx_root."""
    sites = list(gx_root.rglob("data_docs/local_site"))
    if not sites:
        raise GirError("great-expectations built no Data Docs site")
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    shutil.copytree(sites[0], docs_dir)


# --------------------------------------------------------------------------- the step


def validate(
    cfg: ValidateConfig, raw_dir: str | Path, out_dir: str | Path, report_dir: str | Path,
    mlflow_cfg: MlflowConfig | None = None,
) -> GateResult:
    """Gate raw_dir's manifest: out_dir gets manifest.csv (passing) and quarantine.csv.

    With mlflow_cfg, the reports (Data Docs included) are logged to a `quality-gate` run.
    """
    raw_dir, out_dir, report_dir = Path(raw_dir), Path(out_dir), Path(report_dir)
    df = read_manifest(raw_dir)
    checked = add_checks(df, raw_dir, cfg.near_duplicate_bits)
    reasons, rules = run_suite(checked, cfg, report_dir / "data_docs")
    bad_mask = checked["pair_id"].astype(str).isin(reasons) | checked["pair_id"].isna()
    quarantine = checked[bad_mask].copy()
    quarantine.insert(1, "reason", [
        "; ".join(reasons.get(str(p), ["missing pair id"])) + (f" ({e})" if e else "")
        for p, e in zip(quarantine["pair_id"], quarantine["check_errors"])
    ])
    passing = df[~bad_mask.values].copy()
    merged = checked.loc[~bad_mask.values, "merged_scene"]
    moved = passing["scene"] != merged.values
    passing.loc[moved, "notes"] = [
        "; ".join(x for x in (n, f"scene {s} merged into {m} (near-duplicate)") if x)
        for n, s, m in zip(passing.loc[moved, "notes"], passing.loc[moved, "scene"],
                           merged[moved.values])]
    passing["scene"] = merged.values
    # Paths stay relative to raw_dir: preprocess is handed both the raw data and this table.
    write_manifest(passing, out_dir)
    check_cols = [c for c in checked.columns if c.startswith("check_") or c == "merged_scene"]
    write_manifest(quarantine.drop(columns=check_cols), out_dir / "quarantine.csv")
    fraction = float(bad_mask.mean()) if len(df) else 1.0
    success = len(passing) > 0 and fraction <= cfg.max_quarantine_fraction
    result = GateResult(len(passing), int(bad_mask.sum()), fraction, success, rules)
    write_report(result, quarantine, cfg, report_dir)
    if mlflow_cfg is not None:
        log_reports(mlflow_cfg, report_dir, data_version(passing), result)
    if not success:
        raise GateFailed(
            f"quality gate failed: {result.quarantined} of {len(df)} pairs quarantined "
            f"({fraction:.0%} > {cfg.max_quarantine_fraction:.0%} allowed); "
            f"see {out_dir / 'quarantine.csv'} and {report_dir / 'quality.html'}"
        )
    return result


def log_reports(mlflow_cfg: MlflowConfig, report_dir: Path, version: str,
                result: GateResult) -> None:
    """Log the gate's reports and counts to an MLflow run tagged with the data version."""
    from gir.tracking.runs import run_tags, setup

    mlflow = setup(mlflow_cfg)
    tags = run_tags(os.environ.get("GIR_ENGINE", "cli"), version, "validate")
    with mlflow.start_run(run_name="quality-gate", tags={**tags, "step": "validate"}):
        mlflow.log_metrics({"pairs_passed": result.passed,
                            "pairs_quarantined": result.quarantined,
                            "quarantined_fraction": result.fraction})
        mlflow.log_artifacts(str(report_dir), "quality")


def write_report(result: GateResult, quarantine: pd.DataFrame, cfg: ValidateConfig,
                 report_dir: Path) -> None:
    """quality.json (DVC metrics) and quality.html (readable report) in report_dir."""
    summary = {"pairs_passed": result.passed, "pairs_quarantined": result.quarantined,
               "quarantined_fraction": round(result.fraction, 4), "success": result.success,
               "max_quarantine_fraction": cfg.max_quarantine_fraction}
    write_text_atomic(report_dir / "quality.json",
                      json.dumps({**summary, "rules": result.rules}, indent=2))
    rows = "".join(
        f"<tr class={'ok' if r['success'] else 'bad'}><td>{html.escape(r['rule'])}</td>"
        f"<td>{html.escape(r['expectation'])}</td><td>{r['failing_rows']}</td></tr>"
        for r in result.rules)
    qrows = "".join(
        f"<tr><td>{html.escape(str(p))}</td><td>{html.escape(str(r))}</td>"
        f"<td>{html.escape(str(b))}</td><td>{html.escape(str(s))}</td></tr>"
        for p, r, b, s in zip(quarantine["pair_id"], quarantine["reason"],
                              quarantine["blur_path"], quarantine["sharp_path"]))
    verdict = "PASSED" if result.success else "FAILED"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>GIR quality gate</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse}}.bad{{background:#fdd}}.ok{{background:#dfd}}</style></head>
<body><h1>Quality gate: {verdict}</h1>
<p>{result.passed} pairs passed, {result.quarantined} quarantined
({result.fraction:.1%}; allowed {cfg.max_quarantine_fraction:.0%}).
Full great-expectations results: <a href="data_docs/index.html">Data Docs</a>.</p>
<h2>Expectations</h2><table><tr><th>rule</th><th>expectation</th><th>failing rows</th></tr>
{rows}</table><h2>Quarantine</h2>
<table><tr><th>pair</th><th>reason</th><th>blurred file</th><th>sharp file</th></tr>{qrows}
</table></body></html>"""
    write_text_atomic(report_dir / "quality.html", page)

"""Step 2, validate: the great-expectations quality gate over the manifest.

Each expectation is a rule about pairs (complete, decodable, equal sizes, unique checksums,
minimum resolution, supported modes). Rows that break a rule are moved to a quarantine table
with the rule as the reason, never silently dropped; the step fails only when the quarantined
fraction exceeds ``validate.max_quarantine_fraction``. The passing rows are the manifest the
rest of the pipeline sees.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gir.config import ValidateConfig
from gir.errors import GateFailed, GirError
from gir.imageio import read_bytes, decode_image, write_text_atomic
from gir.manifest import read_manifest, resolve, sha256_bytes, write_manifest

SUPPORTED_MODES = ["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "I;16B", "I;16L", "I", "YCbCr"]


@dataclass
class GateResult:
    passed: int
    quarantined: int
    fraction: float
    success: bool
    rules: list[dict]


def _file_facts(path: str) -> dict:
    """Decode one file; return decodability, size and checksum (never raises)."""
    try:
        data = read_bytes(path)
        arr, _ = decode_image(data, path)
        return {"ok": True, "h": arr.shape[0], "w": arr.shape[1], "sha": sha256_bytes(data),
                "error": ""}
    except GirError as exc:
        return {"ok": False, "h": 0, "w": 0, "sha": "", "error": str(exc)}


def add_checks(df: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Columns the expectations test: decodability, sizes, checksum agreement, per pair."""
    df = df.copy()
    cache: dict[str, dict] = {}

    def facts(rel: str) -> dict:
        path = resolve(root, rel)
        if path not in cache:
            cache[path] = _file_facts(path) if rel else {"ok": False, "h": 0, "w": 0,
                                                          "sha": "", "error": "missing"}
        return cache[path]

    blur = [facts(p) for p in df["blur_path"]]
    sharp = [facts(p) for p in df["sharp_path"]]
    df["check_blur_decodable"] = [b["ok"] for b in blur]
    df["check_sharp_decodable"] = [s["ok"] for s in sharp]
    df["check_sizes_equal"] = [b["ok"] and s["ok"] and (b["h"], b["w"]) == (s["h"], s["w"])
                               for b, s in zip(blur, sharp)]
    df["check_min_side"] = [min(b["h"], b["w"], s["h"], s["w"]) for b, s in zip(blur, sharp)]
    df["check_checksums_match"] = [
        b["sha"] == bs and s["sha"] == ss
        for b, s, bs, ss in zip(blur, sharp, df["blur_sha256"], df["sharp_sha256"])
    ]
    df["check_errors"] = ["; ".join(e for e in (b["error"], s["error"]) if e)
                          for b, s in zip(blur, sharp)]
    return df


def _suite(cfg: ValidateConfig):
    """The expectations, each with the reason a failing row is quarantined for."""
    import great_expectations.expectations as gxe

    return [
        (gxe.ExpectColumnValuesToNotBeNull(column="pair_id"), "missing pair id"),
        (gxe.ExpectColumnValuesToBeUnique(column="pair_id"), "duplicate pair id"),
        (gxe.ExpectColumnValuesToBeUnique(column="blur_sha256"),
         "exact duplicate blurred image (sha256)"),
        (gxe.ExpectColumnValuesToBeInSet(column="check_blur_decodable", value_set=[True]),
         "blurred image missing or not decodable"),
        (gxe.ExpectColumnValuesToBeInSet(column="check_sharp_decodable", value_set=[True]),
         "sharp twin missing or not decodable"),
        (gxe.ExpectColumnValuesToBeInSet(column="check_sizes_equal", value_set=[True]),
         "blurred and sharp sizes differ"),
        (gxe.ExpectColumnValuesToBeBetween(column="check_min_side", min_value=cfg.min_side),
         f"smaller than {cfg.min_side}px"),
        (gxe.ExpectColumnValuesToBeInSet(column="check_checksums_match", value_set=[True]),
         "file changed since ingest (sha256 mismatch)"),
        (gxe.ExpectColumnValuesToBeInSet(column="mode", value_set=SUPPORTED_MODES),
         "unsupported image mode"),
    ]


def run_suite(df: pd.DataFrame, cfg: ValidateConfig) -> tuple[dict[str, list[str]], list[dict]]:
    """Run the suite through a GX checkpoint; return reasons per failing pair_id and rule stats."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = (ctx.data_sources.add_pandas("gir").add_dataframe_asset("manifest")
                 .add_batch_definition_whole_dataframe("all"))
    suite = ctx.suites.add(gx.ExpectationSuite(name="gir_pairs"))
    reasons_by_rule = {}
    for expectation, reason in _suite(cfg):
        added = suite.add_expectation(expectation)
        reasons_by_rule[added.id] = reason
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name="gir_gate", data=batch_def, suite=suite))
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name="gir_gate", validation_definitions=[definition],
        result_format={"result_format": "COMPLETE",
                       "unexpected_index_column_names": ["pair_id"]}))
    result = checkpoint.run(batch_parameters={"dataframe": df})
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


def validate(
    cfg: ValidateConfig, raw_dir: str | Path, out_dir: str | Path, report_dir: str | Path
) -> GateResult:
    """Gate raw_dir's manifest: out_dir gets manifest.csv (passing) and quarantine.csv."""
    raw_dir, out_dir, report_dir = Path(raw_dir), Path(out_dir), Path(report_dir)
    df = read_manifest(raw_dir)
    checked = add_checks(df, raw_dir)
    reasons, rules = run_suite(checked, cfg)
    bad_mask = checked["pair_id"].astype(str).isin(reasons)
    quarantine = checked[bad_mask].copy()
    quarantine.insert(1, "reason", [
        "; ".join(reasons[str(p)]) + (f" ({e})" if e else "")
        for p, e in zip(quarantine["pair_id"], quarantine["check_errors"])
    ])
    check_cols = [c for c in checked.columns if c.startswith("check_")]
    passing = df[~bad_mask.values]
    # Paths stay relative to raw_dir: preprocess is handed both the raw data and this table.
    write_manifest(passing, out_dir)
    write_manifest(quarantine.drop(columns=check_cols), out_dir / "quarantine.csv")
    fraction = float(bad_mask.mean()) if len(df) else 1.0
    success = len(passing) > 0 and fraction <= cfg.max_quarantine_fraction
    result = GateResult(len(passing), int(bad_mask.sum()), fraction, success, rules)
    write_report(result, quarantine, cfg, report_dir)
    if not success:
        raise GateFailed(
            f"quality gate failed: {result.quarantined} of {len(df)} pairs quarantined "
            f"({fraction:.0%} > {cfg.max_quarantine_fraction:.0%} allowed); "
            f"see {report_dir / 'quality.html'}"
        )
    return result


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
        f"<td>{html.escape(str(b))}</td></tr>"
        for p, r, b in zip(quarantine["pair_id"], quarantine["reason"], quarantine["blur_path"]))
    verdict = "PASSED" if result.success else "FAILED"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>GIR quality gate</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse}}.bad{{background:#fdd}}.ok{{background:#dfd}}</style></head>
<body><h1>Quality gate: {verdict}</h1>
<p>{result.passed} pairs passed, {result.quarantined} quarantined
({result.fraction:.1%}; allowed {cfg.max_quarantine_fraction:.0%}).</p>
<h2>Expectations</h2><table><tr><th>rule</th><th>expectation</th><th>failing rows</th></tr>
{rows}</table><h2>Quarantine</h2>
<table><tr><th>pair</th><th>reason</th><th>blurred file</th></tr>{qrows}</table></body></html>"""
    write_text_atomic(report_dir / "quality.html", page)

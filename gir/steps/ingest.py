"""Step 1, ingest: run the configured source and write the manifest with each file's facts.

Incremental by content: sources reuse the pairs of any origin file whose sha256 is unchanged
(see gir.data.sources.synthetic.pairs_from_photo), facts of an unchanged file are copied from the
last manifest instead of decoding it again, and generated files that no row names any more
(their origin was removed) are deleted. Only GIR's own outputs under out_dir are ever
deleted or written; source data is read, never modified.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gir.config import Params
from gir.data.facts import file_facts
from gir.data.manifest import (
    FACT_KEYS,
    MANIFEST_NAME,
    new_manifest,
    read_manifest,
    resolve,
    write_manifest,
)
from gir.data.sources import get_source
from gir.errors import GirError

# Folders under out_dir that ingest writes (and so may clean); nothing else is touched.
GENERATED = ("blur", "sharp", "kernels")


def ingest(params: Params, out_dir: str | Path) -> Path:
    """Produce out_dir/manifest.csv (+ the images it names) from params.data.source."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    known = known_facts(out_dir)
    rows = get_source(params.data.source)(params, out_dir)
    if not rows:
        raise GirError(f"ingest: source {params.data.source!r} produced no pairs")
    df = add_facts(new_manifest(rows), out_dir, params.data.max_pixels, known)
    path = write_manifest(df, out_dir)
    remove_orphans(out_dir, df)
    return path


def known_facts(out_dir: Path) -> dict[str, dict]:
    """Facts of the files the last ingest measured, by sha256 (content addressing)."""
    if not (out_dir / MANIFEST_NAME).exists():
        return {}
    df = read_manifest(out_dir)
    known: dict[str, dict] = {}
    for side in ("blur", "sharp"):
        cols = [f"{side}_{k}" for k in FACT_KEYS]
        if not set(cols) <= set(df.columns):
            continue
        for row in df[[f"{side}_sha256", *cols]].to_dict("records"):
            if row[f"{side}_sha256"] and row[f"{side}_decodable"]:
                known[row[f"{side}_sha256"]] = {k: row[f"{side}_{k}"] for k in FACT_KEYS}
    return known


def add_facts(df: pd.DataFrame, root: Path, max_pixels: int,
              known: dict[str, dict]) -> pd.DataFrame:
    """Fill each side's facts (and checksum) where the source left them empty."""
    cache: dict[str, dict] = {}
    rows = df.to_dict("records")
    for row in rows:
        for side in ("blur", "sharp"):
            if row[f"{side}_decodable"] != "":
                continue  # the source measured it already (e.g. an unusable photo)
            rel = row[f"{side}_path"]
            if not rel:
                other = row["sharp_path" if side == "blur" else "blur_path"]
                facts = {**{k: "" for k in FACT_KEYS}, "decodable": False,
                         "error": f"no {side} twin for {other}", "sha256": ""}
            else:
                path = resolve(root, rel)
                if path not in cache:
                    cache[path] = file_facts(path, max_pixels, known)
                facts = cache[path]
            row.update({f"{side}_{k}": facts[k] for k in FACT_KEYS})
            row[f"{side}_sha256"] = row[f"{side}_sha256"] or facts.get("sha256", "")
        for col in ("width", "height", "mode", "bit_depth", "format", "notes"):
            if row[col] in ("", None):  # pair-level facts from the sharp file
                row[col] = row[f"sharp_{col}"]
    return new_manifest(rows)


def remove_orphans(out_dir: Path, df: pd.DataFrame) -> list[Path]:
    """Delete generated files no row names (their origin is gone); return what was removed."""
    named = {str((out_dir / p).resolve()) for col in ("blur_path", "sharp_path", "kernel_path")
             for p in df[col] if p}
    removed = []
    for folder in GENERATED:
        for path in sorted((out_dir / folder).rglob("*")) if (out_dir / folder).is_dir() else []:
            if path.is_file() and str(path.resolve()) not in named:
                path.unlink()
                removed.append(path)
    return removed

"""The data contract: one table row per blur/sharp pair, produced by every source.

Paths in a manifest are relative to the directory the manifest lives in (the dataset's root),
or absolute / URLs for data that stays where the user keeps it (a GoPro tree, an S3 prefix).
The quality gate reads it, the splitter fills `split`, evaluation reports per `blur_kind`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pandas as pd

from gir.data.imageio import is_remote, write_text_atomic

MANIFEST_NAME = "manifest.csv"

# Column order of the contract; sources may leave optional ones empty.
COLUMNS = [
    "pair_id",        # unique, stable id of the pair
    "scene",          # source photo / GoPro sequence; splits never cut a scene
    "source",         # sample | gopro | folder | unsplash
    "blur_path",
    "sharp_path",
    "blur_sha256",
    "sharp_sha256",
    "width",
    "height",
    "mode",           # PIL mode of the original as found (e.g. RGB, L, RGBA, I;16, CMYK)
    "bit_depth",
    "format",         # PNG, JPEG, ...
    "blur_kind",      # motion | defocus | gaussian | real
    "blur_params",    # JSON of kernel parameters when synthetic
    "noise_sigma",
    "kernel_path",    # .npy of the true kernel when synthetic
    "attribution",
    "license",
    "source_url",
    "notes",          # conversions applied on read (EXIF rotation, 16-bit, CMYK, ...)
    "split",          # train | val | test (filled by the splitter; gopro keeps its own)
    # Where a synthetic pair came from: the user's file, left untouched, and its checksum
    # (content addressing: an unchanged origin is never processed twice, see gir.steps.ingest).
    "origin_path",
    "origin_sha256",
    "origin_id",      # the source's own id (Unsplash photo id)
    "author",         # photographer, where the source names one
    "author_url",
    "recipe",         # hash of the settings that made a synthetic pair (seed, synth, max_side)
]

# Facts measured once per file at ingest (gir.data.facts), stored as blur_<key> and sharp_<key>.
FACT_KEYS = ("decodable", "error", "format", "mode", "bit_depth", "width", "height",
             "exif_orientation", "phash", "sharpness", "notes")
FACT_COLUMNS = [f"{side}_{key}" for side in ("blur", "sharp") for key in FACT_KEYS]
COLUMNS += FACT_COLUMNS
INT_COLUMNS = ("width", "height", "bit_depth", "blur_width", "blur_height", "blur_bit_depth",
               "sharp_width", "sharp_height", "sharp_bit_depth", "blur_exif_orientation",
               "sharp_exif_orientation")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def new_manifest(rows: list[dict]) -> pd.DataFrame:
    """Build a manifest frame with the contract's columns in order (extra columns kept after)."""
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = ""
        elif df[col].isna().any():  # a key only some sources' rows carry
            df[col] = df[col].astype(object).where(df[col].notna(), "")
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[COLUMNS + extra]


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV (a directory means its manifest.csv), strings kept as strings."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.exists():
        from gir.errors import GirError

        raise GirError(f"{path}: no manifest here (run the previous step first)")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in INT_COLUMNS:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype(int)
    for col in ("blur_sharpness", "sharp_sharpness"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0.0).astype(float)
    for col in ("blur_decodable", "sharp_decodable"):
        if col in df.columns:
            df[col] = df[col].astype(str).str.lower() == "true"
    return df


def write_manifest(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a manifest CSV atomically (a directory means its manifest.csv)."""
    path = Path(path)
    if path.suffix != ".csv":
        path = path / MANIFEST_NAME
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    write_text_atomic(path, buf.getvalue())
    return path


def resolve(root: str | os.PathLike, rel: str) -> str:
    """A manifest path as a usable path: absolute and URLs as they are, else under root."""
    if not rel:
        return rel
    if is_remote(rel) or os.path.isabs(rel):
        return rel
    return str(Path(root) / rel)


def data_version(df: pd.DataFrame, columns: tuple[str, ...] = ("pair_id", "blur_sha256",
                                                               "sharp_sha256", "split")) -> str:
    """A short content hash of a manifest's pairs: the data version logged with every run."""
    cols = [c for c in columns if c in df.columns]
    payload = json.dumps(df[cols].sort_values(cols).values.tolist())
    return sha256_bytes(payload.encode())[:16]

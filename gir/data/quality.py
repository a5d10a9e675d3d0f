"""The per-pair facts the quality gate's expectations test, one column per rule.

Computed from the facts ingest measured once per file (gir.data.facts), so no image is decoded
again; local files are re-hashed to catch data changed since ingest. Near-duplicate photos
(perceptual hashes within a few bits) are found here too. gir.steps.validate turns these
columns into a great-expectations suite and the gate's decision.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from gir.data.facts import file_facts
from gir.data.imageio import is_remote
from gir.data.manifest import FACT_COLUMNS, FACT_KEYS, resolve
from gir.errors import GirError

SUPPORTED_MODES = ["RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "I;16", "I;16B", "I;16L", "I",
                   "YCbCr", "1"]
SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def _mild(df: pd.DataFrame) -> pd.Series:
    """Rows whose synthetic blur was drawn mild (blur_params' severity)."""
    def severity(text) -> str:
        try:
            return json.loads(text).get("severity", "") if isinstance(text, str) and text else ""
        except (ValueError, AttributeError):
            return ""

    column = df["blur_params"] if "blur_params" in df.columns else pd.Series("", index=df.index)
    return column.map(severity).eq("mild")


def add_checks(df: pd.DataFrame, root: Path, near_bits: int = 8) -> pd.DataFrame:
    """Columns the expectations test, one per rule; None where a rule does not apply."""
    if not set(FACT_COLUMNS) <= set(df.columns):
        raise GirError("manifest has no file facts (blur_decodable, ...): re-run `gir ingest`")
    records = df.to_dict("records")
    unchanged = [_remeasure_changed(root, r) for r in records]
    df = pd.DataFrame(records, columns=df.columns)
    both = df["blur_decodable"] & df["sharp_decodable"]
    # A photo that could not be used has no blurred twin by construction: report it once.
    never_made = (df["blur_path"] == "") & (df["origin_path"] != "") & ~df["sharp_decodable"]
    df["check_blur_ok"] = df["blur_decodable"] | never_made
    df["check_sharp_ok"] = df["sharp_decodable"]
    df["check_sizes_equal"] = _where(both, (df["blur_width"] == df["sharp_width"])
                                     & (df["blur_height"] == df["sharp_height"]))
    df["check_min_side"] = _where(both, df[["blur_width", "blur_height", "sharp_width",
                                            "sharp_height"]].min(axis=1))
    df["check_mode"] = df["mode"].where(df["mode"] != "", None)
    ratio = df["sharp_sharpness"] / df["blur_sharpness"].clip(lower=1e-9)
    # A mild synthetic blur (1-2 px) plus sensor noise can measure sharper than its photo: the
    # rule is for blurs that should be visible, so mild pairs are exempt from it.
    df["check_sharpness_ratio"] = _where(both & ~_mild(df), ratio.round(4))
    df["check_blur_unique"], blur_dup = _unique_file(df, "blur")
    df["check_sharp_unique"], sharp_dup = _unique_file(df, "sharp")
    df["check_unchanged"] = unchanged
    leak_of, merged = near_duplicates(df, near_bits)
    df["check_no_leak"] = [None if not p else p not in leak_of for p in df["sharp_path"]]
    df["merged_scene"] = merged
    leaks = [f"near-duplicate of {leak_of[p]}" if p in leak_of else "" for p in df["sharp_path"]]
    sizes = [f"blurred {bw}x{bh}, sharp {sw}x{sh}" if eq is False else "" for eq, bw, bh, sw, sh
             in zip(df["check_sizes_equal"], df["blur_width"], df["blur_height"],
                    df["sharp_width"], df["sharp_height"])]
    # Where exactly: the file's own error, or the file it duplicates.
    df["check_errors"] = ["; ".join(dict.fromkeys(e for e in row if e)) for row in
                          zip(df["blur_error"], df["sharp_error"], blur_dup, sharp_dup, leaks,
                              sizes)]
    df["pair_id"] = df["pair_id"].where(df["pair_id"] != "", None)
    return df


def _where(mask: pd.Series, values: pd.Series) -> pd.Series:
    return values.astype(object).where(mask, None)


def _unique_file(df: pd.DataFrame, side: str) -> tuple[list, list[str]]:
    """(False for a file whose bytes equal an earlier, different file; which file that is).

    Several pairs sharing one sharp photo is normal; the same bytes under two paths is not.
    """
    first: dict[str, str] = {}
    ok, detail = [], []
    for sha, path in zip(df[f"{side}_sha256"], df[f"{side}_path"]):
        first.setdefault(sha, path)
        dup = bool(sha) and first[sha] != path
        ok.append(not dup)
        detail.append(f"same bytes as {first[sha]}" if dup else "")
    return ok, detail


def _remeasure_changed(root: Path, row: dict):
    """Re-hash each local file; one changed since ingest gets its facts measured again.

    Returns True if all checked files are unchanged, False if one changed (the row's facts
    then describe the file as it is now), None when there was nothing local to check.
    """
    checked = None
    for side in ("blur", "sharp"):
        rel, sha = row[f"{side}_path"], row[f"{side}_sha256"]
        path = resolve(root, rel)
        if not rel or not sha or is_remote(path):
            continue
        facts = file_facts(path, known={sha: {k: row[f"{side}_{k}"] for k in FACT_KEYS}})
        if facts.get("sha256") != sha:
            row.update({f"{side}_{k}": facts[k] for k in FACT_KEYS})
            checked = False
        elif checked is None:
            checked = True
    return checked


def near_duplicates(df: pd.DataFrame, max_bits: int) -> tuple[dict[str, str], list[str]]:
    """({leaking sharp path: the photo it duplicates}, scene per row after merging).

    Compares each distinct sharp photo's perceptual hash with every other one.
    """
    photos = (df[df["sharp_decodable"] & (df["sharp_phash"] != "")]
              .drop_duplicates("sharp_path")[["sharp_path", "sharp_phash", "scene", "split"]])
    paths = photos["sharp_path"].tolist()
    hashes = photos["sharp_phash"].tolist()
    parent = {p: p for p in paths}

    def find(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    split_of = dict(zip(paths, photos["split"]))
    scene_of = dict(zip(paths, photos["scene"]))
    leaking: dict[str, str] = {}
    for i, j in _close_pairs(hashes, max_bits):
        a, b = paths[i], paths[j]
        sa, sb = split_of[a], split_of[b]
        if sa in SPLIT_ORDER and sb in SPLIT_ORDER:
            if sa != sb:  # keep the later split (the benchmark's test set) whole
                lose, keep = (a, b) if SPLIT_ORDER[sa] < SPLIT_ORDER[sb] else (b, a)
                leaking[lose] = f"{keep} ({split_of[keep]})"
        elif scene_of[a] != scene_of[b]:
            parent[find(a)] = find(b)
    groups: dict[str, str] = {}
    for p in paths:
        root = find(p)
        groups[root] = min(groups.get(root, scene_of[p]), scene_of[p])
    merged = [groups[find(p)] if p in parent else s for p, s in zip(df["sharp_path"], df["scene"])]
    return leaking, merged


def _close_pairs(hashes: list[str], max_bits: int) -> list[tuple[int, int]]:
    """Index pairs (i < j) of 64-bit hex hashes at most max_bits apart (vectorised)."""
    if len(hashes) < 2:
        return []
    h = np.array([int(x, 16) for x in hashes], dtype=np.uint64)
    out = []
    for i in range(len(h) - 1):
        xor = (h[i] ^ h[i + 1:]).view(np.uint8).reshape(-1, 8)
        dist = np.unpackbits(xor, axis=1).sum(axis=1)  # popcount, numpy 1.x and 2.x
        out += [(i, i + 1 + int(j)) for j in np.nonzero(dist <= max_bits)[0]]
    return out

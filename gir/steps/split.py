"""Step 4, split: deterministic train/val/test assignment by scene.

A scene (a source photo, a GoPro sequence) never straddles two splits, so the test score is
on content the model never saw. Assignment depends only on the scene name and the seed, so
adding photos does not reshuffle existing scenes much, and sources with an official split
(GoPro) keep theirs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gir.config import SplitConfig
from gir.data.manifest import read_manifest, write_manifest

SPLITS = ("train", "val", "test")


def assign_scenes(scenes: list[str], cfg: SplitConfig, seed: int) -> dict[str, str]:
    """Map each scene to a split: order by a seeded hash, then cut by the fractions.

    Every split with a non-zero fraction gets at least one scene when there are enough scenes,
    and the test split at least ``min_test_scenes`` (a promotion decision resting on one scene
    is a decision about that scene), as long as two scenes are left for train and val.
    """
    order = sorted(set(scenes), key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    n = len(order)
    n_test = round(n * cfg.test)
    n_val = round(n * cfg.val)
    if cfg.test > 0:
        n_test = max(n_test, min(cfg.min_test_scenes, n - 2))
    if cfg.test > 0 and n_test == 0 and n >= 2:
        n_test = 1
    if cfg.val > 0 and n_val == 0 and n >= 3:
        n_val = 1
    mapping = {}
    for i, scene in enumerate(order):
        mapping[scene] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return mapping


def split(cfg: SplitConfig, seed: int, processed_dir: str | Path, out_dir: str | Path) -> Path:
    """Write out_dir/manifest.csv: the processed manifest with the split column filled.

    Paths stay relative to processed_dir; rows that already carry a split (GoPro) keep it.
    """
    df = read_manifest(processed_dir)
    mapping = assign_scenes(df["scene"].tolist(), cfg, seed)
    given = df["split"] if "split" in df else [""] * len(df)
    df["split"] = [g if g in SPLITS else mapping[s] for g, s in zip(given, df["scene"])]
    return write_manifest(df, out_dir)

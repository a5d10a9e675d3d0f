"""Slim a processed dataset for a bare GPU machine that takes a small upload (64 MiB here).

With train.resynth 1.0 every training crop is blurred afresh from its sharp photo, so the
stored blurred images of the train rows are never read: the copy keeps the sharp photos, the
kernels and the val pairs (for the validation PSNR), points each train row's blur_path at its
sharp photo and drops the test rows. tools/gpu_lease/train.py refuses it with train.resynth < 1.

    python tools/gpu_lease/prepare.py --data work/pretrain/processed \
        --split work/pretrain/split/manifest.csv --out .lease/data
"""
import argparse
import shutil
import sys
from pathlib import Path

MARKER = "SLIM"   # in the out folder: tells train.py the train rows hold no stored blur


def slim(data: Path, split: Path, out: Path) -> int:
    import pandas as pd

    rows = pd.read_csv(split, dtype=str, keep_default_na=False)
    rows = rows[rows["split"].isin(["train", "val"])].copy()
    train = rows["split"] == "train"
    rows.loc[train, "blur_path"] = rows.loc[train, "sharp_path"]
    files = set(rows["sharp_path"]) | set(rows.loc[~train, "blur_path"])
    files |= {k for k in rows.get("kernel_path", []) if k}
    for name in sorted(files):
        (out / "processed" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data / name, out / "processed" / name)
    rows.to_csv(out / "split.csv", index=False)
    (out / MARKER).write_text("train rows: blur_path is the sharp photo (train.resynth 1.0)\n")
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the processed folder")
    ap.add_argument("--split", type=Path, required=True, help="the split manifest")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    try:
        n = slim(a.data, a.split, a.out)
    except (OSError, KeyError, ValueError) as exc:
        sys.exit(f"prepare: {exc}")
    size = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
    print(f"prepare: {n} train/val rows, {size / 2**20:.1f} MiB -> {a.out}")


if __name__ == "__main__":
    main()

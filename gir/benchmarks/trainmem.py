"""`gir bench --train-memory`: peak RSS and images/s of `gir train` on 30 and 300 pairs.

Training data streams (gir.data.dataset.LazyPairs), so the peak memory of a training process
must not grow with the number of pairs. This writes synthetic 1280x720 pairs quickly (a smooth
random photo, Gaussian-blurred; six blurred versions per sharp photo as data.synth.per_image
makes them), trains a small model on each set in a fresh `gir train` process, and reports that
process's peak resident memory (ru_maxrss) and its training images/s.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gir.data.imageio import write_text_atomic
from gir.data.manifest import sha256_bytes, write_manifest

log = logging.getLogger("gir")
# A small model and few steps: the data path, not the network, is what is measured.
TRAIN_SETS = ["model.generator_args={width: 8, enc_blocks: [1, 1], middle_blocks: 1, "
              "dec_blocks: [1, 1]}", "train.init=none", "train.resynth=0", "train.steps=24",
              "train.batch_size=4", "train.crop=128", "train.log_every=6",
              "train.image_every=1000", "train.checkpoint_every=1000", "train.num_workers=0",
              "train.loss.adversarial=none"]


def synthetic_pairs(root: Path, pairs: int, width: int = 1280, height: int = 720,
                    per_sharp: int = 6, seed: int = 0) -> Path:
    """Write `pairs` blurred/sharp PNG pairs and a split manifest (2 val pairs); its path."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    rows, sharp_img, sharp_rel = [], None, ""
    for i in range(pairs):
        if i % per_sharp == 0:
            small = (rng.random((height // 16, width // 16, 3)) * 255).astype(np.uint8)
            sharp_img = Image.fromarray(small).resize((width, height), Image.BICUBIC)
            sharp_rel = f"sharp/s{i // per_sharp:04d}.png"
            _save(sharp_img, root / sharp_rel)
        blur_rel = f"blur/p{i:04d}.png"
        _save(sharp_img.filter(ImageFilter.GaussianBlur(1.0 + i % per_sharp)), root / blur_rel)
        rows.append({"pair_id": f"p{i:04d}", "scene": sharp_rel, "source": "bench",
                     "blur_path": blur_rel, "sharp_path": sharp_rel,
                     "blur_sha256": sha256_bytes((root / blur_rel).read_bytes()),
                     "sharp_sha256": sha256_bytes((root / sharp_rel).read_bytes()),
                     "width": width, "height": height, "blur_kind": "real",
                     "split": "val" if i >= pairs - 2 else "train"})
    import pandas as pd

    return write_manifest(pd.DataFrame(rows), root / "split.csv")


def _save(img, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, compress_level=1)


def train_peak(data: Path, manifest: Path, work: Path, params_file: str | None) -> dict:
    """Run `gir train` on the pairs in a fresh process: its peak RSS (MB) and images/s."""
    cmd = [sys.executable, "-m", "gir", "train", "--data", str(data), "--split", str(manifest),
           "--out", str(work / "model"), "--report", str(work / "report"),
           "--checkpoints", str(work / "ckpt"), "--fresh",
           *(["--params", params_file] if params_file else []),
           *[a for kv in TRAIN_SETS for a in ("--set", kv)]]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"gir train failed ({proc.returncode}): {err.strip()[-2000:]}")
    with open(work / "report" / "log.csv") as fh:
        rates = [float(r["images_per_s"]) for r in csv.DictReader(fh)][1:]  # skip warm-up
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "images_per_s": round(float(np.mean(rates)), 2),
            "wall_s": round(time.perf_counter() - start, 1)}


def train_memory_bench(out_dir: str | Path, sizes: tuple[int, ...] = (30, 300),
                       params_file: str | None = None) -> dict:
    """Peak RSS of `gir train` on each number of 1280x720 pairs; writes train_memory.md/json."""
    out_dir = Path(out_dir)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gir-trainmem-") as tmp:
        for n in sizes:
            root = Path(tmp) / f"pairs{n}"
            t0 = time.perf_counter()
            manifest = synthetic_pairs(root, n)
            log.info("bench: %d pairs written in %.0f s", n, time.perf_counter() - t0)
            rows.append({"pairs": n, **train_peak(root, manifest, root / "run", params_file)})
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    result = {"rows": rows, "rss_ratio": round(ratio, 3), "flat": bool(ratio <= 1.3),
              "train_sets": TRAIN_SETS}
    lines = ["| pairs (1280x720) | peak RSS of gir train (MB) | train images/s | wall s |",
             "|---|---|---|---|"]
    lines += [f"| {r['pairs']} | {r['peak_rss_mb']} | {r['images_per_s']} | {r['wall_s']} |"
              for r in rows]
    lines.append(f"\npeak RSS {rows[-1]['pairs']} / {rows[0]['pairs']} pairs: {ratio:.2f} "
                 f"({'flat' if result['flat'] else 'NOT flat'}: within 30% is the bar)")
    result["markdown"] = "\n".join(lines)
    write_text_atomic(out_dir / "train_memory.json", json.dumps(result, indent=2))
    write_text_atomic(out_dir / "train_memory.md", result["markdown"] + "\n")
    return result

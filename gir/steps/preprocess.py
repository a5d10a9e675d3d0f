"""Step 3, preprocess: normalise every pair to 8-bit RGB PNG with the longest side capped.

Resizing is antialiased and keeps the aspect ratio; blurred and sharp images are resized
identically so pixels stay aligned. The scale is recorded so kernels can be rescaled later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gir.config import PreprocessConfig
from gir.data.imageio import atomic_path, encode_png, read_rgb, write_bytes_atomic
from gir.data.manifest import read_manifest, resolve, sha256_bytes, write_manifest
from gir.data.sources.synthetic import cap_size


def preprocess(
    cfg: PreprocessConfig, raw_dir: str | Path, manifest: str | Path, out_dir: str | Path
) -> Path:
    """Write out_dir/{blur,sharp}/<pair_id>.png and out_dir/manifest.csv with updated facts."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    df = read_manifest(manifest)
    rows = []
    done_sharp: dict[str, tuple[str, str]] = {}
    for row in df.to_dict("records"):
        blur = read_rgb(resolve(raw_dir, row["blur_path"]))
        h0, w0 = blur.shape[:2]
        blur = cap_size(blur, cfg.max_side)
        blur_png = encode_png(blur)
        blur_rel = f"blur/{row['pair_id']}.png"
        write_bytes_atomic(out_dir / blur_rel, blur_png)
        sharp_key = row["sharp_path"]
        if sharp_key not in done_sharp:  # several pairs may share one sharp photo
            sharp = cap_size(read_rgb(resolve(raw_dir, sharp_key)), cfg.max_side)
            sharp_png = encode_png(sharp)
            sharp_rel = f"sharp/{row['pair_id']}.png"
            write_bytes_atomic(out_dir / sharp_rel, sharp_png)
            done_sharp[sharp_key] = (sharp_rel, sha256_bytes(sharp_png))
        sharp_rel, sharp_sha = done_sharp[sharp_key]
        kernel_rel = _copy_kernel(raw_dir, row.get("kernel_path", ""), out_dir,
                                  row["pair_id"], blur.shape[1] / w0)
        rows.append({
            **row,
            "blur_path": blur_rel,
            "sharp_path": sharp_rel,
            "blur_sha256": sha256_bytes(blur_png),
            "sharp_sha256": sharp_sha,
            "width": blur.shape[1],
            "height": blur.shape[0],
            "mode": "RGB",
            "bit_depth": 8,
            "format": "PNG",
            "kernel_path": kernel_rel,
            "scale": round(blur.shape[1] / w0, 6),
        })
    return write_manifest(pd.DataFrame(rows, columns=list(df.columns) + ["scale"]), out_dir)


def _copy_kernel(raw_dir: Path, rel: str, out_dir: Path, pair_id: str, scale: float) -> str:
    """Carry a synthetic pair's true kernel along, rescaled with the image, normalised."""
    if not rel:
        return ""
    kernel = np.load(resolve(raw_dir, rel))
    if abs(scale - 1) > 1e-6:
        from scipy import ndimage

        kernel = np.clip(ndimage.zoom(kernel, scale, order=1), 0, None)
        if kernel.shape[0] % 2 == 0:
            kernel = np.pad(kernel, ((0, 1), (0, 1)))
        if kernel.sum() <= 1e-6:   # a mild blur shrunk below a pixel: its samples miss the mass
            kernel = np.ones((1, 1))
        kernel = kernel / kernel.sum()
    dest = f"kernels/{pair_id}.npy"
    with atomic_path(out_dir / dest) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, kernel.astype(np.float32))
    return dest

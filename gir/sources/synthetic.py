"""Turning one sharp photo into several blurred/sharp pairs with recorded kernels."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from gir import blur
from gir.config import SynthConfig
from gir.imageio import atomic_path, encode_png, write_bytes_atomic
from gir.manifest import sha256_bytes


def image_rng(seed: int, name: str) -> np.random.Generator:
    """A generator that depends only on the seed and the photo's name (stable as sets grow)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def cap_size(arr: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (antialiased, aspect kept) so the longest side is at most max_side."""
    h, w = arr.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return arr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS))


def synthesize_pairs(
    sharp: np.ndarray,
    name: str,
    scene: str,
    source: str,
    out_dir: Path,
    synth: SynthConfig,
    seed: int,
    extra: dict | None = None,
) -> list[dict]:
    """Write sharp/<name>.png once and per_image blurred versions; return their manifest rows.

    Kinds cycle through synth.kinds so every photo contributes every kind.
    """
    rng = image_rng(seed, name)
    sharp_png = encode_png(sharp)
    sharp_rel = f"sharp/{name}.png"
    write_bytes_atomic(out_dir / sharp_rel, sharp_png)
    sharp_sha = sha256_bytes(sharp_png)
    h, w = sharp.shape[:2]
    rows = []
    for i in range(synth.per_image):
        kind = synth.kinds[i % len(synth.kinds)]
        spec = blur.random_blur(
            kind, rng, tuple(synth.motion_length), tuple(synth.defocus_radius),
            tuple(synth.gaussian_sigma), tuple(synth.noise_sigma),
        )
        blurred = blur.degrade(sharp, spec, rng)
        pair_id = f"{name}-{i:02d}"
        blur_png = encode_png(blurred)
        write_bytes_atomic(out_dir / f"blur/{pair_id}.png", blur_png)
        kernel_rel = f"kernels/{pair_id}.npy"
        with atomic_path(out_dir / kernel_rel) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, spec.kernel)
        rows.append({
            "pair_id": pair_id,
            "scene": scene,
            "source": source,
            "blur_path": f"blur/{pair_id}.png",
            "sharp_path": sharp_rel,
            "blur_sha256": sha256_bytes(blur_png),
            "sharp_sha256": sharp_sha,
            "width": w,
            "height": h,
            "mode": "RGB",
            "bit_depth": 8,
            "format": "PNG",
            "blur_kind": kind,
            "blur_params": json.dumps(spec.params, sort_keys=True),
            "noise_sigma": round(spec.noise_sigma, 5),
            "kernel_path": kernel_rel,
            **(extra or {}),
        })
    return rows

"""`gir deblur`: run a model over a batch of user photos, one bad file never stopping the rest.

Outputs keep the input's size and, where it makes sense, its mode: grey stays grey, an alpha
channel is carried over untouched. Each output is written atomically as OUTDIR/<stem>.png.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from gir.data.imageio import DEFAULT_MAX_PIXELS, ImageInfo, decode_image, read_bytes, write_png
from gir.errors import BadImageError, GirError


@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, one-line reason)


def restore_mode(rgb: np.ndarray, data: bytes, info: ImageInfo) -> np.ndarray:
    """Give the deblurred RGB back the input's greyness / alpha channel."""
    from PIL import Image, ImageOps

    if info.has_alpha:
        alpha = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGBA"))[..., 3]
        return np.dstack([rgb, alpha])
    if info.mode in ("L", "I;16", "I;16B", "I;16L", "I", "1"):
        return np.asarray(Image.fromarray(rgb).convert("L"))
    return rgb


def render(data: bytes, name: str, fn, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One input's output image: decode (or raise BadImageError), fn(rgb), then give it back
    the input's mode. The one per-image path that `gir deblur`, rectify and batches share."""
    rgb, info = decode_image(data, name, max_pixels)
    return restore_mode(fn(rgb), data, info)


MIN_SIDE = 16   # px (params batch.min_side): below it a photo fails with that reason


def check_side(rgb: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """rgb, or a BadImageError for a photo too thin for detection and the network (64x1)."""
    h, w = rgb.shape[:2]
    if min(h, w) < min_side:
        raise BadImageError(f"too small: {w}x{h} px (photos need at least {min_side} px on "
                            "each side)")
    return rgb


def output_name(src: str) -> str:
    return PurePosixPath(str(src).replace("\\", "/")).stem + ".png"


def deblur_files(inputs: list[str], out_dir: str | Path, deblurrer,
                 max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True,
                 transform=None) -> BatchResult:
    """Deblur each input into out_dir; bad inputs are recorded, never written, never fatal.

    transform, when given, replaces the plain deblurrer call (rectify uses it to decide
    per image whether to deblur at all).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    result = BatchResult()
    taken: dict[str, str] = {}
    for src in tqdm(inputs, desc="deblur", unit="img", disable=not progress or len(inputs) < 2):
        name = output_name(src)
        if name in taken:
            result.failed.append((src, f"output {name} already written for {taken[name]}"))
            continue
        try:
            data = read_bytes(src)
            out = render(data, str(src), lambda rgb: transform(check_side(rgb), src)
                         if transform else deblurrer(check_side(rgb)), max_pixels)
            dest = out_dir / name
            write_png(dest, out)
        except GirError as exc:
            result.failed.append((src, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - one photo's crash is that photo's failure
            text = str(exc).splitlines()[0] if str(exc) else ""
            result.failed.append((src, f"{type(exc).__name__}: {text}"))
            continue
        taken[name] = src
        result.written.append(dest)
    return result

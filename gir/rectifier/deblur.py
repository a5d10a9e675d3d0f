"""One photo's output image, as every path makes it (gir.rectifier.batch runs it per input).

Outputs keep the input's size and, where it makes sense, its mode: grey stays grey, an alpha
channel is carried over untouched.
"""

from __future__ import annotations

import io

import numpy as np

from gir.data.imageio import DEFAULT_MAX_PIXELS, ImageInfo, decode_image
from gir.errors import BadImageError


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

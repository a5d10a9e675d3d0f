"""Facts about one image file, measured once at ingest and kept in the manifest.

The quality gate decides from these facts (decodable? what size, mode, bit depth? duplicate of
another file? sharper than its blurred twin?) without decoding every image again. Facts are
keyed by the file's sha256, so an unchanged file is never decoded twice across ingests.
"""

from __future__ import annotations

import numpy as np
from scipy import fft, ndimage

from gir.errors import GirError
from gir.data.imageio import DEFAULT_MAX_PIXELS, decode_image, read_bytes
from gir.data.manifest import FACT_KEYS, sha256_bytes


def phash(rgb: np.ndarray) -> str:
    """64-bit DCT perceptual hash (Zauner 2010) as 16 hex digits.

    Grey, shrink to 32x32, 2-D DCT, keep the 8x8 lowest frequencies, one bit per coefficient:
    above or below their median. Re-encoding, resizing and small edits flip few bits.
    """
    from PIL import Image

    grey = Image.fromarray(rgb).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    coeffs = fft.dctn(np.asarray(grey, dtype=np.float64), norm="ortho")[:8, :8].ravel()
    bits = coeffs > np.median(coeffs[1:])  # the DC term would dominate the median
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes (64 when either is missing)."""
    if not a or not b:
        return 64
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (0..255 scale): higher is sharper."""
    grey = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return float(ndimage.laplace(grey).var())


def image_facts(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """All facts of one file's bytes; an unusable file gets decodable=False and the reason."""
    facts = _unusable("")
    facts["sha256"] = sha256_bytes(data)
    try:
        rgb, info = decode_image(data, name, max_pixels)
    except GirError as exc:
        facts["error"] = str(exc)
        return facts
    facts.update(decodable=True, format=info.format, mode=info.mode, bit_depth=info.bit_depth,
                 width=int(rgb.shape[1]), height=int(rgb.shape[0]),
                 exif_orientation=info.exif_orientation, phash=phash(rgb),
                 sharpness=round(sharpness(rgb), 3), notes="; ".join(info.notes))
    return facts


def _unusable(error: str) -> dict:
    facts: dict = {k: "" for k in FACT_KEYS}
    facts.update(decodable=False, error=error, sha256="", bit_depth=0, width=0, height=0,
                 exif_orientation=0, sharpness=0.0)
    return facts


def file_facts(path: str, max_pixels: int = DEFAULT_MAX_PIXELS,
               known: dict[str, dict] | None = None) -> dict:
    """Facts of a local file or URL; `known` (sha256 -> facts) skips decoding unchanged files."""
    try:
        data = read_bytes(path)
    except GirError as exc:
        return _unusable(str(exc))
    sha = sha256_bytes(data)
    if known and sha in known:
        return {**known[sha], "sha256": sha}
    return image_facts(data, str(path), max_pixels)

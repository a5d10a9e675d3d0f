"""Reading images defensively and writing outputs atomically.

Every image that enters GIR goes through :func:`read_image`, which turns the zoo of real files
(grey, RGBA, CMYK, 16-bit, EXIF-rotated, truncated, empty, not an image at all, decompression
bombs) into either an 8-bit RGB array plus a record of what was found, or a one-line
:class:`BadImageError`. Outputs are written to a temporary name and renamed into place, so a
crash never leaves a partial file that looks complete.
"""

from __future__ import annotations

import io
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gir.errors import BadImageError, TooLargeError

DEFAULT_MAX_PIXELS = 64_000_000   # == params data.max_pixels (the schema's default)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}

# We enforce our own pixel limit with a clear message; PIL's own bomb check stays as a backstop.
Image.MAX_IMAGE_PIXELS = 400_000_000


@dataclass
class ImageInfo:
    """What a file was before normalisation (kept in the manifest and reports)."""

    format: str = ""
    mode: str = ""
    bit_depth: int = 8
    width: int = 0
    height: int = 0
    exif_orientation: int = 1
    has_alpha: bool = False
    notes: list[str] = field(default_factory=list)


def is_remote(path: str | os.PathLike) -> bool:
    return "://" in str(path)


def read_bytes(path: str | os.PathLike) -> bytes:
    """Bytes of a local file or an fsspec URL (s3://...)."""
    if is_remote(path):
        import fsspec

        try:
            with fsspec.open(str(path), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise BadImageError(f"{path}: no such object") from None
        except Exception as exc:  # network or credentials: one line, not a traceback
            raise BadImageError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadImageError(f"{path}: is a directory") from None
    except PermissionError:
        raise BadImageError(f"{path}: permission denied") from None


_BIT_DEPTH = {"1": 1, "L": 8, "P": 8, "RGB": 8, "RGBA": 8, "CMYK": 8, "LA": 8, "YCbCr": 8,
              "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32, "RGB;16": 16}


def decode_image(
    data: bytes, name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, ImageInfo]:
    """Decode bytes to (H, W, 3) uint8 RGB with EXIF rotation applied, or raise BadImageError."""
    if len(data) == 0:
        raise BadImageError(f"{name}: empty file (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadImageError(f"{name}: not an image (unrecognised format)") from None
    except Image.DecompressionBombError:
        raise TooLargeError(f"{name}: refused, too many pixels (decompression bomb)") from None
    except Exception as exc:  # e.g. a header cut short
        raise BadImageError(f"{name}: truncated or corrupt ({exc})") from None
    w, h = img.size
    if w * h > max_pixels:
        raise TooLargeError(
            f"{name}: refused, {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
            "(decompression bomb guard, data.max_pixels)"
        )
    info = ImageInfo(format=img.format or "", mode=img.mode, width=w, height=h,
                     bit_depth=_BIT_DEPTH.get(img.mode, 8))
    try:
        img.load()
    except OSError as exc:
        raise BadImageError(f"{name}: truncated or corrupt ({exc})") from None
    except Exception as exc:
        raise BadImageError(f"{name}: cannot decode ({exc})") from None
    try:
        info.exif_orientation = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:
        info.exif_orientation = 1
    if info.exif_orientation != 1:
        img = ImageOps.exif_transpose(img)
        info.notes.append(f"exif orientation {info.exif_orientation} applied")
    return to_rgb8(img, info), info


def to_rgb8(img: Image.Image, info: ImageInfo) -> np.ndarray:
    """Any PIL mode to 8-bit RGB, noting each conversion in info.notes."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(np.round(arr / hi * 255.0), 0, 255).astype(np.uint8)
        info.notes.append(f"{mode} converted to 8-bit")
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        info.has_alpha = True
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
        info.notes.append(f"{mode} composited on white")
    elif mode != "RGB":
        info.notes.append(f"{mode} converted to RGB")
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise BadImageError(f"unexpected image layout {arr.shape}")
    return np.ascontiguousarray(arr)


def read_image(
    path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, ImageInfo]:
    """Read a local path or URL to RGB uint8 plus what it was; never modifies the source."""
    return decode_image(read_bytes(path), str(path), max_pixels)


def read_rgb(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    return read_image(path, max_pixels)[0]


@contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside dest; rename it onto dest only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(dest: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(dest, text.encode())


def encode_png(arr: np.ndarray) -> bytes:
    """uint8 (H, W), (H, W, 3) or (H, W, 4) array to PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(dest: str | os.PathLike, arr: np.ndarray) -> None:
    """Write a uint8 image as PNG atomically."""
    write_bytes_atomic(dest, encode_png(arr))

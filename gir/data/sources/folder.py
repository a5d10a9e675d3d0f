"""Any folder of sharp photos, local or ``s3://bucket/prefix``, blurred synthetically.

Nested folders and mixed formats (JPEG, PNG, WebP, TIFF, ...) are read through fsspec, so a
local path and an S3 prefix are the same code. The photos are only read; each one's
sha256 decides whether its pairs from the last ingest can be reused.

S3 endpoint: ``data.folder.endpoint_url`` when set (MinIO, Ceph, a test server), otherwise
the standard AWS configuration (``AWS_ENDPOINT_URL``, credentials, profile) applies.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from gir.config import Params
from gir.errors import GirError
from gir.data.imageio import IMAGE_SUFFIXES, is_remote
from gir.data.sources.synthetic import pairs_from_photo, previous_rows, safe_name


def open_folder(path: str, endpoint_url: str = ""):
    """(filesystem, root path inside it) for a local folder or an fsspec URL."""
    import fsspec

    options = {"endpoint_url": endpoint_url} if endpoint_url and is_remote(path) else {}
    try:
        fs, root = fsspec.core.url_to_fs(path, **options)
    except Exception as exc:
        raise GirError(f"data.folder.path: cannot open {path} ({exc})") from None
    return fs, root.rstrip("/")


def list_photos(fs, root: str) -> list[str]:
    """Image files under root (recursive, sorted), hidden files and folders skipped."""
    try:
        if not fs.isdir(root):
            raise GirError(f"data.folder.path: {root} is not a folder (or is empty)")
        found = fs.find(root)
    except GirError:
        raise
    except Exception as exc:
        raise GirError(f"data.folder.path: cannot list {root} ({type(exc).__name__}: {exc})") \
            from None
    photos = []
    for key in found:
        rel = PurePosixPath(key).relative_to(root)
        if rel.suffix.lower() in IMAGE_SUFFIXES and not any(p.startswith(".") for p in rel.parts):
            photos.append(key)
    return sorted(photos)


def ingest_folder(params: Params, out_dir: Path) -> list[dict]:
    """Pairs for every photo under data.folder.path; unusable photos get a row with the reason."""
    cfg = params.data.folder
    fs, root = open_folder(cfg.path, cfg.endpoint_url)
    photos = list_photos(fs, root)
    if not photos:
        raise GirError(f"data.folder.path: no images under {cfg.path}")
    previous = previous_rows(out_dir)
    base = Path(out_dir).resolve()
    rows = []
    for key in photos:
        rel = str(PurePosixPath(key).relative_to(root))
        if is_remote(cfg.path):
            origin = f"{cfg.path.split('://')[0]}://{key}"
        else:
            origin = os.path.relpath(Path(key).resolve(), base)
        data = fs.cat_file(key)
        name = safe_name(rel)
        rows += pairs_from_photo(data, origin, name, name, "folder", out_dir, params,
                                 cfg.max_side, previous, extra={"source_url": origin},
                                 label=origin if is_remote(origin) else key)
    return rows

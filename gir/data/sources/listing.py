"""What a data source holds right now, cheaply: keys with sizes and change stamps.

DVC cannot see inside an external folder or bucket, so `dvc repro` would not notice new photos.
The `listing` stage (always run, a few seconds even for thousands of files: nothing is read
but the listing) writes this to data/listing.json, a dependency of ingest: a new, changed or
removed photo changes the file and re-runs ingest (which reuses every unchanged pair); an
unchanged source leaves it byte-identical, and nothing downstream runs. On Kubeflow the same
listing's digest is part of ingest's cache key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath

from gir.config import Params
from gir.data.imageio import IMAGE_SUFFIXES


def _files(url: str, endpoint_url: str = "", images_only: bool = True) -> list[list]:
    """[rel, size, stamp] of every (image) file under a local folder or s3:// prefix."""
    from gir.data.storage import Location, is_hidden, list_source, use_endpoint

    use_endpoint(endpoint_url or None)
    listing = list_source(Location(url), url)
    return sorted([f.rel, f.size, f.stamp] for f in listing.files if not is_hidden(f.rel)
                  and (not images_only or PurePosixPath(f.rel).suffix.lower() in IMAGE_SUFFIXES))


def source_listing(params: Params) -> dict:
    """The listing of params.data.source: its location and files (or what defines it)."""
    d = params.data
    if d.source == "folder":
        return {"source": "folder", "location": d.folder.path,
                "files": _files(d.folder.path, d.folder.endpoint_url)}
    if d.source == "gopro":
        return {"source": "gopro", "location": d.gopro.root,
                "files": _files(d.gopro.root, getattr(d.gopro, "endpoint_url", ""))}
    if d.source == "dvc":
        from gir.data.sources.dvc import dvc_listing

        return {"source": "dvc", **dvc_listing(params)}
    # sample photos ship with scikit-image; unsplash is asked at ingest (its photo ids are the
    # listing, and fetching them is the ingest): what defines them is params.data already.
    return {"source": d.source, "location": "params.data", "files": []}


def listing_digest(listing: dict) -> str:
    """A short stable hash of a listing: what a KFP ingest task takes as its cache key."""
    payload = json.dumps(listing, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]

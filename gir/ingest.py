"""Step 1, ingest: run the configured source and write the manifest with checksums."""

from __future__ import annotations

from pathlib import Path

from gir.config import Params
from gir.errors import GirError
from gir.manifest import new_manifest, write_manifest
from gir.sources import get_source


def ingest(params: Params, out_dir: str | Path) -> Path:
    """Produce out_dir/manifest.csv (+ the images it names) from params.data.source."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = get_source(params.data.source)(params, out_dir)
    if not rows:
        raise GirError(f"ingest: source {params.data.source!r} produced no pairs")
    return write_manifest(new_manifest(rows), out_dir)

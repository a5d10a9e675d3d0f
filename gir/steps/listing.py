"""Step 0, listing: what the data source holds now (keys with etags or mtimes), for DVC.

Always run (dvc.yaml ``always_changed``) and cheap: only the source's listing is read. Its
output is a dependency of ingest, so `dvc repro` re-runs ingest after a photo is added,
changed or removed, and nothing when the source is as it was (the file is then left
untouched, byte for byte). See gir.data.sources.listing.
"""

from __future__ import annotations

import json
from pathlib import Path

from gir.config import Params
from gir.data.imageio import write_text_atomic
from gir.data.sources.listing import listing_digest, source_listing


def listing(params: Params, out_path: str | Path) -> dict:
    """Write the source's listing to out_path (only when it changed); returns it with its
    digest."""
    found = source_listing(params)
    text = json.dumps(found, indent=1, sort_keys=True) + "\n"
    out_path = Path(out_path)
    if not out_path.exists() or out_path.read_text() != text:
        write_text_atomic(out_path, text)
    return {**found, "digest": listing_digest(found)}

"""Data sources. Each turns its origin into manifest rows (see gir.data.manifest) under out_dir.

A source is a function ``(params: Params, out_dir: Path) -> list[dict]`` registered here by
name; ``data.source`` in params.yaml picks one.
"""

from __future__ import annotations

from typing import Callable

SOURCES: dict[str, str] = {
    "sample": "gir.data.sources.sample:ingest_sample",
    "gopro": "gir.data.sources.gopro:ingest_gopro",
    "folder": "gir.data.sources.folder:ingest_folder",
    "unsplash": "gir.data.sources.unsplash:ingest_unsplash",
    "dvc": "gir.data.sources.dvc:ingest_dvc",
}


def get_source(name: str) -> Callable:
    """Import and return the source function registered under name."""
    import importlib

    from gir.errors import GirError

    if name not in SOURCES:
        raise GirError(f"data.source: unknown source {name!r} (known: {', '.join(SOURCES)})")
    module, func = SOURCES[name].split(":")
    return getattr(importlib.import_module(module), func)

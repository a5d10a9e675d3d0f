"""A local cache of the registry champion's weights, so `gir deblur` with a champion costs
about what it costs with the shipped model.

Resolving ``models:/NAME@champion`` through MLflow imports MLflow and loads the pyfunc (seconds).
For a SQLite tracking store this module reads the alias straight from the database (stdlib
sqlite3, a few milliseconds), names the version by a digest of what identifies it (store,
name, version, source, run, creation time), and keeps that version's generator files under
``$GIR_CACHE/models/`` (default ``~/.cache/gir``). A version re-created under the same number
gets another digest, so a stale copy is never used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

log = logging.getLogger("gir")

_CHAMPION_SQL = """
SELECT mv.version, mv.source, mv.storage_location, mv.run_id, mv.creation_time
FROM registered_model_aliases a
JOIN model_versions mv ON mv.name = a.name AND mv.version = a.version
WHERE a.name = ? AND a.alias = ? AND mv.status = 'READY'
"""


def cache_root() -> Path:
    """$GIR_CACHE, else ~/.cache/gir (the detector's built-in fit is cached there too)."""
    return Path(os.environ.get("GIR_CACHE", Path.home() / ".cache" / "gir"))


def champion_in_sqlite(uri: str, name: str, alias: str) -> tuple[str, str] | tuple[()] | None:
    """(version, digest) of NAME@ALIAS read from a SQLite store; () when it has no such alias;
    None when the store is not SQLite, does not exist, or cannot be read this way."""
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    if not path.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            row = con.execute(_CHAMPION_SQL, (name, alias)).fetchone()
        finally:
            con.close()
    except sqlite3.Error:   # another schema (or locked): MLflow itself will answer
        return None
    if row is None:
        return ()
    ident = "|".join(str(v) for v in (path.resolve(), name, *row))
    return str(row[0]), f"{name}-v{row[0]}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def cached_champion(version: str, digest: str) -> Path | None:
    """The folder holding that version's generator files, if cached."""
    from gir.nn.shipped import SPEC, WEIGHTS  # torch-free (gir.rectifier.inference is not)

    folder = cache_root() / "models" / digest
    if (folder / SPEC).is_file() and (folder / WEIGHTS).is_file():
        return folder
    return None


def remember_champion(version: str, digest: str, uri: str) -> Path | None:
    """Copy the version's generator files into the cache (written whole, then renamed); None
    when they cannot be had (the cache is only a shortcut: nothing fails for want of it)."""
    import mlflow.artifacts

    from gir.rectifier.inference import SPEC_FILE, WEIGHTS_FILE

    name = uri.removeprefix("models:/").split("@")[0]
    folder = cache_root() / "models" / digest
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".tmp-") as tmp:
            got = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=str(Path(tmp) / "dl")))
            staged = Path(tmp) / "model"
            staged.mkdir()
            for file in (SPEC_FILE, WEIGHTS_FILE):
                shutil.copy2(next(got.rglob(file)), staged / file)
            _add_onnx(staged)
            os.replace(staged, folder)
        return folder
    except Exception:  # noqa: BLE001 - any failure is a cache miss, not an error
        return None


def _add_onnx(folder: Path) -> None:
    """The ONNX graph of the cached weights, which CPU inference runs (about twice as fast, no
    torch import); a generator the exporter cannot take is simply cached without one."""
    from gir.rectifier.onnx_runtime import ONNX_FILE, export_onnx

    try:
        export_onnx(folder, folder / ONNX_FILE)
    except Exception as exc:  # noqa: BLE001 - the weights are cached either way
        (folder / ONNX_FILE).unlink(missing_ok=True)
        log.debug("gir: model cache: no ONNX graph (%s)", exc)

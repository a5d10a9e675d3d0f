"""A named data version from a DVC remote: the pairs a laptop's `dvc repro` ingested.

``data.dvc.rev`` (a git tag, branch or commit of ``data.dvc.repo``) names the version;
``data.dvc.path`` (``data/raw``, ingest's output) is read through DVC's own filesystem
(``dvc.api.DVCFileSystem``, reached through fsspec's ``dvc`` protocol so that this plain library
does not import DVC itself), which fetches the files from the DVC remote that revision
configures (S3, a shared folder, ...). The files are copied as they are, so validate,
preprocess and split make the same pairs and the run carries the laptop run's ``data_version``.
"""

from __future__ import annotations

from pathlib import Path

from gir.config import Params
from gir.data.manifest import MANIFEST_NAME, read_manifest
from gir.data.storage import one_line
from gir.errors import GirError


def _filesystem(params: Params):
    """DVC's filesystem of data.dvc.repo at data.dvc.rev (dvc.api.DVCFileSystem)."""
    import fsspec

    cfg = params.data.dvc
    where = f"{cfg.repo or '.'}@{cfg.rev or 'HEAD'}"
    try:
        return fsspec.filesystem("dvc", url=cfg.repo or None, rev=cfg.rev or None), where
    except ValueError:
        raise GirError("data.source=dvc needs DVC (pip install dvc[s3])") from None
    except Exception as exc:  # noqa: BLE001 - no such repo or revision, no git
        raise GirError(f"data.dvc: cannot open {where}: {one_line(exc)}") from None


def dvc_listing(params: Params) -> dict:
    """What names the data version: repo, rev and the tracked folder's DVC hash."""
    cfg = params.data.dvc
    fs, where = _filesystem(params)
    try:
        info = fs.info(cfg.path.rstrip("/"))
    except Exception as exc:  # noqa: BLE001
        raise GirError(f"data.dvc.path: {cfg.path} at {where}: {one_line(exc)}") from None
    digest = info.get("md5") or (info.get("dvc_info") or {}).get("md5") or ""
    return {"location": f"dvc:{where}:{cfg.path}", "md5": digest, "files": []}


def ingest_dvc(params: Params, out_dir: Path) -> list[dict]:
    """Copy the tracked pairs of the revision into out_dir; their manifest rows, unchanged."""
    cfg = params.data.dvc
    fs, where = _filesystem(params)
    src = cfg.path.rstrip("/")
    try:
        if not fs.exists(f"{src}/{MANIFEST_NAME}"):
            raise GirError(f"data.dvc.path: no {src}/{MANIFEST_NAME} at {where} "
                           "(is it DVC-tracked and pushed in that revision?)")
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        fs.get(f"{src}/", f"{Path(out_dir)}/", recursive=True)
    except GirError:
        raise
    except Exception as exc:  # noqa: BLE001 - remote unreachable, credentials, not pushed
        raise GirError(f"data.dvc: cannot fetch {src} at {where}: {one_line(exc)}") from None
    return read_manifest(Path(out_dir) / MANIFEST_NAME).to_dict("records")

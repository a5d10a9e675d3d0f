"""New data is noticed: the always-run `listing` stage feeds ingest, so `dvc repro` re-ingests
(incrementally) after a photo is added to a folder source, and runs nothing when none was."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from tests.helpers import dvc, dvc_project, tiny_params


def _photo(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    small = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(small).resize((128, 96), Image.BICUBIC).save(path)


def test_listing_changes_only_with_the_source(tmp_path):
    from gir.data.sources.listing import listing_digest, source_listing
    from gir.steps.listing import listing

    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png", 1)
    (photos / ".hidden.png").write_bytes(b"x")
    (photos / "notes.txt").write_text("not a photo")
    params = tiny_params("data.source=folder", f"data.folder.path={photos}")
    out = tmp_path / "listing.json"
    first = listing(params, out)
    assert [f[0] for f in first["files"]] == ["a.png"]
    stamp = out.stat().st_mtime_ns
    os.utime(photos / "notes.txt")   # not a photo: no change
    assert listing(params, out)["digest"] == first["digest"]
    assert out.stat().st_mtime_ns == stamp, "an unchanged listing must leave the file alone"
    _photo(photos / "b.png", 2)
    second = listing(params, out)
    assert [f[0] for f in second["files"]] == ["a.png", "b.png"]
    assert second["digest"] != first["digest"]
    assert second["digest"] == listing_digest(source_listing(params))
    assert json.loads(out.read_text())["files"] == second["files"]


def test_dvc_repro_reingests_after_a_photo_is_added(tmp_path, mlflow_uri):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        _photo(photos / f"p{i}.png", i)
    repo = dvc_project(tmp_path, tiny_params("data.source=folder", f"data.folder.path={photos}",
                                             "data.synth.per_image=1"))
    out = dvc("repro", "ingest", cwd=repo)
    assert "Running stage 'listing'" in out and "Running stage 'ingest'" in out
    blurred = sorted((repo / "data/raw/blur").glob("*.png"))
    assert len(blurred) == 2
    stamps = {p.name: p.stat().st_mtime_ns for p in blurred}

    again = dvc("repro", "ingest", cwd=repo)
    assert "Running stage 'listing'" in again and "Running stage 'ingest'" not in again, again

    _photo(photos / "p2.png", 2)
    out = dvc("repro", "ingest", cwd=repo)
    assert "Running stage 'ingest'" in out, out
    now = sorted((repo / "data/raw/blur").glob("*.png"))
    assert len(now) == 3
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in now if p.name in stamps), \
        "the pairs of unchanged photos are reused, not made again"

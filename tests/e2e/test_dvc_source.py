"""The `dvc` source: a named data version fetched from a DVC remote through DVC's Python API
carries the same data_version as the laptop's copy, and a GoPro root on S3 lists as URLs."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
from PIL import Image

from tests.batchkit import s3  # noqa: F401 - the moto S3 server fixture
from tests.helpers import dvc, tiny_params


def _git(*args: str, cwd) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                   check=True, capture_output=True)


def _photo(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    small = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(small).resize((128, 96), Image.BICUBIC).save(path)


def test_dvc_source_fetches_a_tagged_data_version_from_the_remote(tmp_path):
    from gir.data.manifest import data_version, read_manifest
    from gir.data.sources.listing import source_listing
    from gir.steps.ingest import ingest

    photos, laptop, remote = tmp_path / "photos", tmp_path / "laptop", tmp_path / "remote"
    photos.mkdir()
    laptop.mkdir()
    for i in range(2):
        _photo(photos / f"p{i}.png", i)
    ingest(tiny_params("data.source=folder", f"data.folder.path={photos}",
                       "data.synth.per_image=1"), laptop / "data/raw")
    want = data_version(read_manifest(laptop / "data/raw"))
    _git("init", "-q", cwd=laptop)
    dvc("init", "-q", cwd=laptop)
    dvc("add", "data/raw", cwd=laptop)
    dvc("remote", "add", "-d", "store", str(remote), cwd=laptop)
    _git("add", ".", cwd=laptop)
    _git("commit", "-qm", "data v1", cwd=laptop)
    _git("tag", "v1", cwd=laptop)
    dvc("push", cwd=laptop)
    # Only the remote holds the files now: no cache, no workspace copy.
    shutil.rmtree(laptop / ".dvc/cache")
    shutil.rmtree(laptop / "data/raw")

    params = tiny_params("data.source=dvc", f"data.dvc.repo={laptop}", "data.dvc.rev=v1")
    listed = source_listing(params)
    assert listed["md5"] and listed["md5"] in (laptop / "data/raw.dvc").read_text()
    got = ingest(params, tmp_path / "pod/raw")
    df = read_manifest(got)
    assert data_version(df) == want and len(df) == 2
    assert all((tmp_path / "pod/raw" / p).is_file() for p in df["blur_path"])


def test_dvc_source_names_a_missing_revision_in_one_line(tmp_path):
    import pytest

    from gir.errors import GirError
    from gir.steps.ingest import ingest

    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    dvc("init", "-q", cwd=repo)
    _git("commit", "-qm", "empty", cwd=repo)
    with pytest.raises(GirError, match="data.dvc") as err:
        ingest(tiny_params("data.source=dvc", f"data.dvc.repo={repo}", "data.dvc.rev=HEAD"),
               tmp_path / "raw")
    assert "\n" not in str(err.value)


def test_gopro_root_on_s3_gives_the_same_pairs_as_urls(tmp_path, s3):
    from datatrees import make_gopro_tree
    from gir.data.dataset import load_split
    from gir.data.sources.listing import source_listing
    from gir.steps.ingest import ingest

    _, client = s3
    root = make_gopro_tree(tmp_path / "GOPRO_Large")
    client.create_bucket(Bucket="gopro")
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.put_object(Bucket="gopro", Key=f"GOPRO_Large/{path.relative_to(root)}",
                              Body=path.read_bytes())
    from gir.data.manifest import read_manifest

    local = read_manifest(ingest(tiny_params("data.source=gopro", f"data.gopro.root={root}"),
                                 tmp_path / "local"))
    params = tiny_params("data.source=gopro", "data.gopro.root=s3://gopro/GOPRO_Large")
    remote = read_manifest(ingest(params, tmp_path / "remote"))
    assert list(remote["pair_id"]) == list(local["pair_id"])
    assert list(remote["blur_sha256"]) == list(local["blur_sha256"])
    assert all(p.startswith("s3://gopro/GOPRO_Large/") for p in remote["sharp_path"] if p)
    listed = source_listing(params)
    assert len(listed["files"]) == sum(1 for p in root.rglob("*.png"))
    # training streams the pairs straight from the bucket
    pairs = load_split(tmp_path / "remote", tmp_path / "remote/manifest.csv", "train")
    ok = next(i for i, r in enumerate(pairs.rows) if r["blur_path"] and r["sharp_path"])
    assert pairs[ok].blur.shape == pairs[ok].sharp.shape and pairs.size(ok)[0] > 0

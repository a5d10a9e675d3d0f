"""S3 against a real S3 endpoint on loopback (moto's threaded server, no mocked boto calls):
the DVC remote (push/pull), the folder source reading s3://, and `gir deblur s3://...`.

Endpoint configuration under test: DVC takes `endpointurl` in its remote config; the folder
source takes `data.folder.endpoint_url`; `gir deblur` (and any s3:// read without a params
file) takes the standard AWS variable AWS_ENDPOINT_URL. Credentials come from the usual AWS
environment variables in all three.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from datatrees import make_folder_tree, run_pipeline, tree_hashes
from gir.data.manifest import read_manifest
from tests.helpers import moto_s3, run_gir, tiny_params


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 and a boto3 client for it; AWS creds set for the module
    (AWS_ENDPOINT_URL left unset: the DVC remote and sources are given the endpoint)."""
    with moto_s3(endpoint_env=False) as server:
        yield server


def _upload(client, bucket: str, prefix: str, root: Path) -> None:
    client.create_bucket(Bucket=bucket)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(root)}",
                              Body=path.read_bytes())


def _dvc(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"dvc {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_dvc_remote_push_pull(s3, tmp_path):
    url, client = s3
    client.create_bucket(Bucket="gir-dvc")
    repo = tmp_path / "repo"
    photos = make_folder_tree(repo / "data/photos")
    before = tree_hashes(photos)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc("init", "-q", cwd=repo)
    _dvc("add", "data/photos", cwd=repo)
    _dvc("remote", "add", "-d", "store", "s3://gir-dvc/store", cwd=repo)
    _dvc("remote", "modify", "store", "endpointurl", url, cwd=repo)
    _dvc("push", cwd=repo)
    stored = client.list_objects_v2(Bucket="gir-dvc", Prefix="store/")["KeyCount"]
    assert stored == len(set(before.values())) + 1  # content-addressed files + the .dir
    import shutil

    shutil.rmtree(repo / "data/photos")
    shutil.rmtree(repo / ".dvc/cache")
    _dvc("pull", cwd=repo)
    assert tree_hashes(repo / "data/photos") == before


def test_folder_from_s3_to_registered_model_then_deblur_s3(s3, tmp_path, mlflow_uri):
    url, client = s3
    photos = make_folder_tree(tmp_path / "photos")
    _upload(client, "gir-photos", "shoot", photos)
    params = tiny_params("train.steps=4", "train.image_every=4", "train.checkpoint_every=4",
                         "data.source=folder", "data.folder.path=s3://gir-photos/shoot",
                         f"data.folder.endpoint_url={url}", "data.synth.per_image=1",
                         "validate.max_quarantine_fraction=0.5")
    proj = tmp_path / "proj"
    proj.mkdir()
    decision = run_pipeline(params, proj)
    assert decision["alias"] == "champion"
    raw = read_manifest(proj / "data/raw")
    assert raw["origin_path"].str.startswith("s3://gir-photos/shoot/").all()
    quarantine = read_manifest(proj / "data/validated/quarantine.csv")
    reasons = dict(zip(quarantine["origin_path"], quarantine["reason"]))
    assert "empty file" in reasons["s3://gir-photos/shoot/bad/empty.jpg"]
    assert "exact duplicate" in reasons["s3://gir-photos/shoot/odd/copy_of_coffee.jpg"]
    # Re-ingest from S3: unchanged objects reuse their pairs (content addressing).
    before = {p: p.stat().st_mtime_ns for p in (proj / "data/raw/blur").iterdir()}
    from gir.steps.ingest import ingest

    ingest(params, proj / "data/raw")
    assert {p: p.stat().st_mtime_ns for p in (proj / "data/raw/blur").iterdir()} == before

    # gir deblur reads s3:// inputs; the endpoint comes from AWS_ENDPOINT_URL.
    good, missing = "s3://gir-photos/shoot/good/astronaut.png", "s3://gir-photos/shoot/nope.png"
    proc = run_gir("deblur", good, missing, "-o", str(tmp_path / "out"), "--model",
                   str(proj / "models"), "--device", "cpu", cwd=tmp_path,
                   env={"AWS_ENDPOINT_URL": url}, check=False)
    assert (tmp_path / "out/astronaut.png.png").exists(), proc.stderr
    assert proc.returncode == 1 and "nope.png" in proc.stderr and "Traceback" not in proc.stderr

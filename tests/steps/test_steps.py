"""Each data step on the tiny config: ingest, validate, preprocess, split."""

import json

import numpy as np
import pandas as pd
import pytest

from gir.data.imageio import read_rgb
from gir.data.manifest import COLUMNS, read_manifest, resolve, sha256_file
from gir.errors import GateFailed
from gir.steps.ingest import ingest
from gir.steps.preprocess import preprocess
from gir.steps.split import assign_scenes, split
from gir.steps.validate import validate
from tests.helpers import tiny_params


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    p = tiny_params()
    ingest(p, root / "raw")
    return root, p


def test_ingest_writes_contract_manifest_with_true_checksums(raw):
    root, p = raw
    df = read_manifest(root / "raw")
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS
    assert len(df) == len(p.data.sample.images) * p.data.synth.per_image
    assert set(df["blur_kind"]) == {"motion", "defocus", "gaussian"}
    assert df["pair_id"].is_unique and df["blur_sha256"].is_unique
    for row in df.head(4).to_dict("records"):
        assert sha256_file(resolve(root / "raw", row["blur_path"])) == row["blur_sha256"]
        assert sha256_file(resolve(root / "raw", row["sharp_path"])) == row["sharp_sha256"]
        params = json.loads(row["blur_params"])
        assert params["severity"] in {"full", "mild"}
        assert params["degradations"]["linear_light"] is True   # every kind blurs in linear light
        k = np.load(resolve(root / "raw", row["kernel_path"]))
        assert k.sum() == pytest.approx(1, abs=1e-4)
        assert max(row["width"], row["height"]) <= p.data.sample.max_side


def test_ingest_is_deterministic(raw, tmp_path):
    root, p = raw
    ingest(p, tmp_path / "again")
    a, b = read_manifest(root / "raw"), read_manifest(tmp_path / "again")
    assert a["blur_sha256"].tolist() == b["blur_sha256"].tolist()


def test_gate_passes_clean_data_and_quarantines_a_broken_pair(raw, tmp_path):
    root, p = raw
    r = validate(p.validate, root / "raw", tmp_path / "ok", tmp_path / "rep")
    assert r.success and r.quarantined == 0
    report = json.loads((tmp_path / "rep" / "quality.json").read_text())
    assert report["pairs_passed"] == r.passed and all(x["success"] for x in report["rules"])

    # A copy of the data with one truncated blurred image: it goes to quarantine, with reason.
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(root / "raw", bad)
    df = read_manifest(bad)
    victim = df.iloc[0]
    path = bad / victim["blur_path"]
    path.write_bytes(path.read_bytes()[:200])
    r = validate(p.validate, bad, tmp_path / "out", tmp_path / "rep2")
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv")
    assert q["pair_id"].tolist() == [victim["pair_id"]]
    assert "not decodable" in q["reason"][0] and "truncated" in q["reason"][0]
    assert len(read_manifest(tmp_path / "out")) == len(df) - 1
    assert "Quarantine" in (tmp_path / "rep2" / "quality.html").read_text()

    # Over the threshold, the gate stops the pipeline with a readable one-liner.
    strict = tiny_params("validate.max_quarantine_fraction=0.0").validate
    with pytest.raises(GateFailed, match="1 of .* pairs quarantined"):
        validate(strict, bad, tmp_path / "out2", tmp_path / "rep3")


def test_preprocess_caps_size_and_keeps_pairs_aligned(raw, tmp_path):
    root, p = raw
    validate(p.validate, root / "raw", tmp_path / "val", tmp_path / "rep")
    cfg = tiny_params("preprocess.max_side=64").preprocess
    preprocess(cfg, root / "raw", tmp_path / "val" / "manifest.csv", tmp_path / "proc")
    df = read_manifest(tmp_path / "proc")
    for row in df.to_dict("records"):
        b = read_rgb(resolve(tmp_path / "proc", row["blur_path"]))
        s = read_rgb(resolve(tmp_path / "proc", row["sharp_path"]))
        assert b.shape == s.shape and max(b.shape[:2]) == 64
        assert (row["width"], row["height"]) == (b.shape[1], b.shape[0])
        if not (isinstance(row["kernel_path"], str) and row["kernel_path"]):
            assert row["blur_kind"] == "defocus"   # depth-varying defocus has no one kernel
            continue
        k = np.load(resolve(tmp_path / "proc", row["kernel_path"]))
        assert k.sum() == pytest.approx(1, abs=1e-4) and k.shape[0] % 2 == 1


def test_split_never_cuts_a_scene_and_is_deterministic(raw, tmp_path):
    root, p = raw
    validate(p.validate, root / "raw", tmp_path / "val", tmp_path / "rep")
    preprocess(p.preprocess, root / "raw", tmp_path / "val" / "manifest.csv", tmp_path / "proc")
    split(p.split, p.seed, tmp_path / "proc", tmp_path / "split")
    df = read_manifest(tmp_path / "split")
    assert set(df["split"]) == {"train", "val", "test"}
    assert (df.groupby("scene")["split"].nunique() == 1).all()
    split(p.split, p.seed, tmp_path / "proc", tmp_path / "split2")
    assert read_manifest(tmp_path / "split2")["split"].tolist() == df["split"].tolist()


def test_assign_scenes_fractions_and_motorcycle_pair():
    from gir.config import SplitConfig

    scenes = [f"s{i}" for i in range(100)]
    m = assign_scenes(scenes, SplitConfig(), 0)
    counts = pd.Series(m).value_counts()
    assert counts["train"] == 80 and counts["val"] == 10 and counts["test"] == 10
    assert assign_scenes(scenes, SplitConfig(), 1) != m  # the seed matters


def test_sample_stereo_pair_is_one_scene(raw):
    from gir.data.sources.sample import SAMPLE_IMAGES

    assert SAMPLE_IMAGES["motorcycle_left"][1] == SAMPLE_IMAGES["motorcycle_right"][1]

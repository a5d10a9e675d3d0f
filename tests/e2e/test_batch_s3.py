"""Batch rectification over prefixes: `gir rectify s3://.../incoming/ -o s3://.../deblurred/`
on a real S3 endpoint (moto's server on loopback), and the same code between local folders.

The S3 run: 300 photos, 5 of them broken (empty, truncated, text, decompression bomb,
unsupported format) -> 295 PNGs + 295 JSONs mirroring the input paths, a report naming the 5
with their reasons, a ledger entry per input; a second run writes nothing (the destination
bucket is versioned, so any rewrite would show as a second version).
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from batchkit import (  # noqa: F401
    BROKEN,
    FAST,
    SIDE,
    Invert,
    broken,
    decodes,
    detector_file,
    get,
    keys,
    loader,
    photos,
    s3,
    tiny_model,
    upload,
    versioned_buckets,
)
from gir.errors import GirError
from tests.helpers import run_gir

SRC, DST = "gir-incoming", "gir-deblurred"


def test_prefix_of_300_with_5_broken_then_a_second_run_does_nothing(s3, tiny_model,
                                                                    detector_file, tmp_path):
    url, client = s3
    versioned_buckets(client, SRC, DST)
    good = photos(295)
    upload(client, SRC, "incoming/", {**good, **broken()})
    sources_before = {o["Key"]: o["ETag"] for o in client.list_objects_v2(
        Bucket=SRC, MaxKeys=1000)["Contents"]}
    assert len(sources_before) == 300
    env = {"GIR_DETECTOR": str(detector_file), **FAST}
    cmd = ["rectify", f"s3://{SRC}/incoming/", "-o", f"s3://{DST}/deblurred/", "--model",
           str(tiny_model), "--device", "cpu"]

    first = run_gir(*cmd, cwd=tmp_path, env=env, check=False)
    assert first.returncode == 1, first.stderr           # some inputs failed: say so
    assert "Traceback" not in first.stderr
    assert "295 written, 5 failed" in first.stderr, first.stderr
    failed_lines = [line for line in first.stderr.splitlines() if "failed s3://" in line]
    assert len(failed_lines) == 5

    out = [k for k in keys(client, DST, "deblurred/") if not k.startswith("_gir/")]
    assert out == sorted([f"{rel}.png" for rel in good] + [f"{rel}.json" for rel in good])
    actions = set()
    with ThreadPoolExecutor(8) as pool:
        pngs = dict(zip(good, pool.map(lambda r: get(client, DST, f"deblurred/{r}.png"), good)))
        jsons = dict(zip(good, pool.map(lambda r: get(client, DST, f"deblurred/{r}.json"),
                                        good)))
    for rel in good:
        png = pngs[rel]
        assert decodes(png)
        with Image.open(io.BytesIO(png)) as im:
            assert im.size == (SIDE, SIDE) and im.mode == "RGB"
        decisions = json.loads(jsons[rel])
        assert decisions["input"] == f"s3://{SRC}/incoming/{rel}"
        assert decisions["output"] == f"s3://{DST}/deblurred/{rel}.png"
        actions.add(decisions["action"].split()[0])
    assert actions == {"deblurred", "untouched"}        # both paths ran

    report = json.loads(get(client, DST, "deblurred/_gir/report.json"))
    assert report["counts"]["written"] == 295 and report["counts"]["failed"] == 5
    assert report["model"].startswith(str(tiny_model)) and "sha256:" in report["model"]
    reasons = {f["input"].removeprefix(f"s3://{SRC}/incoming/"): f["reason"]
               for f in report["failed"]}
    assert set(reasons) == set(BROKEN)
    for rel, expected in BROKEN.items():
        assert expected in reasons[rel], (rel, reasons[rel])
    ledger = keys(client, DST, "deblurred/_gir/ledger/")
    assert len(ledger) == 300
    with ThreadPoolExecutor(8) as pool:
        entries = [json.loads(b) for b in pool.map(
            lambda k: get(client, DST, f"deblurred/_gir/ledger/{k}"), ledger)]
    assert sum(e["status"] == "done" for e in entries) == 295
    assert all(len(e["sha256"]) == 64 for e in entries if e["status"] == "done")

    second = run_gir(*cmd, cwd=tmp_path, env=env)
    assert "0 written, 0 failed, 300 skipped" in second.stderr, second.stderr
    report = json.loads(get(client, DST, "deblurred/_gir/report.json"))
    assert report["counts"] == {"listed": 300, "written": 0, "failed": 0, "skipped": 300,
                                "pending": 0, "not_processed": 0}
    assert report["model"] is None                      # nothing to do: no model was loaded
    versions = client.get_paginator("list_object_versions").paginate(Bucket=DST)
    written = [v["Key"] for page in versions for v in page.get("Versions", [])
               if not v["Key"].endswith("report.json") and "/_gir/leases/" not in v["Key"]]
    assert len(written) == len(set(written)) == 2 * 295 + 300   # nothing written twice
    after = {o["Key"]: o["ETag"] for o in client.list_objects_v2(
        Bucket=SRC, MaxKeys=1000)["Contents"]}
    assert after == sources_before                      # inputs never modified




def test_folders_mirror_paths_and_redo_only_what_changed(tmp_path):
    from gir.data.imageio import encode_png
    from gir.rectifier.batch import run_batch

    src, dst = tmp_path / "in", tmp_path / "out"
    files = {**photos(6, seed=1), "deep/er/last.png": photos(1, seed=2)["set0/photo0000.png"],
             ".partial.png": b"half", "set0/.hidden/x.png": b"", "notes.txt": b"hello"}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    model = Invert()
    report = run_batch([str(src)], str(dst), "deblur", loader(model, "v1"))
    assert report["counts"]["written"] == 7 and model.calls == 7
    assert [f["input"] for f in report["failed"]] == [str(src / "notes.txt")]
    assert "unsupported format '.txt'" in report["failed"][0]["reason"]
    assert (dst / "deep/er/last.png.png").exists() and not (dst / ".partial.png.png").exists()
    assert not [p for p in dst.glob("**/*.json")         # deblur writes no decisions
                if "_gir" not in p.parts]
    first = read_image_of(dst / "deep/er/last.png.png")
    assert np.array_equal(first, 255 - read_image_of(src / "deep/er/last.png"))

    # Touched but unchanged: re-hashed, not redone. Changed: redone. New: done.
    (src / "set1/photo0001.png").touch()
    import os
    import time
    os.utime(src / "set1/photo0001.png", (time.time() + 5, time.time() + 5))
    (src / "set2/photo0002.png").write_bytes(encode_png(np.zeros((SIDE, SIDE, 3), np.uint8)))
    (src / "new.png").write_bytes(encode_png(np.full((SIDE, SIDE, 3), 9, np.uint8)))
    report = run_batch([str(src)], str(dst), "deblur", loader(model, "v1"))
    assert sorted(w["input"] for w in report["written"]) == [str(src / "new.png"),
                                                            str(src / "set2/photo0002.png")]
    assert model.calls == 9
    assert any("unchanged content" in s["reason"] for s in report["skipped"])
    assert json.loads((dst / "_gir/report.json").read_text())["counts"]["written"] == 2

    # Another model: nothing without reprocess; everything done (not the failure) with it.
    assert run_batch([str(src)], str(dst), "deblur", loader(model, "v2"))["counts"][
        "written"] == 0
    report = run_batch([str(src)], str(dst), "deblur", loader(model, "v2"), reprocess=True)
    assert report["counts"]["written"] == 8 and report["counts"]["failed"] == 0
    assert run_batch([str(src)], str(dst), "deblur", loader(model, "v2"),
                     reprocess=True)["counts"]["written"] == 0


def read_image_of(path):
    from gir.data.imageio import read_rgb

    return read_rgb(path)


def test_destination_inside_the_source_is_refused(tmp_path):
    from gir.rectifier.batch import run_batch

    (tmp_path / "in").mkdir()
    with pytest.raises(GirError, match="inside the source"):
        run_batch([str(tmp_path / "in")], str(tmp_path / "in/out"), "deblur",
                  loader(Invert(), "v1"))


def test_single_files_and_an_s3_destination(s3, tiny_model, detector_file, tmp_path):
    """Plain files with an s3:// destination mirror as their names and use the ledger."""
    url, client = s3
    client.create_bucket(Bucket="gir-files")
    for rel, data in photos(2, seed=5).items():
        (tmp_path / rel.split("/")[-1]).write_bytes(data)
    args = ["deblur", "photo0000.png", "photo0001.png", "-o", "s3://gir-files/out/",
            "--model", str(tiny_model)]
    proc = run_gir(*args, cwd=tmp_path, env=FAST)
    assert "2 written, 0 failed" in proc.stderr
    assert keys(client, "gir-files", "out/")[-2:] == ["photo0000.png.png", "photo0001.png.png"]
    assert "0 written, 0 failed, 2 skipped" in run_gir(*args, cwd=tmp_path, env=FAST).stderr


def test_bad_sources_fail_alone_and_a_missing_destination_bucket_is_one_line(s3, tmp_path):
    """A missing bucket, object or folder is one failure line; the good source still runs."""
    from gir.rectifier.batch import run_batch, watch

    url, client = s3
    client.create_bucket(Bucket="gir-mixed")
    upload(client, "gir-mixed", "in/", photos(2, seed=6))
    model = Invert()
    report = run_batch(["s3://gir-nope/in/", "s3://gir-mixed/in/missing.png",
                        str(tmp_path / "absent"), "s3://gir-mixed/in/"],
                       str(tmp_path / "out"), "deblur", loader(model, "v1"))
    reasons = {f["input"]: f["reason"] for f in report["failed"]}
    assert reasons == {"s3://gir-nope/in/": "no such bucket 'gir-nope'",
                       "s3://gir-mixed/in/missing.png": "no such object or prefix",
                       str(tmp_path / "absent"): "no such file or folder"}
    assert report["counts"]["written"] == 2 and model.calls == 2
    with pytest.raises(GirError, match="^destination s3://gir-nope/out/: no such bucket"):
        run_batch(["s3://gir-mixed/in/"], "s3://gir-nope/out/", "deblur", loader(model, "v1"))
    with pytest.raises(GirError, match="^cannot watch s3://gir-nope/in/: no such bucket"):
        watch(["s3://gir-nope/in/"], str(tmp_path / "w"), "deblur", loader(model, "v1"))
    proc = run_gir("rectify", "s3://gir-nope/in/", "-o", str(tmp_path / "cli"), cwd=tmp_path,
                   check=False, env=FAST)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "failed s3://gir-nope/in/: no such bucket 'gir-nope'" in proc.stderr


def test_bench_batch_reports_images_per_second(tiny_model, tmp_path):
    """`gir bench --batch SRC --batch-make N`: synthetic photos, then the timed batch."""
    proc = run_gir("bench", "--batch", str(tmp_path / "src"), "--batch-make", "4",
                   "--batch-megapixels", "0.01", "--batch-model", str(tiny_model),
                   "--batch-task", "deblur", "--out", str(tmp_path / "rep"), "--threads", "1",
                   cwd=tmp_path, env=FAST)
    result = json.loads((tmp_path / "rep/batch.json").read_text())
    assert result["images"] == 4 and result["failed"] == 0 and result["images_per_second"] > 0
    assert result["megapixels_per_second"] > 0 and result["torch_threads"] == 1
    assert "| deblur | 4 | 0 |" in proc.stdout
    photos_made = sorted(p.name for p in (tmp_path / "src/bench").iterdir())
    assert photos_made == [f"photo{i:04d}.jpg" for i in range(4)]
    with Image.open(tmp_path / "src/bench/photo0000.jpg") as im:
        assert abs(im.size[0] * im.size[1] - 10_000) < 300

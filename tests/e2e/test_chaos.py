"""Chaos and fuzz through the batch path, each bounded in time: an S3 endpoint (moto behind a
TCP proxy) that goes silent or cuts connections mid-batch; two watchers and the S3-event
endpoint sharing one prefix; and a table of awkward image sizes and formats."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from batchkit import TINY_NAFNET, ChaosProxy, Invert, decodes, keys, loader, photos, s3, upload  # noqa: F401


def save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def noise(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed + h * 1000 + w)
    return Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))


def fuzz_table() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, expected): "W x H MODE" for an output, else a piece of the reason."""
    exif = Image.Exif()
    exif[0x0112] = 6                                   # rotate 90: 48x32 stored, 32x48 shown
    frames = [noise(32, 40, s) for s in range(3)]
    too_small = "too small: {} px (photos need at least 16 px on each side)"
    table = {f"size_{w}x{h}.png": (save(noise(h, w), "PNG"), too_small.format(f"{w}x{h}"))
             for w, h in [(1, 1), (64, 1), (1, 64), (2, 2), (300, 3), (40, 15)]}
    table |= {
        "size_16x16.png": (save(noise(16, 16), "PNG"), "16x16 RGB"),
        "size_17x33.png": (save(noise(33, 17), "PNG"), "17x33 RGB"),
        "thin.tif": (save(noise(1, 20), "TIFF"), too_small.format("20x1")),
        "grey16.png": (save(Image.fromarray(
            (np.random.default_rng(1).random((32, 40)) * 65535).astype(np.uint16)), "PNG"),
            "40x32 L"),
        "cmyk.jpg": (save(noise(32, 40).convert("CMYK"), "JPEG"), "40x32 RGB"),
        "palette.png": (save(noise(32, 40).convert("P"), "PNG"), "40x32 RGB"),
        "rgba.png": (save(noise(32, 40).convert("RGBA"), "PNG"), "40x32 RGBA"),
        "animated.webp": (save(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
                          "40x32 RGB"),
        "animated.png": (save(frames[0], "PNG", save_all=True, append_images=frames[1:]),
                         "40x32 RGB"),
        "exif_rotated.jpg": (save(noise(32, 48), "JPEG", exif=exif.tobytes()), "32x48 RGB"),
        "truncated.jpg": (save(noise(64, 64), "JPEG")[:300], "truncated"),
        "animated.gif": (save(frames[0], "GIF", save_all=True, append_images=frames[1:]),
                         "unsupported format '.gif'"),
    }
    return table


@pytest.mark.parametrize("model", ["invert", "tiny-nafnet"])
def test_fuzz_sizes_and_formats_through_the_batch(tmp_path, model):
    """Every awkward input is its own outcome: written in the right size and mode, or failed
    with its reason; nothing stops the batch, and a second run redoes nothing."""
    from gir.rectifier.batch import run_batch

    table = fuzz_table()
    for name, (data, _) in table.items():
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(data)
    if model == "invert":
        deblurrer = Invert()
    else:
        import torch

        from gir.nn import build_generator
        from gir.rectifier.inference import Deblurrer

        torch.manual_seed(0)
        deblurrer = Deblurrer(build_generator("nafnet", TINY_NAFNET), "cpu", progress=False)
    start = time.monotonic()
    report = run_batch([str(tmp_path / "in")], str(tmp_path / "out"), "deblur",
                       loader(deblurrer, model))
    assert time.monotonic() - start < 30
    got = {}
    for row in report["written"]:
        with Image.open(row["outputs"][0]) as im:
            got[Path(row["input"]).name] = f"{im.size[0]}x{im.size[1]} {im.mode}"
    got |= {Path(row["input"]).name: row["reason"] for row in report["failed"]}
    assert set(got) == set(table)
    for name, (_, expected) in table.items():
        assert expected in got[name], (name, got[name])
    again = run_batch([str(tmp_path / "in")], str(tmp_path / "out"), "deblur",
                      loader(deblurrer, model))
    assert again["counts"]["written"] == 0 and again["counts"]["skipped"] == len(table)


def chaos_batch(s3, tmp_path, proxy, bucket: str, mode: str, **options) -> tuple:
    """12 photos on S3 through the proxy, which switches to `mode` at the 3rd photo: the
    report and the seconds the batch took."""
    from gir.data.storage import Timeouts, set_timeouts
    from gir.rectifier.batch import run_batch

    url, client = s3
    client.create_bucket(Bucket=bucket)
    upload(client, bucket, "in/", photos(12, seed=11))
    set_timeouts(Timeouts(connect_s=1, read_s=2, attempts=1))
    model = Invert(delay=0.1, on_call=lambda n: n == 3 and proxy.set(mode))
    try:
        start = time.monotonic()
        report = run_batch([f"s3://{bucket}/in/"], f"s3://{bucket}/out/", "deblur",
                           loader(model, "v1"), workers=2, fallback_dir=str(tmp_path),
                           **options)
        return report, time.monotonic() - start
    finally:
        set_timeouts(Timeouts())


def check_honest_report(report: dict, tmp_path) -> None:
    """Every photo is accounted for, the ones not done are named, and the report, which the
    endpoint could not take, is kept locally."""
    names = {r["input"] for r in report["written"] + report["failed"]}
    names |= set(report["not_processed"])
    assert len(names) == 12
    assert report["not_processed"], report
    assert report["report"] and Path(report["report"]).parent == tmp_path
    saved = json.loads(Path(report["report"]).read_text())
    assert saved["not_processed"] == report["not_processed"]


def test_a_silent_endpoint_mid_batch_ends_by_the_deadline(s3, tmp_path, monkeypatch):
    proxy = ChaosProxy(s3[0])
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    report, seconds = chaos_batch(s3, tmp_path, proxy, "gir-chaos-silent", "silent",
                                  deadline_s=6, storage_errors_to_stop=99)
    proxy.close()
    assert seconds < 6 + 5 + 2, seconds       # the deadline, the report's grace, slack
    assert report["stopped"].startswith("deadline of 6 s"), report["stopped"]
    check_honest_report(report, tmp_path)


def test_a_cut_endpoint_stops_after_a_few_errors_then_a_rerun_does_the_rest(s3, tmp_path,
                                                                           monkeypatch):
    bucket = "gir-chaos-cut"
    client = s3[1]
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    from gir.data.storage import Location
    from gir.rectifier.ledger import Leases

    proxy = ChaosProxy(s3[0])
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    leases = Leases(Location(f"s3://{bucket}/out/"), 600)   # the same worker resumes
    report, seconds = chaos_batch(s3, tmp_path, proxy, bucket, "cut", leases=leases)
    assert seconds < 20, seconds
    assert "storage errors in a row" in report["stopped"], report["stopped"]
    check_honest_report(report, tmp_path)
    proxy.set("pass")
    from gir.rectifier.batch import run_batch

    again = run_batch([f"s3://{bucket}/in/"], f"s3://{bucket}/out/", "deblur",
                      loader(Invert(), "v1"), leases=leases)
    proxy.close()
    assert not again["failed"] and not again["not_processed"]
    outputs = [k for k in keys(client, bucket, "out/") if k.endswith(".png.png")]
    assert len(outputs) == 12
    versions = count_versions(client, bucket, "out/")
    assert sum(versions.values()) - len(versions) <= 2, versions   # at most the in-flight


def count_versions(client, bucket: str, prefix: str) -> dict[str, int]:
    """Versions of every output PNG under prefix: each extra version is a duplicate write."""
    out: dict[str, int] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket,
                                                                      Prefix=prefix):
        for v in page.get("Versions", []):
            if v["Key"].endswith(".png.png"):
                out[v["Key"]] = out.get(v["Key"], 0) + 1
    return out


def test_two_watchers_and_the_event_endpoint_share_one_prefix(s3, tmp_path):
    """40 photos arriving over ~4 s; two watchers and the event endpoint (each told of every
    upload) work on one prefix: every photo done, each output written once (at most 2
    duplicates), counted from the versioned bucket."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from gir.rectifier.batch import BatchOptions, ModelSlot, watch
    from gir.serving.events import EventsConfig, events_router

    url, client = s3
    src, dst = "gir-share-in", "gir-share-out"
    for bucket in (src, dst):
        client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=dst, VersioningConfiguration={"Status": "Enabled"})
    source, dest = f"s3://{src}/incoming/", f"s3://{dst}/out/"
    stop = threading.Event()
    models = [Invert() for _ in range(3)]
    watchers = [threading.Thread(target=watch, args=([source], dest, "deblur",
                                                     loader(m, "v1")),
                                 kwargs={"interval": 0.2, "batch_size": 4,
                                         "options": BatchOptions(stop=stop, workers=2),
                                         "log": lambda line: None}, daemon=True)
                for m in models[:2]]
    app = FastAPI()
    app.include_router(events_router(EventsConfig(source, dest, "deblur", "tok"),
                                     ModelSlot(loader(models[2], "v1")), lambda: None))
    for w in watchers:
        w.start()
    import queue

    good = {f"set{i % 5}/p{i:02d}.png": save(noise(24, 24, i), "PNG") for i in range(40)}
    events, answers = queue.Queue(), []

    def deliver(http):   # as a store does: notifications posted apart from the uploads
        while (rel := events.get()) is not None:
            answers.append(http.post(
                "/api/events/s3", headers={"Authorization": "Bearer tok"},
                json={"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {
                    "bucket": {"name": src}, "object": {"key": f"incoming/{rel}"}}}]}))
    with TestClient(app) as http:
        poster = threading.Thread(target=deliver, args=(http,), daemon=True)
        poster.start()
        for rel, data in good.items():        # 40 arrivals over about 4 s
            client.put_object(Bucket=src, Key=f"incoming/{rel}", Body=data)
            events.put(rel)
            time.sleep(0.1)
        end = time.monotonic() + 20
        while len(keys(client, dst, "out/_gir/ledger/")) < 40 and time.monotonic() < end:
            time.sleep(0.2)
        stop.set()
        events.put(None)
        poster.join(20)
    assert answers and all(a.status_code == 200 for a in answers), answers[-1].text
    for w in watchers:
        w.join(30)
    versions = count_versions(client, dst, "out/")
    assert len(versions) == 40, len(versions)
    assert sum(versions.values()) - 40 <= 2, {k: v for k, v in versions.items() if v > 1}
    assert all(m.calls > 0 for m in models[:2]) or models[2].calls > 0
    assert sum(m.calls for m in models) <= 42
    assert not keys(client, dst, "out/_gir/leases/")          # every claim given back

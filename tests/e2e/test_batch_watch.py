"""`gir watch` on a real S3 endpoint (moto's server on loopback), killed with SIGKILL mid-backlog
three times at different points, then restarted and stopped with SIGTERM.

At the end every good input has exactly one PNG and one JSON, each decodes, the ledger has one
entry per input with the right counts, and only the few inputs in flight at a kill were done
again (the destination bucket is versioned, so every rewrite shows as a second version).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from batchkit import (  # noqa: F401
    FAST,
    broken,
    decodes,
    detector_file,
    get,
    keys,
    photos,
    s3,
    tiny_model,
    upload,
    versioned_buckets,
)

SRC, DST = "gir-watch-in", "gir-watch-out"
GOOD, KILL_AT = 60, (8, 24, 44)    # ledger entries seen before each kill -9


def start_watch(args: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gir", "watch", *args], stderr=log,
                            stdout=log, env={**os.environ, **env})


def ledger_count(client) -> int:
    return len(keys(client, DST, "out/_gir/ledger/"))


def wait_for(proc, client, count: int, timeout: float = 120) -> int:
    """Poll until the ledger has at least count entries; the count seen."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        seen = ledger_count(client)
        if seen >= count:
            return seen
        assert proc.poll() is None, "the watcher exited early"
        time.sleep(0.05)
    raise AssertionError(f"the ledger did not reach {count} entries")


def test_kill_9_three_times_mid_backlog_then_everything_exactly_once(s3, tiny_model,
                                                                   detector_file, tmp_path):
    url, client = s3
    versioned_buckets(client, SRC, DST)
    good = photos(GOOD, seed=3)
    bad = broken()
    upload(client, SRC, "incoming/", {**good, **bad})
    total = GOOD + len(bad)
    env = {"GIR_DETECTOR": str(detector_file), **FAST}
    args = [f"s3://{SRC}/incoming/", "-o", f"s3://{DST}/out/", "--model", str(tiny_model),
            "--device", "cpu", "--batch-size", "4", "--interval", "0.2",
            "--lease-seconds", "3"]     # a killed watcher's claims are taken over after 3 s

    kills = []
    with open(tmp_path / "watch.log", "w") as log:
        for at in KILL_AT:
            proc = start_watch(args, env, log)
            # Kill only after this watcher made progress of its own: each kill point is new.
            seen = wait_for(proc, client, max(at, (kills[-1] if kills else 0) + 3))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            assert proc.returncode == -signal.SIGKILL
            kills.append(seen)
            assert seen < total, "the backlog was done before the kill"
        proc = start_watch(args, env, log)
        wait_for(proc, client, total)
        time.sleep(0.5)   # it has nothing left: it should be waiting for new arrivals
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    text = (tmp_path / "watch.log").read_text()
    assert "Traceback" not in text
    assert "watch: stopped" in text
    assert len(set(kills)) == 3, kills        # three different kill points

    out = [k for k in keys(client, DST, "out/") if not k.startswith("_gir/")]
    assert out == sorted([f"{r}.png" for r in good] + [f"{r}.json" for r in good])
    for rel in good:
        assert decodes(get(client, DST, f"out/{rel}.png")), rel
        assert json.loads(get(client, DST, f"out/{rel}.json"))["input"].endswith(rel)
    entries = [json.loads(get(client, DST, f"out/_gir/ledger/{k}"))
               for k in keys(client, DST, "out/_gir/ledger/")]
    assert len(entries) == total
    assert sum(e["status"] == "done" for e in entries) == GOOD
    assert sum(e["status"] == "failed" for e in entries) == len(bad)
    assert sorted(e["input"] for e in entries) == sorted([*good, *bad])

    # Nothing is done twice but what was in flight at a kill (outputs written, entry not yet).
    versions = [v["Key"] for page in client.get_paginator("list_object_versions").paginate(
        Bucket=DST, Prefix="out/") for v in page.get("Versions", [])
        if v["Key"].endswith(".png")]
    redone = len(versions) - GOOD
    print(f"kill -9 after {kills} ledger entries; {redone} inputs redone")
    assert 0 <= redone <= 3 * 12, redone


def test_poison_pills_are_tried_once_per_model_version_and_the_rest_is_done(tmp_path):
    """A folder with 5 good photos, a 64x1 and a 1x1 PNG, a photo that crashes the model, a
    symlink loop, a dangling link and a FIFO: the watcher writes the 5, fails each bad entry
    with its reason (said once), and does not retry them on every poll; a new model version
    retries the crash (it may fix it), never the images no model can use."""
    import threading

    import numpy as np

    from batchkit import Invert, loader
    from gir.data.imageio import encode_png
    from gir.rectifier.batch import watch

    src = tmp_path / "in"
    src.mkdir()
    for i, (rel, data) in enumerate(photos(5, seed=8).items()):
        (src / f"good{i}.png").write_bytes(data)
    (src / "wide.png").write_bytes(encode_png(np.zeros((1, 64, 3), np.uint8)))
    (src / "dot.png").write_bytes(encode_png(np.zeros((1, 1, 3), np.uint8)))
    (src / "crash.png").write_bytes(encode_png(np.full((20, 20, 3), 7, np.uint8)))
    os.symlink("b.png", src / "a.png")
    os.symlink("a.png", src / "b.png")
    os.symlink("nowhere.png", src / "dangling.png")
    os.mkfifo(src / "pipe.jpg")

    def crash_on_20px(model):
        def call(rgb):
            if rgb.shape[:2] == (20, 20):
                raise ValueError("could not broadcast input array from shape (0,1)")
            return model(rgb)
        return call

    def run(version: str, seconds: float) -> tuple[Invert, list[str]]:
        model, lines, stop = Invert(), [], threading.Event()
        thread = threading.Thread(target=watch, args=([str(src)], str(tmp_path / "out"),
                                                      "deblur", loader(crash_on_20px(model),
                                                                       version)),
                                  kwargs={"interval": 0.05, "stop": stop, "log": lines.append})
        thread.start()
        time.sleep(seconds)
        stop.set()
        thread.join(30)
        assert not thread.is_alive()
        return model, lines

    model, lines = run("v1", 3)
    assert model.calls == 5
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        f"good{i}.png.png" for i in range(5)]
    failed = [line for line in lines if line.startswith("watch: failed")]
    assert sorted(line.split(str(src) + "/")[1] for line in failed) == [
        "a.png: symlink loop", "b.png: symlink loop",
        "crash.png: ValueError: could not broadcast input array from shape (0,1)",
        "dangling.png: dangling symlink (to nowhere.png)",
        "dot.png: too small: 1x1 px (photos need at least 16 px on each side)",
        "wide.png: too small: 64x1 px (photos need at least 16 px on each side)"]
    assert sum("batch failed" in line for line in lines) == 0
    ledger = json.loads((tmp_path / "out/_gir/report.json").read_text()) if (
        tmp_path / "out/_gir/report.json").exists() else None
    assert ledger is None or "Traceback" not in json.dumps(ledger)
    model, lines = run("v1", 1)                    # same model: nothing is tried again
    assert model.calls == 0 and not [x for x in lines if "crash.png" in x]
    model, lines = run("v2", 1.5)                  # another model: the crash only, once
    assert model.calls == 0
    assert [x.split("/")[-1] for x in lines if "failed" in x and "crash" in x] == [
        "crash.png: ValueError: could not broadcast input array from shape (0,1)"]

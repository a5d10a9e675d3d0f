"""Shared parts of the batch tests: a moto S3 server on loopback, small photos (some blurred),
the five kinds of broken input, a tiny untrained generator, and a saved detector.

The server's URL goes into AWS_ENDPOINT_URL (with dummy credentials), so the code under test,
in this process or in a `gir` subprocess, reaches nothing but 127.0.0.1.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import moto_s3

SIDE = 48
# For `gir` subprocesses: one torch thread. On a shared, busy machine two OpenMP threads spin
# against each other and make a 48x48 photo 30x slower; one thread is what a batch test needs.
FAST = {"OMP_NUM_THREADS": "1"}
TINY_NAFNET = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]}
BROKEN = {   # name -> what the report must say about it
    "broken/empty.png": "empty file",
    "broken/truncated.png": "truncated",
    "broken/notes.jpg": "not an image",
    "broken/bomb.png": "decompression bomb",
    "broken/clip.gif": "unsupported format",
}


@pytest.fixture(scope="module")
def s3():
    """(endpoint URL, boto3 client) of a fresh moto S3 server; AWS env set for the module."""
    with moto_s3() as server:
        yield server


def photos(n: int, seed: int = 0) -> dict[str, bytes]:
    """n small PNG crops of the sample photos, a third of them motion-blurred, by rel path."""
    from gir.data.blur import degrade, random_blur
    from gir.data.imageio import encode_png
    from gir.data.sources.sample import load_sample_image

    rng = np.random.default_rng(seed)
    sources = [load_sample_image(name) for name in ("astronaut", "coffee", "chelsea", "rocket")]
    out = {}
    for i in range(n):
        img = sources[i % len(sources)]
        y, x = rng.integers(0, img.shape[0] - SIDE), rng.integers(0, img.shape[1] - SIDE)
        crop = img[y:y + SIDE, x:x + SIDE]
        if i % 3 == 0:
            crop = degrade(crop, random_blur("motion", rng, motion_length=(9, 11)), rng)
        out[f"set{i % 7}/photo{i:04d}.png"] = encode_png(crop)
    return out


def broken() -> dict[str, bytes]:
    """The five broken inputs: empty, truncated, text, decompression bomb, unsupported format."""
    good = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(good, format="PNG")
    gif = io.BytesIO()
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(gif, format="GIF")
    return {"broken/empty.png": b"", "broken/truncated.png": good.getvalue()[:60],
            "broken/notes.jpg": b"this is a shopping list, not a photo\n",
            "broken/bomb.png": png_claiming(30_000, 30_000), "broken/clip.gif": gif.getvalue()}


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a huge image with almost no data: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def upload(client, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=bucket, Key=f"{prefix}{kv[0]}",
                                                   Body=kv[1]), files.items()))


def keys(client, bucket: str, prefix: str) -> list[str]:
    """Every key under prefix (paginated), relative to it."""
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"][len(prefix):] for o in page.get("Contents", [])]
    return sorted(out)


def get(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained tiny NAFNet on disk: the real model path, milliseconds per photo."""
    import torch

    from gir.nn import build_generator
    from gir.rectifier.inference import save_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model")
    save_generator(path, build_generator("nafnet", TINY_NAFNET), "nafnet", TINY_NAFNET)
    return path


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory) -> Path:
    """The default detector saved to a file (subprocesses get it via GIR_DETECTOR)."""
    from gir.rectifier.detect import save_detector
    from gir.tracking.resolve import resolve_detector

    path = tmp_path_factory.mktemp("detector") / "detector.json"
    save_detector(resolve_detector(), path)
    return path


def decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        return True
    except Exception:  # noqa: BLE001
        return False


class Invert:
    """The recognisable stand-in model of the batch tests: 255 - rgb, each call counted (and,
    with `delay`, slow enough for a test to act mid-batch)."""

    def __init__(self, delay: float = 0.0, on_call=None):
        self.calls, self.delay, self.on_call = 0, delay, on_call

    def __call__(self, rgb):
        import time

        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        if self.delay:
            time.sleep(self.delay)
        return 255 - rgb


def loader(model, version: str):
    """A model loader for run_batch/watch: (model, version)."""
    return lambda: (model, version)


class ChaosProxy:
    """A TCP proxy on loopback in front of a server (moto's), for chaos tests: mode "pass"
    forwards, "cut" drops every connection and refuses new ones, "silent" accepts and reads
    but never answers (an endpoint that hangs)."""

    def __init__(self, target: str):
        import socket
        import threading
        from urllib.parse import urlsplit

        u = urlsplit(target)
        self.target = (u.hostname, u.port)
        self.mode = "pass"
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode: str) -> None:
        self.mode = mode
        if mode == "cut":
            with self.lock:
                for c in self.conns:
                    _close(c)
                self.conns.clear()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "cut":
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst) -> None:
        import time

        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            while self.mode == "silent":      # swallow: the peer waits for ever
                time.sleep(0.05)
            if self.mode == "cut":
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        _close(src)
        _close(dst)

    def close(self) -> None:
        self.set("cut")
        _close(self.sock)


def _close(sock) -> None:
    import socket

    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def versioned_buckets(client, src: str, dst: str) -> None:
    """A source bucket and a versioned destination bucket: outputs written twice show as two
    versions of one key, so a test can count duplicates."""
    client.create_bucket(Bucket=src)
    client.create_bucket(Bucket=dst)
    client.put_bucket_versioning(Bucket=dst, VersioningConfiguration={"Status": "Enabled"})

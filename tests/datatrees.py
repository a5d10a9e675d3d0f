"""Builders of small on-disk data trees for the source and gate tests, and a fake Unsplash API.

Every odd file a user might bring is made here from the photos shipped inside scikit-image,
so the tests need no downloads and know exactly what each file is.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from gir.data.sources.sample import load_sample_image
from gir.data.sources.synthetic import cap_size

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "retina", "hubble_deep_field",
          "motorcycle_left", "immunohistochemistry"]


def photo(name: str, side: int = 96, shift: int = 0) -> np.ndarray:
    """A side x side RGB crop of a shipped photo (shift moves the crop: a nearby frame)."""
    img = cap_size(load_sample_image(name), 160)
    y = (img.shape[0] - side) // 2
    x = (img.shape[1] - side) // 2 + shift
    return np.ascontiguousarray(img[y:y + side, x:x + side])


def blurred(rgb: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return np.clip(ndimage.gaussian_filter(rgb.astype(float), (sigma, sigma, 0)), 0, 255) \
        .round().astype(np.uint8)


def near_copy(rgb: np.ndarray) -> np.ndarray:
    """The same photo, slightly brighter and re-quantised: a near-duplicate, not an exact one."""
    return np.clip(rgb.astype(int) + 4, 0, 255).astype(np.uint8)


def save(path: Path, arr_or_img, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img)
    img.save(path, **kw)
    return path


def jpeg_bytes(rgb: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92, **kw)
    return buf.getvalue()


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root: compare before/after to prove nothing was modified."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- folder tree

# file -> what the gate must say (a reason substring) or None when it must pass.
FOLDER_EXPECT = {
    "good/astronaut.png": None,
    "good/nested/deeper/coffee.jpg": None,
    "good/chelsea.webp": None,
    "good/rocket.tiff": None,
    "odd/grey.png": None,
    "odd/rgba.png": None,
    "odd/cmyk.jpg": None,
    "odd/sixteen_bit.png": None,
    "odd/exif_rotated.jpg": None,
    "odd/near_dup_of_astronaut.jpg": None,     # passes, merged into astronaut's scene
    "bad/empty.jpg": "empty file",
    "bad/truncated.jpg": "truncated",
    "bad/text.png": "not an image",
    "bad/bomb.png": "decompression bomb",
    "odd/copy_of_coffee.jpg": "exact duplicate",  # the first path in sorted order is kept
}


def make_folder_tree(root: Path) -> Path:
    """Sharp photos in every format and state a user's folder may hold (see FOLDER_EXPECT)."""
    save(root / "good/astronaut.png", photo("astronaut"))
    coffee = jpeg_bytes(photo("coffee"))
    (root / "good/nested/deeper").mkdir(parents=True)
    (root / "good/nested/deeper/coffee.jpg").write_bytes(coffee)
    save(root / "good/chelsea.webp", photo("chelsea"), quality=95)
    save(root / "good/rocket.tiff", photo("rocket"))
    save(root / "odd/grey.png", Image.fromarray(photo("retina")).convert("L"))
    rgba = np.dstack([photo("hubble_deep_field"), np.full((96, 96), 200, np.uint8)])
    save(root / "odd/rgba.png", rgba)
    save(root / "odd/cmyk.jpg", Image.fromarray(photo("motorcycle_left")).convert("CMYK"),
         quality=92)
    grey16 = (np.asarray(Image.fromarray(photo("immunohistochemistry")).convert("L"),
                         dtype=np.uint16) * 257)
    save(root / "odd/sixteen_bit.png", Image.fromarray(grey16))
    wide = cap_size(load_sample_image("astronaut"), 160)[20:100, 10:130]  # 80 x 120, landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    save(root / "odd/exif_rotated.jpg", Image.fromarray(np.ascontiguousarray(wide)),
         exif=exif.tobytes(), quality=92)
    (root / "odd/near_dup_of_astronaut.jpg").write_bytes(jpeg_bytes(near_copy(photo("astronaut"))))
    (root / "bad").mkdir()
    (root / "bad/empty.jpg").write_bytes(b"")
    (root / "bad/truncated.jpg").write_bytes(coffee[: len(coffee) // 2])
    (root / "bad/text.png").write_text("this is a text file, not a picture\n")
    save(root / "bad/bomb.png", Image.new("1", (10_000, 8_000)))  # 80 Mpx in a few KB
    (root / "odd/copy_of_coffee.jpg").write_bytes(coffee)
    (root / ".hidden").mkdir()
    (root / ".hidden/ignored.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image suffix: ignored\n")
    return root


# ----------------------------------------------------------------------------- GoPro tree


def make_gopro_tree(root: Path, variant: str = "blur") -> Path:
    """A tiny GOPRO_Large: 3 sequences, official train/test, plus every pairing mistake.

    Returns root. GOPRO_EXPECT lists the pair ids and what the gate must say about them.
    """
    def frame(split: str, seq: str, name: str, sharp: np.ndarray | None,
              blur: np.ndarray | None) -> None:
        base = root / split / seq
        if sharp is not None:
            save(base / "sharp" / name, sharp)
        if blur is not None:
            save(base / variant / name, blur)
            save(base / ("blur_gamma" if variant == "blur" else "blur") / name, blur)

    for i, shift in enumerate((0, 4, 8)):
        frame("train", "GOPR0001_00_00", f"{i:06d}.png", photo("astronaut", shift=shift),
              blurred(photo("astronaut", shift=shift)))
        frame("train", "GOPR0002_00_00", f"{i:06d}.png", photo("coffee", shift=shift),
              blurred(photo("coffee", shift=shift)))
        frame("test", "GOPR0003_00_00", f"{i:06d}.png", photo("chelsea", shift=shift),
              blurred(photo("chelsea", shift=shift)))
    for seq, name in (("GOPR0001_00_00", "000003.png"), ("GOPR0003_00_00", "000003.png")):
        frame("train" if seq.endswith("1_00_00") else "test", seq, name,
              photo("rocket" if seq.endswith("1_00_00") else "retina", shift=12), None)
    # A mistake in each of the remaining frames.
    frame("train", "GOPR0002_00_00", "000004.png", None, blurred(photo("coffee", shift=16)))
    frame("train", "GOPR0002_00_00", "000005.png", photo("hubble_deep_field"),
          blurred(photo("hubble_deep_field"))[:80])
    frame("train", "GOPR0002_00_00", "000006.png", photo("motorcycle_left"),
          photo("motorcycle_left"))  # "blurred" frame as sharp as its twin
    src = root / "train/GOPR0001_00_00"
    for sub in ("sharp", variant):
        dest = root / "train/GOPR0002_00_00" / sub / "000007.png"
        shutil.copyfile(src / sub / "000000.png", dest)
    leak = near_copy(photo("chelsea", shift=8))
    frame("train", "GOPR0001_00_00", "000008.png", leak, blurred(leak))
    return root


GOPRO_EXPECT = {
    "train-GOPR0001_00_00-000000": None,
    "train-GOPR0001_00_00-000001": None,
    "train-GOPR0001_00_00-000002": None,
    "train-GOPR0002_00_00-000000": None,
    "train-GOPR0002_00_00-000001": None,
    "train-GOPR0002_00_00-000002": None,
    "test-GOPR0003_00_00-000000": None,
    "test-GOPR0003_00_00-000001": None,
    "test-GOPR0003_00_00-000002": None,
    "train-GOPR0001_00_00-000003": "blurred image missing",
    "test-GOPR0003_00_00-000003": "blurred image missing",
    "train-GOPR0002_00_00-000004": "sharp image missing",
    "train-GOPR0002_00_00-000005": "sizes differ",
    "train-GOPR0002_00_00-000006": "not less sharp",
    "train-GOPR0002_00_00-000007": "exact duplicate",
    "train-GOPR0001_00_00-000008": "near-duplicate of a photo in another split",
}


# ----------------------------------------------------------------------------- pipeline


def run_pipeline(params, root: Path) -> dict:
    """ingest -> validate -> preprocess -> split -> train -> evaluate -> register in root.

    The same step functions dvc.yaml's stages call; MLflow goes wherever
    MLFLOW_TRACKING_URI points (the tests' mlflow_uri fixture). Returns the registration.
    """
    import os

    from gir.steps.evaluate import evaluate
    from gir.steps.ingest import ingest
    from gir.steps.preprocess import preprocess
    from gir.steps.register import register
    from gir.steps.split import split
    from gir.steps.train import train
    from gir.steps.validate import validate

    cwd = os.getcwd()
    os.chdir(root)
    try:
        ingest(params, "data/raw")
        validate(params.validate, "data/raw", "data/validated", "reports/quality", params.mlflow)
        preprocess(params.preprocess, "data/raw", "data/validated/manifest.csv", "data/processed")
        split(params.split, params.seed, "data/processed", "data/split")
        train(params, "data/processed", "data/split/manifest.csv", "models", "reports/train",
              "checkpoints", engine="test")
        evaluate(params.evaluate, params.mlflow, "data/processed", "data/split/manifest.csv",
                 "models", "reports/metrics.json", "reports/eval_per_image.csv")
        return register(params, "data/processed", "data/split/manifest.csv", "models",
                        "reports/metrics.json", "reports/registration.json")
    finally:
        os.chdir(cwd)


KEY = "test-key-SECRET-0123"


class FakeUnsplash:
    """State of the fake API: photos, hourly quota, and a log of what was asked."""

    def __init__(self, n_photos: int = 7, quota: int = 1000, report_remaining: bool = True):
        self.n, self.quota, self.left = n_photos, quota, quota
        self.report_remaining = report_remaining
        self.log: list[tuple[str, str]] = []  # (path, Authorization header)
        self.tracked: list[str] = []
        self.forbidden = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hour_passes(self) -> None:
        self.left = self.quota

    def photo_json(self, i: int) -> dict:
        pid = f"ph{i}"
        return {"id": pid,
                "urls": {s: f"{self.url}/img/{pid}.jpg" for s in ("regular", "small", "full")},
                "links": {"html": f"https://unsplash.com/photos/{pid}",
                          "download_location": f"{self.url}/photos/{pid}/download?ixid=t"},
                "user": {"name": f"Author {i}", "username": f"a{i}",
                         "links": {"html": f"https://unsplash.com/@a{i}"}}}

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: bytes, ctype="application/json", headers=None):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                api.log.append((url.path, auth))
                if url.path.startswith("/img/"):
                    i = int(url.path.split("/img/ph")[1].split(".")[0])
                    return self._send(200, jpeg_bytes(photo(PHOTOS[i % len(PHOTOS)], shift=i)),
                                      "image/jpeg")
                if auth != f"Client-ID {KEY}":
                    return self._send(401, b'{"errors":["OAuth error: invalid token"]}')
                if api.left <= 0:
                    api.forbidden += 1
                    return self._send(403, b"Rate Limit Exceeded", "text/plain",
                                      {"X-Ratelimit-Limit": str(api.quota),
                                       "X-Ratelimit-Remaining": "0"})
                api.left -= 1
                headers = {"X-Ratelimit-Limit": str(api.quota)}
                if api.report_remaining:
                    headers["X-Ratelimit-Remaining"] = str(api.left)
                if url.path == "/search/photos":
                    q = urllib.parse.parse_qs(url.query)
                    page, per = int(q["page"][0]), int(q["per_page"][0])
                    ids = range((page - 1) * per, min(page * per, api.n))
                    body = {"total": api.n, "total_pages": -(-api.n // per),
                            "results": [api.photo_json(i) for i in ids]}
                    return self._send(200, json.dumps(body).encode(), headers=headers)
                if url.path.endswith("/download"):
                    pid = url.path.split("/")[2]
                    api.tracked.append(pid)
                    return self._send(200, json.dumps({"url": f"{api.url}/img/{pid}.jpg"}).encode(),
                                      headers=headers)
                return self._send(404, b"{}")

        return Handler

"""The web page: API limits with TestClient, then the real thing in headless Chromium.

The browser test starts `gir serve` (a real uvicorn) on a free loopback port with the model
shipped in gir, uploads a motion-blurred photo through the page, checks the verdict, the
comparison slider and the blur map, and downloads the result.
"""

from __future__ import annotations

import base64
import io
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gir.data.blur import degrade, random_blur
from gir.data.imageio import decode_image, encode_png, read_image
from gir.data.sources.sample import load_sample_image
from tests.helpers import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def blurred_photo() -> np.ndarray:
    rng = np.random.default_rng(11)
    sharp = load_sample_image("motorcycle_left")[100:356, 200:456]
    return degrade(sharp, random_blur("motion", rng, motion_length=(15, 17)), rng)


class Brighten:
    """A stand-in deblurrer whose answer shows how many self-ensemble views it ran."""

    ensemble = 1

    def __call__(self, rgb):
        return np.clip(rgb.astype(int) + 3 * self.ensemble, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from gir.serving.webapp import Limits, create_app

    app = create_app(limits=Limits(max_bytes=300_000, max_pixels=200_000), deblurrer=Brighten())
    return TestClient(app)


def test_api_rectifies_a_blurred_upload(client):
    png = encode_png(blurred_photo())
    r = client.post("/api/rectify", files={"file": ("../../etc/evil name.png", png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["blurred"] and body["blur_type"] == "motion" and body["blur_type_note"] == ""
    assert body["action"] == f"deblurred (motion blur, confidence {body['confidence']:.2f})"
    assert "textured tiles look blurred" in body["reason"]
    assert body["download_name"] == "evil_name-rectified.png"
    result = client.get(body["urls"]["result"])
    assert result.headers["content-type"] == "image/png"
    assert decode_image(result.content)[0].shape == (256, 256, 3)


def test_api_runs_the_self_ensemble_a_request_asks_for(client):
    photo = blurred_photo()
    expect = np.clip(photo.astype(int) + 3 * 8, 0, 255)
    body = client.post("/api/rectify", files={"file": ("a.png", encode_png(photo))},
                       data={"ensemble": "8"}).json()
    assert body["action"].endswith(", 8-view self-ensemble)") and body["ensemble"] == 8
    result = decode_image(client.get(body["urls"]["result"]).content)[0]
    assert np.array_equal(result, expect)
    plain = client.post("/api/rectify", files={"file": ("a.png", encode_png(photo))}).json()
    assert plain["ensemble"] == 1 and "view" not in plain["action"]   # the server's default
    r = client.post("/api/rectify", files={"file": ("a.png", encode_png(photo))},
                    data={"ensemble": "3"})
    assert r.status_code == 400 and r.json()["detail"] == "ensemble: 3 is not one of 1, 2, 4, 8"
    r = client.post("/api/rectify", files={"file": ("a.png", encode_png(photo))},
                    data={"ensemble": "best"})
    assert r.status_code == 400
    assert r.json()["detail"] == "ensemble: 'best' is not one of 1, 2, 4, 8"


def test_api_leaves_a_sharp_upload_untouched(client):
    sharp = load_sample_image("astronaut")[::2, ::2][:256, :256]
    body = client.post("/api/rectify", files={"file": ("a.png", encode_png(sharp))}).json()
    assert body["blurred"] is False and body["action"] == "untouched (not blurred)"
    assert "sharp enough" in body["reason"] or body["reason"]
    assert np.array_equal(decode_image(client.get(body["urls"]["result"]).content)[0], sharp)


@pytest.mark.parametrize("payload,status,words", [
    (b"this is not an image", 400, "not an image"),
    (encode_png(np.zeros((600, 600, 3), np.uint8)), 413, "exceeds the limit"),
    (b"x" * 400_000, 413, "limit"),
])
def test_api_limits_have_clear_messages(client, payload, status, words):
    r = client.post("/api/rectify", files={"file": ("x.png", payload, "image/png")})
    assert r.status_code == status and words in r.json()["detail"], r.text


def test_api_refuses_other_image_formats(client):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="GIF")
    r = client.post("/api/rectify", files={"file": ("x.gif", buf.getvalue(), "image/gif")})
    assert r.status_code == 415 and "not accepted" in r.json()["detail"]


def test_api_refuses_a_chunked_body_over_the_limit(client):
    """(That it is refused before the rest is sent: tests/e2e/test_web_load.py, on a real socket.)"""

    def body():
        for _ in range(100):            # 100 x 10 kB, no Content-Length: chunked
            yield b"--x\r\n" + b"y" * 10_000
    r = client.post("/api/rectify", content=body(),
                    headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and "the limit is 0.3 MB" in r.json()["detail"], r.text
    declared = client.post("/api/rectify", content=b"z" * 500_000,
                           headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert declared.status_code == 413
    assert declared.json()["detail"] == "upload is 0.5 MB; the limit is 0.3 MB"


def test_api_answers_busy_with_503_and_retry_after():
    from fastapi.testclient import TestClient

    from gir.serving.webapp import Limits, create_app

    app = create_app(limits=Limits(max_concurrent=1, max_waiting=0), deblurrer=Brighten())
    client = TestClient(app)
    png = encode_png(blurred_photo())
    with app.state.admission.slot():     # another upload at work: the queue is full
        r = client.post("/api/rectify", files={"file": ("a.png", png)})
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert "busy" in r.json()["detail"]
    assert client.post("/api/rectify", files={"file": ("a.png", png)}).status_code == 200


def test_results_live_for_their_configured_age():
    from fastapi.testclient import TestClient

    from gir.serving.webapp import Limits, create_app

    app = create_app(limits=Limits(result_ttl_seconds=60), deblurrer=Brighten())
    now = [1000.0]
    app.state.store.clock = lambda: now[0]
    client = TestClient(app)
    sharp = load_sample_image("astronaut")[:96, :96]
    urls = [client.post("/api/rectify", files={"file": ("a.png", encode_png(sharp))}).json()
            ["urls"] for _ in range(20)]
    now[0] += 59
    assert all(client.get(u["result"]).status_code == 200 for u in urls)   # not "last 16"
    now[0] += 2
    r = client.get(urls[0]["map"])
    assert r.status_code == 404 and "kept for 60 s" in r.json()["detail"]
    assert [p.name for p in app.state.store.root.iterdir()] == [".alive"]   # files went too
    app.state.store.close()
    assert not app.state.store.root.exists()


def test_a_killed_servers_results_are_swept_by_the_next_one(tmp_path):
    """A killed server leaves its results folder behind: the next server (at start, then on
    its heartbeat) removes the folders whose heartbeat is older than the ttl, never a live
    server's."""
    import os

    from gir.serving.webapp import HEARTBEAT, STALE_AFTER_S, ResultStore

    def old_server(name, age, heartbeat=True):
        root = tmp_path / name
        (root / "key1").mkdir(parents=True)
        (root / "key1" / "result.png").write_bytes(b"png")
        marker = root / HEARTBEAT if heartbeat else root
        if heartbeat:
            marker.touch()
        t = time.time() - age
        os.utime(marker, (t, t))
        return root

    ttl = 300.0
    dead = old_server("gir-serve-dead", ttl + STALE_AFTER_S + 10)
    dead_old_style = old_server("gir-serve-nobeat", ttl + STALE_AFTER_S + 10, heartbeat=False)
    alive = old_server("gir-serve-alive", 5)              # beat 5 s ago: a live server
    recent = old_server("gir-serve-young", ttl - 10)       # died, results not yet that old
    other = old_server("not-ours", 10 * ttl)
    store = ResultStore(ttl, parent=str(tmp_path))
    assert sorted(Path(p).name for p in store.swept) == ["gir-serve-dead", "gir-serve-nobeat"]
    assert not dead.exists() and not dead_old_style.exists()
    assert alive.exists() and recent.exists() and other.exists() and store.root.exists()
    t = time.time() - ttl - STALE_AFTER_S - 1               # later: `recent` is past it too
    os.utime(recent / HEARTBEAT, (t, t))
    os.utime(store.root / HEARTBEAT, (t, t))               # our own beat renews ours
    store.beat()
    assert not recent.exists() and store.root.exists() and alive.exists()
    assert time.time() - (store.root / HEARTBEAT).stat().st_mtime < 60
    store.close()
    assert not store.root.exists()


def test_an_idle_server_drops_expired_results_on_its_heartbeat(tmp_path):
    from gir.serving.webapp import ResultStore

    store = ResultStore(1.5, parent=str(tmp_path))          # beats every 0.5 s
    key, folder = store.new()
    (folder / "result.png").write_bytes(b"png")
    store.publish(key, "x.png")
    deadline = time.monotonic() + 10
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)                                      # no request comes
    assert not folder.exists() and store.get(key, "result") is None
    store.close()


def test_one_pixel_limit_from_params_admits_camera_photos():
    from gir.config import load_params
    from gir.serving.webapp import Limits, check_upload

    params = load_params()
    limits = Limits.from_params(params)
    assert limits.max_pixels == params.data.max_pixels >= 50_000_000
    assert limits.max_bytes == params.serve.max_upload_mb * 1e6
    for w, h in [(4928, 3264), (4096, 4096)]:
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (90, 120, 150)).save(buf, format="JPEG", quality=80)
        rgb, _ = check_upload(buf.getvalue(), "camera", limits)
        assert rgb.shape == (h, w, 3)


def test_error_types_carry_their_http_status():
    from gir.data.imageio import decode_image
    from gir.errors import BadImageError, BusyError, GirError, TooLargeError

    with pytest.raises(TooLargeError) as big:
        decode_image(encode_png(np.zeros((20, 20, 3), np.uint8)), "x", max_pixels=100)
    with pytest.raises(BadImageError) as bad:
        decode_image(b"not an image", "x")
    assert (big.value.status, bad.value.status, BusyError("b").status, GirError().status) == \
        (413, 400, 503, 400)


# ----------------------------------------------------------------------------- the browser

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`gir serve` in a subprocess on a free loopback port, with the model shipped in gir."""
    from gir.tracking.resolve import resolve_detector as get_detector

    get_detector()   # fit/cache the detector here, not inside the server's first request
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gir", "serve", "--model", "pretrained",
             "--port", str(port), "--device", "cpu"], cwd=ROOT, stdout=fh, stderr=fh)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/api/limits", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(log.read_text())
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.browser
def test_browser_upload_see_result_download(server, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium, or `make browser`)")
    from playwright.sync_api import sync_playwright

    photo = tmp_path / "shaky photo.png"
    photo.write_bytes(encode_png(blurred_photo()))
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image at all")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server)
            page.wait_for_selector("text=megapixels")          # limits shown on the page

            page.set_input_files("#file", str(not_image))
            page.wait_for_selector("#message.error")
            assert "not an image" in page.inner_text("#message")

            # Drag and drop: a drop event carrying the file, as a desktop drag would.
            transfer = page.evaluate_handle(
                """([b64, name]) => {
                    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                    const dt = new DataTransfer();
                    dt.items.add(new File([bytes], name, { type: "image/png" }));
                    return dt;
                }""", [base64.b64encode(photo.read_bytes()).decode(), photo.name])
            page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
            page.wait_for_selector("#result:not([hidden])", timeout=120_000)
            assert page.inner_text("#verdict") == "blurred"
            assert page.inner_text("#blur-type") == "motion"
            assert page.inner_text("#blur-type-note") == ""
            assert page.inner_text("#confidence").endswith("%")
            assert "blurred" in page.inner_text("#reason")            # why, in words
            for img in ("#before", "#after", "#map"):
                page.wait_for_function(f"document.querySelector('{img}').naturalWidth === 256")
            page.fill("#slider", "20")
            page.dispatch_event("#slider", "input")
            assert "20%" in page.eval_on_selector("#after", "e => e.style.clipPath")

            # "Best quality": the same photo again as an 8-view self-ensemble.
            page.check("#best")
            page.set_input_files("#file", str(photo))
            page.wait_for_function(
                "document.querySelector('#action').textContent.includes('8-view')",
                timeout=120_000)
            page.wait_for_function("document.querySelector('#after').naturalWidth === 256")

            with page.expect_download() as download_info:
                page.click("#download")
            download = download_info.value
            assert download.suggested_filename == "shaky_photo-rectified.png"
            saved = tmp_path / "downloaded.png"
            download.save_as(saved)
            assert read_image(saved)[0].shape == (256, 256, 3)
        finally:
            browser.close()

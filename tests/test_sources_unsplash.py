"""The Unsplash source against a loopback server that answers like the API: pagination,
rate-limit headers, 403 when the hour's quota is spent, download tracking, attribution."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import run_gir, tiny_params
from datatrees import PHOTOS, jpeg_bytes, photo

import gir.data.sources.unsplash as unsplash
from gir.errors import GirError
from gir.steps.ingest import ingest
from gir.data.manifest import read_manifest

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


@pytest.fixture
def api():
    server = FakeUnsplash()
    yield server
    server.server.shutdown()


@pytest.fixture
def fake_time(monkeypatch, api):
    """Sleeps are recorded, not slept; an hour-long sleep resets the server's quota."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if seconds >= 3000:
            api.hour_passes()

    monkeypatch.setattr(unsplash, "SLEEP", sleep)
    monkeypatch.setenv("UNSPLASH_ACCESS_KEY", KEY)
    return slept


def _params(api, *extra):
    return tiny_params("data.source=unsplash", f"data.unsplash.api_url={api.url}",
                       "data.unsplash.count=5", "data.unsplash.per_page=2",
                       "data.synth.per_image=1", *extra)


def _api_calls(api):
    return [p for p, _ in api.log if not p.startswith("/img/")]


def test_downloads_tracks_attributes_and_keeps_the_key_secret(api, fake_time, tmp_path):
    ingest(_params(api), tmp_path / "raw")
    df = read_manifest(tmp_path / "raw")
    assert sorted(df["origin_id"]) == [f"ph{i}" for i in range(5)]
    assert sorted(api.tracked) == sorted(df["origin_id"])  # every download was tracked
    row = df[df["origin_id"] == "ph1"].iloc[0]
    assert row["author"] == "Author 1" and row["attribution"] == "Photo by Author 1 on Unsplash"
    assert "unsplash.com/@a1" in row["author_url"] and "utm_source" in row["source_url"]
    assert "Unsplash License" in row["license"] and row["source"] == "unsplash"
    # Pagination: 3 search pages of 2 for 5 photos; 5 tracking calls.
    assert _api_calls(api).count("/search/photos") == 3
    # The CDN never sees the key; nothing written anywhere contains it.
    assert all(auth == "" for p, auth in api.log if p.startswith("/img/"))
    for path in (tmp_path / "raw").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    # 50 requests/hour: every API call after the first waited about 72 s.
    assert len(fake_time) == len(_api_calls(api)) - 1
    assert all(70 < s <= 72 for s in fake_time)


def test_resumable_skips_downloaded_ids(api, fake_time, tmp_path, monkeypatch):
    ingest(_params(api), tmp_path / "raw")
    api.log.clear()
    monkeypatch.delenv("UNSPLASH_ACCESS_KEY")
    ingest(_params(api), tmp_path / "raw")  # enough photos: no key needed, no request made
    assert api.log == []
    monkeypatch.setenv("UNSPLASH_ACCESS_KEY", KEY)
    ingest(_params(api, "data.unsplash.count=7"), tmp_path / "raw")
    images = [p for p, _ in api.log if p.startswith("/img/")]
    assert sorted(images) == ["/img/ph5.jpg", "/img/ph6.jpg"]
    assert len(read_manifest(tmp_path / "raw")) == 7


@pytest.mark.parametrize("report_remaining", [True, False])
def test_rate_limit_exhausted_waits_an_hour_and_continues(tmp_path, monkeypatch,
                                                          report_remaining):
    api = FakeUnsplash(quota=3, report_remaining=report_remaining)
    slept: list[float] = []

    def sleep(seconds):
        slept.append(seconds)
        if seconds >= 3000:
            api.hour_passes()

    monkeypatch.setattr(unsplash, "SLEEP", sleep)
    monkeypatch.setenv("UNSPLASH_ACCESS_KEY", KEY)
    try:
        ingest(_params(api, "data.unsplash.requests_per_hour=100000"), tmp_path / "raw")
    finally:
        api.server.shutdown()
    assert len(read_manifest(tmp_path / "raw")) == 5
    assert any(s >= 3000 for s in slept)
    # With X-Ratelimit-Remaining the client waits before hitting the wall; without, on 403.
    assert (api.forbidden == 0) == report_remaining


def test_gives_up_with_one_line_when_quota_never_returns(api, monkeypatch, tmp_path):
    api.left = api.quota = 0
    monkeypatch.setattr(unsplash, "SLEEP", lambda s: None)
    monkeypatch.setenv("UNSPLASH_ACCESS_KEY", KEY)
    with pytest.raises(GirError, match="rate limit still exhausted") as err:
        ingest(_params(api), tmp_path / "raw")
    assert KEY not in str(err.value)


def test_missing_key_is_one_line_error(api, tmp_path):
    env = {"UNSPLASH_ACCESS_KEY": ""}
    proc = run_gir("ingest", "--out", str(tmp_path / "raw"), "--set", "data.source=unsplash",
                   "--set", f"data.unsplash.api_url={api.url}", cwd=tmp_path, env=env,
                   check=False)
    assert proc.returncode != 0
    assert "UNSPLASH_ACCESS_KEY" in proc.stderr and "Traceback" not in proc.stderr
    assert api.log == []


def test_wrong_key_is_rejected_without_echoing_it(api, monkeypatch, tmp_path):
    monkeypatch.setenv("UNSPLASH_ACCESS_KEY", "wrong-key-XYZ")
    monkeypatch.setattr(unsplash, "SLEEP", lambda s: None)
    with pytest.raises(GirError, match="401") as err:
        ingest(_params(api), tmp_path / "raw")
    assert "wrong-key-XYZ" not in str(err.value)


def test_key_is_never_sent_off_the_api_host():
    client = unsplash.UnsplashClient("http://127.0.0.1:9", KEY, sleep=lambda s: None)
    with pytest.raises(GirError, match="refusing"):
        client.get_json("http://evil.example/steal")
    assert KEY not in repr(client)

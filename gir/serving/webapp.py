"""`gir serve`: the web page for people with photos (FastAPI + one static HTML/JS page).

POST /api/rectify takes one uploaded image (and optionally `ensemble`, the views of the
self-ensemble for this photo: the page's "Best quality" box sends 8), runs the one rectify
rule (gir.rectifier.rectify.Rectifier: detect, then deblur only if blurred), and answers JSON
with the decision, why it was taken, and URLs of three PNGs (original, blur map, result).

Memory stays bounded (params `serve.*`, `data.max_pixels`):
- the upload size is enforced while the body streams in (chunked bodies too), before any of it
  is parsed; the body is spooled to a private temporary file above 1 MB, never held whole;
- at most `max_concurrent` uploads are decoded, detected or deblurred at once; up to
  `max_waiting` more wait their turn, the rest get 503 with Retry-After;
- results are PNG files in a private temporary folder (mode 0700), deleted
  `result_ttl_seconds` after they were made and when the server stops. No user-supplied name
  ever reaches the file system; the download name is derived from a sanitised stem.
Errors carry their HTTP status (gir.errors): 400 bad input, 413 too large, 415 format,
503 busy; the page shows their one-line message as it is.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at route
# creation, and they must be real classes, not strings naming local imports.
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gir.data.imageio import DEFAULT_MAX_PIXELS
from gir.errors import BusyError, GirError, ProcessingError, TooLargeError, UnsupportedFormatError
from gir.rectifier.ensemble import check_ensemble, with_ensemble
from gir.rectifier.tiling import AUTO_TILE, AUTO_TILE_ABOVE

STATIC = Path(__file__).with_name("static")
ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF", "BMP"}
KINDS = ("original", "map", "result")
MULTIPART_SLACK = 64 * 1024      # form boundaries and fields around the file
log = logging.getLogger("gir")


# Measured peak memory (docs/serving.md: `gir serve` with the shipped model on 2 CPU cores,
# psutil on the server): the idle server with model and detector loaded (297 MB at 4dd4913,
# 458 MB at c92cba5), what an
# upload at work costs per megapixel (photo, grey copy, result, blur map: ~21 MB), and the
# model's activations: whole-image inference up to AUTO_TILE_ABOVE px a side (~1,000 MB per
# megapixel), AUTO_TILE-px tiles above that (a tile's worth). Rounded up.
IDLE_MB = 500
PER_MEGAPIXEL_MB = 25
ACTIVATIONS_MB_PER_MEGAPIXEL = 1000
WHOLE_IMAGE_MEGAPIXELS = AUTO_TILE_ABOVE ** 2 / 1e6     # above: tiled (gir.rectifier.tiling)
TILE_MEGAPIXELS = AUTO_TILE ** 2 / 1e6


def memory_bound_mb(limits: "Limits", megapixels: float | None = None,
                    upload_mb: float | None = None) -> float:
    """The documented bound on the server's resident memory: idle, plus for each upload at
    work its bytes, its arrays and the model's activations (defaults: the largest admitted)."""
    mp = limits.max_pixels / 1e6 if megapixels is None else megapixels
    up = limits.max_bytes / 1e6 if upload_mb is None else upload_mb
    whole = mp if mp <= WHOLE_IMAGE_MEGAPIXELS else TILE_MEGAPIXELS
    per_upload = up + PER_MEGAPIXEL_MB * mp + ACTIVATIONS_MB_PER_MEGAPIXEL * whole
    return IDLE_MB + limits.max_concurrent * per_upload


@dataclass
class Limits:
    """What one server admits; `gir serve` fills it from params (serve.*, data.max_pixels)."""

    max_bytes: int = 100_000_000
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_concurrent: int = 2
    max_waiting: int = 8
    wait_seconds: float = 120.0
    result_ttl_seconds: float = 3600.0

    @classmethod
    def from_params(cls, params, **override) -> "Limits":
        s = params.serve
        values = dict(max_bytes=int(s.max_upload_mb * 1e6), max_pixels=params.data.max_pixels,
                      max_concurrent=s.max_concurrent, max_waiting=s.max_waiting,
                      wait_seconds=s.wait_seconds, result_ttl_seconds=s.result_ttl_seconds)
        return cls(**{**values, **{k: v for k, v in override.items() if v is not None}})

    def __post_init__(self):
        if self.max_concurrent < 1 or self.max_waiting < 0 or self.max_bytes < 1:
            raise GirError("serve: max_concurrent must be >= 1, max_waiting >= 0, the upload "
                           "limit > 0")


def release_memory() -> None:
    """Give freed heap back to the system (glibc keeps it per thread arena otherwise, and a
    photo's worth of arrays per arena adds up); a no-op where malloc_trim does not exist."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class Admission:
    """At most `running` requests at work at once and `waiting` more queued; beyond: BusyError.

    The work itself runs on `running` dedicated threads, so the heap grows in that many
    malloc arenas at most, whichever of the server's threads took the request."""

    def __init__(self, running: int, waiting: int, wait_seconds: float):
        from concurrent.futures import ThreadPoolExecutor

        self.running, self.waiting, self.wait_seconds = running, waiting, wait_seconds
        self.workers = ThreadPoolExecutor(running, thread_name_prefix="gir-work")
        self._slots = threading.Semaphore(running)
        self._lock = threading.Lock()
        self.inside = 0                       # running + waiting now
        self.retry_after = max(1, min(30, int(wait_seconds // 4) or 1))

    def full(self) -> bool:
        return self.inside >= self.running + self.waiting

    def busy(self, why: str) -> BusyError:
        return BusyError(f"the server is busy ({why}); try again in {self.retry_after} s",
                         self.retry_after)

    @contextmanager
    def slot(self):
        with self._lock:
            if self.full():
                raise self.busy(f"{self.running} photos in work and {self.waiting} waiting")
            self.inside += 1
        try:
            if not self._slots.acquire(timeout=self.wait_seconds):
                raise self.busy(f"waited {self.wait_seconds:g} s for a turn")
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self.inside -= 1

    def run(self, fn, *args):
        """fn(*args) on a work thread once admitted (BusyError when not), memory given back."""
        def job():
            try:
                return fn(*args)
            finally:
                release_memory()
        with self.slot():
            return self.workers.submit(job).result()


ROOT_PREFIX = "gir-serve-"
HEARTBEAT = ".alive"            # touched by a live server; a stale one marks a dead server's
HEARTBEAT_EVERY_S = 30.0        # at most; ttl / 3 when that is shorter
STALE_AFTER_S = 120.0           # a heartbeat older than this (and the ttl): the server is dead


class ResultStore:
    """Result PNGs in a private temporary folder, each kept `ttl` seconds after it was made.

    A killed server cannot delete its folder, so each live server touches a heartbeat file in
    its own, and sweeps (at start, then every few seconds) the folders of servers whose
    heartbeat is older than both the ttl and STALE_AFTER_S: their results are past their age
    and no server answers for them. The same beat sweeps its own expired results, so an idle
    server does not keep them either."""

    def __init__(self, ttl: float, clock=time.monotonic, parent: str | None = None):
        self.ttl, self.clock = ttl, clock
        self.parent = Path(parent or tempfile.gettempdir())
        self.swept = sweep_dead_servers(self.parent, ttl)
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=self.parent))   # mode 0700
        (self.root / HEARTBEAT).touch()
        self.items: dict[str, tuple[float, str]] = {}               # key -> (made, name)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._cleanup = weakref.finalize(self, _close_store, self._stop, self.root)
        threading.Thread(target=_beat, args=(weakref.ref(self), self._stop, self.beat_every),
                         daemon=True, name="gir-results-sweep").start()

    @property
    def beat_every(self) -> float:
        return max(0.5, min(HEARTBEAT_EVERY_S, self.ttl / 3))

    def beat(self) -> None:
        """Say this server is alive, drop expired results, and sweep dead servers' folders."""
        try:
            os.utime(self.root / HEARTBEAT)
        except FileNotFoundError:   # someone removed it: this server is alive, say so again
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.root / HEARTBEAT).touch()
        self.sweep()
        self.swept += sweep_dead_servers(self.parent, self.ttl, keep=self.root)

    def new(self) -> tuple[str, Path]:
        """A fresh key and its (empty) folder; visible to get() only once published."""
        self.sweep()
        key = secrets.token_urlsafe(12)
        folder = self.root / key
        folder.mkdir(parents=True)
        return key, folder

    def publish(self, key: str, download_name: str) -> None:
        with self.lock:
            self.items[key] = (self.clock(), download_name)

    def get(self, key: str, kind: str) -> tuple[Path, str] | None:
        """(PNG path, download name) of a live result, else None."""
        self.sweep()
        with self.lock:
            item = self.items.get(key)
        if item is None or kind not in KINDS:
            return None
        return self.root / key / f"{kind}.png", item[1]

    def sweep(self) -> None:
        """Delete the results older than ttl (and the folders of abandoned requests)."""
        cutoff = self.clock() - self.ttl
        with self.lock:
            old = [k for k, (made, _) in self.items.items() if made < cutoff]
            for k in old:
                del self.items[k]
        for k in old:
            shutil.rmtree(self.root / k, ignore_errors=True)

    def close(self) -> None:
        self._cleanup()


def _close_store(stop: threading.Event, root: Path) -> None:
    stop.set()
    shutil.rmtree(root, ignore_errors=True)


def _beat(store_ref, stop: threading.Event, every: float) -> None:
    """The store's heartbeat thread; ends when the store is closed or collected."""
    while not stop.wait(every):
        store = store_ref()
        if store is None:
            return
        try:
            store.beat()
        except OSError as exc:   # a full or read-only temp folder: say so, keep serving
            log.warning("gir serve: results folder: %s", exc)
        del store


def sweep_dead_servers(parent: Path, ttl: float, keep: Path | None = None) -> list[str]:
    """Remove the result folders (ROOT_PREFIX*, ours by uid) of servers that died: their
    heartbeat (or, from a server without one, the folder itself) is older than both the ttl
    and STALE_AFTER_S. Returns the folders removed."""
    cutoff = time.time() - max(ttl, STALE_AFTER_S)
    removed = []
    try:
        roots = [p for p in parent.iterdir() if p.name.startswith(ROOT_PREFIX) and p != keep]
    except OSError:
        return removed
    for root in roots:
        try:
            st = root.lstat()
            if not root.is_dir() or root.is_symlink() or st.st_uid != os.getuid():
                continue
            beat = root / HEARTBEAT
            last = beat.stat().st_mtime if beat.exists() else st.st_mtime
        except OSError:
            continue
        if last < cutoff:
            shutil.rmtree(root, ignore_errors=True)
            removed.append(str(root))
            log.info("gir serve: removed %s, the results of a server that died", root)
    return removed


def safe_stem(filename: str | None) -> str:
    """A harmless download stem from whatever name the browser sent."""
    stem = Path(str(filename or "image").replace("\\", "/")).stem
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:48] or "image"


def mb(n: int) -> str:
    return f"{n / 1e6:.3g} MB"


def check_upload(data: bytes, name: str, limits: Limits):
    """Decode an upload within the limits, or raise GirError (with its status) for the page."""
    import io

    from PIL import Image

    from gir.data.imageio import decode_image

    if len(data) > limits.max_bytes:
        raise TooLargeError(f"{name}: file is {mb(len(data))}; the limit is {mb(limits.max_bytes)}")
    try:
        fmt = Image.open(io.BytesIO(data)).format
    except Exception:   # noqa: BLE001 - decode_image says what is wrong with it
        fmt = None
    if fmt is not None and fmt not in ALLOWED_FORMATS:
        raise UnsupportedFormatError(f"{name}: {fmt} images are not accepted "
                                     "(use PNG, JPEG, WebP, TIFF or BMP)")
    return decode_image(data, name, limits.max_pixels)


def parse_ensemble(value: str | None) -> int | None:
    """The request's self-ensemble size (None: the server's), or GirError with one line."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    return check_ensemble(int(value) if value.isdigit() else value[:20])


def blur_map_image(rgb: np.ndarray, det, rows: int = 256) -> np.ndarray:
    """The blur-map overlay, built a strip of tile rows at a time (its float temporaries are
    a strip's, not the photo's)."""
    import dataclasses

    from gir.rectifier.detect import overlay

    tile, ny = det.tile, det.labels.shape[0]
    step = max(rows // tile, 1)
    out = np.empty_like(rgb)
    for t0 in range(0, ny, step):
        t1 = min(t0 + step, ny)
        y0, y1 = t0 * tile, (t1 * tile if t1 < ny else rgb.shape[0])
        part = dataclasses.replace(det, labels=det.labels[t0:t1])
        out[y0:y1] = overlay(rgb[y0:y1], part)
    return out


def save_png(path: Path, arr: np.ndarray) -> None:
    """A quick PNG (compression level 1: these are short-lived downloads)."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(arr)).save(path, format="PNG", compress_level=1)


class BodyLimit:
    """ASGI middleware: refuses an upload over the limit while it streams in (413), and a new
    one when the work queue is already full (503), before reading its body."""

    def __init__(self, app, limits: Limits, admission: Admission, paths: tuple[str, ...]):
        self.app, self.limits, self.admission, self.paths = app, limits, admission, paths
        self.max_body = limits.max_bytes + MULTIPART_SLACK

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        from fastapi import HTTPException
        from fastapi.responses import JSONResponse

        limit = f"the limit is {mb(self.limits.max_bytes)}"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            answer = JSONResponse({"detail": f"upload is {mb(int(declared))}; {limit}"}, 413,
                                  headers={"Connection": "close"})
            return await answer(scope, receive, send)
        if self.admission.full():
            busy = self.admission.busy("the queue is full")
            answer = JSONResponse({"detail": str(busy)}, 503,
                                  headers={"Retry-After": str(busy.retry_after)})
            return await answer(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise HTTPException(413, f"upload exceeds {mb(self.max_body)}; {limit}",
                                    headers={"Connection": "close"})
            return message

        await self.app(scope, counted, send)


def rectify_upload(rectifier, store: ResultStore, limits: Limits, data: bytes, name: str,
                   views: int | None) -> dict:
    """Decode, decide, write the three PNGs; the JSON answer. Runs inside an admission slot."""
    rgb, _ = check_upload(data, name, limits)
    del data
    wrap = (lambda model: with_ensemble(model, views)) if views else None
    try:
        result, decision = rectifier.rectify(rgb, wrap)
    except GirError:
        raise
    except Exception as exc:   # noqa: BLE001 - this photo's failure, not the server's
        log.exception("gir serve: %s failed", name)
        raise ProcessingError(f"{name}: could not be processed ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    download = f"{name}-rectified.png"
    key, folder = store.new()
    save_png(folder / "original.png", rgb)
    save_png(folder / "map.png", blur_map_image(rgb, decision.detection))
    save_png(folder / "result.png", result)
    store.publish(key, download)
    return {"id": key, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
            **decision.report(with_map=False),
            "urls": {k: f"/api/result/{key}/{k}.png" for k in KINDS},
            "download_name": download, "kept_seconds": store.ttl}


def create_app(model: str | None = None, device: str = "auto", limits: Limits | None = None,
               deblurrer=None, detector=None, events=None, ensemble: int = 1):
    """The FastAPI app; the deblurrer is loaded on the first blurred photo (or given).

    ensemble: views of the self-ensemble every deblurred photo gets (gir.rectifier.ensemble).
    events, an EventsConfig, adds the S3 event-notification endpoint (gir.serving.events).
    """
    from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    from gir.rectifier.batch import ModelSlot
    from gir.rectifier.rectify import Rectifier
    from gir.tracking.resolve import resolve_deblurrer_with_source, resolve_detector

    limits = limits or Limits()
    store = ResultStore(limits.result_ttl_seconds)
    admission = Admission(limits.max_concurrent, limits.max_waiting, limits.wait_seconds)
    slot = ModelSlot(lambda: (deblurrer, "given") if deblurrer is not None
                     else resolve_deblurrer_with_source(model, device, ensemble=ensemble))
    rectifier = Rectifier(slot.get, detector or resolve_detector(),
                          lock=threading.RLock())   # one model call at a time
    app = FastAPI(title="GIR", docs_url=None, redoc_url=None)
    app.state.store, app.state.admission = store, admission
    app.add_middleware(BodyLimit, limits=limits, admission=admission, paths=("/api/rectify",))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if events is not None:
        from gir.serving.events import events_router

        app.include_router(events_router(events, slot, lambda: rectifier.detector,
                                         limits.max_pixels))

    @app.exception_handler(GirError)
    async def gir_error(request: Request, exc: GirError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, BusyError) else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/limits")
    def get_limits():
        return {"max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels,
                "formats": sorted(ALLOWED_FORMATS), "max_concurrent": limits.max_concurrent,
                "max_waiting": limits.max_waiting, "kept_seconds": limits.result_ttl_seconds}

    @app.post("/api/rectify")
    def rectify(file: UploadFile = File(...), ensemble: str | None = Form(None)):
        name, views = safe_stem(file.filename), parse_ensemble(ensemble)
        return admission.run(lambda: rectify_upload(
            rectifier, store, limits, file.file.read(limits.max_bytes + 1), name, views))

    @app.get("/api/result/{key}/{kind}.png")
    def result_png(key: str, kind: str):
        found = store.get(key, kind)
        if found is None or not found[0].exists():
            raise HTTPException(404, "no such result (results are kept for "
                                     f"{limits.result_ttl_seconds:g} s)")
        path, download = found
        headers = {"Content-Disposition": f'attachment; filename="{download}"'} \
            if kind == "result" else None
        return FileResponse(path, media_type="image/png", headers=headers)

    return app

"""`gir serve`: the web page for people with photos (FastAPI + one static HTML/JS page).

POST /api/rectify takes one uploaded image (and optionally `ensemble`, the views of the
self-ensemble for this photo: the page's "Best quality" box sends 8), runs detect -> classify
-> deblur-if-blurred, and answers JSON with the decisions and URLs of three PNGs (original,
blur map, result) kept in memory under a random id. Uploads are never written to disk, so no
user-supplied name ever reaches the file system; the download name is derived from a sanitised
stem.
Limits (bytes, pixels, formats) are checked before any model runs, with one-line messages the
page shows as they are.
"""


import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from gir.errors import GirError
from gir.rectifier.ensemble import check_ensemble, with_ensemble
from gir.tracking.resolve import resolve_deblurrer_with_source, resolve_detector

STATIC = Path(__file__).with_name("static")
MAX_UPLOAD_BYTES = 20_000_000
MAX_PIXELS = 16_000_000
ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF", "BMP"}
KEEP_RESULTS = 16


@dataclass
class Limits:
    max_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS


class ResultStore:
    """The last KEEP_RESULTS results, in memory, by random id."""

    def __init__(self, keep: int = KEEP_RESULTS):
        self.keep = keep
        self.items: OrderedDict[str, dict] = OrderedDict()
        self.lock = threading.Lock()

    def put(self, item: dict) -> str:
        key = secrets.token_urlsafe(12)
        with self.lock:
            self.items[key] = item
            while len(self.items) > self.keep:
                self.items.popitem(last=False)
        return key

    def get(self, key: str) -> dict | None:
        with self.lock:
            return self.items.get(key)


def safe_stem(filename: str | None) -> str:
    """A harmless download stem from whatever name the browser sent."""
    stem = Path(str(filename or "image").replace("\\", "/")).stem
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:48] or "image"


def check_upload(data: bytes, name: str, limits: Limits):
    """Decode an upload within the limits, or raise GirError with a message for the page."""
    import io

    from PIL import Image

    from gir.data.imageio import decode_image

    if len(data) > limits.max_bytes:
        raise GirError(f"{name}: file is {len(data) / 1e6:.1f} MB; the limit is "
                       f"{limits.max_bytes / 1e6:.0f} MB")
    try:
        fmt = Image.open(io.BytesIO(data)).format
    except Exception:
        fmt = None
    if fmt is not None and fmt not in ALLOWED_FORMATS:
        raise GirError(f"{name}: {fmt} images are not accepted (use PNG, JPEG, WebP, TIFF or BMP)")
    return decode_image(data, name, limits.max_pixels)


def parse_ensemble(value: str | None) -> int | None:
    """The request's self-ensemble size (None: the server's), or GirError with one line."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    return check_ensemble(int(value) if value.isdigit() else value[:20])


def create_app(model: str | None = None, device: str = "auto", limits: Limits | None = None,
               deblurrer=None, detector=None, events=None, ensemble: int = 1):
    """The FastAPI app; the deblurrer is loaded on the first blurred photo (or given).

    ensemble: views of the self-ensemble every deblurred photo gets (gir.rectifier.ensemble).

    events, an EventsConfig, adds the S3 event-notification endpoint (gir.serving.events).
    """
    from gir.rectifier.batch import ModelSlot
    from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles

    limits = limits or Limits()
    store = ResultStore()
    slot = ModelSlot(lambda: (deblurrer, "given") if deblurrer is not None
                     else resolve_deblurrer_with_source(model, device, ensemble=ensemble))
    model_lock = threading.RLock()   # one inference at a time; re-entered by get_deblurrer
    app = FastAPI(title="GIR", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def get_deblurrer():
        with model_lock:
            return slot.get()   # loaded once; no tile bars in the server log

    if events is not None:
        from gir.serving.events import events_router

        app.include_router(events_router(events, slot, lambda: detector or resolve_detector()))

    @app.exception_handler(GirError)
    async def gir_error(request: Request, exc: GirError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/limits")
    def get_limits():
        return {"max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels,
                "formats": sorted(ALLOWED_FORMATS)}

    @app.post("/api/rectify")
    def rectify(request: Request, file: UploadFile = File(...),
                ensemble: str | None = Form(None)):
        from gir.rectifier.detect import detect, overlay
        from gir.data.imageio import encode_png

        declared = int(request.headers.get("content-length") or 0)
        if declared > limits.max_bytes + 64 * 1024:
            raise HTTPException(413, f"upload is {declared / 1e6:.1f} MB; the limit is "
                                     f"{limits.max_bytes / 1e6:.0f} MB")
        data = file.file.read(limits.max_bytes + 1)
        name = safe_stem(file.filename)
        views = parse_ensemble(ensemble)
        try:
            rgb, _ = check_upload(data, name, limits)
        except GirError as exc:
            status = 413 if "limit" in str(exc) else 415 if "accepted" in str(exc) else 400
            raise HTTPException(status, str(exc)) from None
        det = detect(rgb, detector or resolve_detector())
        if det.blurred:
            with model_lock:
                model = get_deblurrer()
                model = with_ensemble(model, views) if views else model
                result = model(rgb)
            views = model.ensemble
            action = "deblurred" if views == 1 else f"deblurred ({views}-view self-ensemble)"
        else:
            result, action = rgb, "untouched: not blurred"
        key = store.put({"original": encode_png(rgb), "map": encode_png(overlay(rgb, det)),
                         "result": encode_png(result), "name": f"{name}-rectified.png"})
        report = det.report()
        report.pop("map")
        return {"id": key, "action": action, "ensemble": views if det.blurred else None,
                "width": int(rgb.shape[1]),
                "height": int(rgb.shape[0]), **report,
                "urls": {k: f"/api/result/{key}/{k}.png" for k in ("original", "map", "result")},
                "download_name": f"{name}-rectified.png"}

    @app.get("/api/result/{key}/{kind}.png")
    def result_png(key: str, kind: str):
        item = store.get(key)
        if item is None or kind not in ("original", "map", "result"):
            raise HTTPException(404, "no such result (results are kept for the last "
                                     f"{KEEP_RESULTS} uploads)")
        headers = {}
        if kind == "result":
            headers["Content-Disposition"] = f'attachment; filename="{item["name"]}"'
        return Response(item[kind], media_type="image/png", headers=headers)

    return app

"""S3 event notifications: `gir serve` rectifies each uploaded object as it arrives.

POST /api/events/s3 takes the JSON that S3-compatible stores send when an object is created:
MinIO's webhook (``{"EventName", "Key", "Records": [...]}``), AWS S3's own records (through SNS
to HTTP, which wraps them in ``{"Type": "Notification", "Message": "..."}``), or an EventBridge
"Object Created" event. It processes exactly the named objects, through the same batch and
ledger as `gir rectify SRC -o DST` (so an object already done is not redone, and `gir watch`
or a batch run over the same destination agree with it).

A shared token, from $GIR_EVENT_TOKEN, protects it: ``Authorization: Bearer <token>`` (what
MinIO's ``auth_token`` setting sends), ``Authorization: <token>``, or ``?token=`` (for SNS,
which cannot set headers). Without it the answer is 401 and nothing is read. A notification
naming any object outside the configured source prefix is refused whole (403). HEAD answers 200
with nothing, for MinIO's reachability check.

A photo that fails (a poison pill) is a "failed" entry of a 200 answer, ledgered, never a 500:
a redelivery does not retry it. The endpoint claims each object with the same leases as
`gir watch`, so replicas of both can share one prefix.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations (Request)
# at route creation, and they must be real classes, not strings naming local imports.
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass
from urllib.parse import unquote_plus

from gir.errors import GirError

log = logging.getLogger("gir")

TOKEN_ENV = "GIR_EVENT_TOKEN"
EVENTS_PATH = "/api/events/s3"


@dataclass
class EventsConfig:
    """Where events come from (an s3://bucket/prefix/), where outputs go, and the token."""

    source: str
    dest: str
    task: str = "rectify"
    token: "str | None" = None
    options: "object | None" = None   # a gir.rectifier.batch.BatchOptions (params batch.*)

    def __post_init__(self):
        if not self.source.startswith("s3://"):
            raise GirError(f"--events-source {self.source}: expected s3://bucket/prefix/")
        self.token = self.token or os.environ.get(TOKEN_ENV)
        if not self.token:
            raise GirError(f"S3 events need a shared token: set {TOKEN_ENV}")
        bucket, _, prefix = self.source.removeprefix("s3://").partition("/")
        self.bucket = bucket
        self.prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""


def created_objects(body: dict) -> tuple[list[tuple[str, str]], int]:
    """((bucket, key) of every object-created record, number of other records ignored)."""
    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
        body = json.loads(body["Message"])          # SNS to HTTP(S)
    if "detail" in body and body.get("source") == "aws.s3":     # EventBridge
        if body.get("detail-type") != "Object Created":
            return [], 1
        d = body["detail"]
        return [(d["bucket"]["name"], d["object"]["key"])], 0
    found, ignored = [], 0
    for record in body.get("Records") or []:
        if not str(record.get("eventName", "")).startswith(("ObjectCreated:", "s3:ObjectCreated:")):
            ignored += 1
            continue
        s3 = record["s3"]
        found.append((s3["bucket"]["name"], unquote_plus(s3["object"]["key"])))
    return found, ignored


def token_of(request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        auth = auth[7:]
    return auth.strip() or request.headers.get("x-gir-token", "") or \
        request.query_params.get("token", "")


def events_router(cfg: EventsConfig, slot, get_detector, max_pixels: "int | None" = None):
    """The APIRouter for EVENTS_PATH; slot is the app's ModelSlot, get_detector() the detector,
    max_pixels the server's pixel limit (data.max_pixels, shared with the page and the CLI)."""
    from fastapi import APIRouter, HTTPException, Request
    from fastapi.responses import Response

    from gir.data.storage import Location, one_line
    from gir.rectifier.batch import BatchOptions, run_batch
    from gir.rectifier.ledger import Leases

    router = APIRouter()
    lock = threading.Lock()   # one batch at a time in this process; leases cover replicas
    opts = cfg.options or BatchOptions()
    dest = Location(cfg.dest)
    if opts.temp_max_age_s > 0:
        dest.sweep_temp(opts.temp_max_age_s)
    leases = Leases(dest, opts.lease_s)

    @router.head(EVENTS_PATH)
    def alive():
        return Response(status_code=200)

    @router.post(EVENTS_PATH)
    async def s3_event(request: Request):
        if not hmac.compare_digest(token_of(request).encode(), cfg.token.encode()):
            raise HTTPException(401, "missing or wrong event token",
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            body = json.loads(await request.body())
            if body.get("Type") == "SubscriptionConfirmation":
                log.warning("gir serve: SNS subscription: confirm it at %s",
                            body.get("SubscribeURL"))
                return {"subscription": "open SubscribeURL to confirm",
                        "subscribe_url": body.get("SubscribeURL")}
            objects, ignored = created_objects(body)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise HTTPException(400, "not an S3 event notification") from None
        outside = [f"s3://{b}/{k}" for b, k in objects
                   if b != cfg.bucket or not k.startswith(cfg.prefix) or k == cfg.prefix]
        if outside:
            raise HTTPException(403, f"refused: {', '.join(outside)} outside the source "
                                     f"{cfg.source}")
        rels = list(dict.fromkeys(k[len(cfg.prefix):] for _, k in objects))
        if not rels:
            return {"written": [], "failed": [], "skipped": [], "ignored": ignored}
        from starlette.concurrency import run_in_threadpool

        def work():
            with lock:
                return run_batch([cfg.source], cfg.dest, cfg.task, slot,
                                 get_detector() if cfg.task == "rectify" else None, opts,
                                 only=rels, report_name=None, leases=leases, temp_max_age_s=0,
                                 **({"max_pixels": max_pixels} if max_pixels else {}))
        try:
            report = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001 - no model, store down: the sender retries
            raise HTTPException(503, one_line(exc)) from None
        c = report["counts"]
        log.info("gir serve: event: %d written, %d failed, %d unchanged",
                 c["written"], c["failed"], c["skipped"])
        return {k: report[k] for k in ("written", "failed", "skipped", "model",
                                       "not_processed")} | {"ignored": ignored}

    return router

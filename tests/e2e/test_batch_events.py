"""The S3 event-notification endpoint of `gir serve` (POST /api/events/s3) on a real S3 endpoint
(moto's server on loopback): a MinIO-style notification processes exactly the named new object;
no token, a wrong token, or a key outside the source prefix processes nothing."""

from __future__ import annotations

import json

import pytest

from batchkit import FAST, Invert, get, keys, photos, s3, upload  # noqa: F401
from tests.helpers import run_gir

SRC, DST, TOKEN = "gir-events-in", "gir-events-out", "s3cr3t-token"



def minio_event(*objects: tuple[str, str], name: str = "s3:ObjectCreated:Put") -> dict:
    """What a MinIO webhook target posts (keys URL-encoded, as S3 does)."""
    from urllib.parse import quote

    return {"EventName": name, "Key": f"{objects[0][0]}/{objects[0][1]}", "Records": [
        {"eventVersion": "2.0", "eventSource": "minio:s3", "eventName": name,
         "s3": {"bucket": {"name": b, "arn": f"arn:aws:s3:::{b}"},
                "object": {"key": quote(k), "size": 1}}} for b, k in objects]}


@pytest.fixture
def app(s3):
    from fastapi.testclient import TestClient

    from gir.rectifier.detect import Detector
    from gir.serving.events import EventsConfig
    from gir.serving.webapp import create_app
    from gir.tracking.resolve import resolve_detector

    url, client = s3
    for bucket in (SRC, DST):
        client.create_bucket(Bucket=bucket)
    model = Invert()
    detector: Detector = resolve_detector()
    cfg = EventsConfig(f"s3://{SRC}/incoming/", f"s3://{DST}/deblurred/", "deblur", TOKEN)
    with TestClient(create_app(deblurrer=model, detector=detector, events=cfg)) as http:
        yield http, client, model


def outputs(client) -> list[str]:
    return [k for k in keys(client, DST, "deblurred/") if not k.startswith("_gir/")]


def test_a_notification_processes_exactly_the_named_new_object(app):
    http, client, model = app
    files = photos(3, seed=7)
    upload(client, SRC, "incoming/", files)
    named = sorted(files)[1]
    event = minio_event((SRC, f"incoming/{named}"))

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "wrong"}):
        r = http.post("/api/events/s3", json=event, headers=headers)
        assert r.status_code == 401 and "token" in r.json()["detail"]
    r = http.post("/api/events/s3", json=minio_event((SRC, f"other/{named}")),
                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 403 and "outside the source" in r.json()["detail"]
    r = http.post("/api/events/s3", json=minio_event((DST, f"incoming/{named}")),
                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 403
    assert outputs(client) == [] and model.calls == 0          # nothing was processed

    r = http.post("/api/events/s3", json=event, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [w["input"] for w in body["written"]] == [f"s3://{SRC}/incoming/{named}"]
    assert outputs(client) == [f"{named}.png"] and model.calls == 1
    assert len(keys(client, DST, "deblurred/_gir/ledger/")) == 1

    # The same event again (S3 delivers at least once): done already, nothing redone.
    r = http.post(f"/api/events/s3?token={TOKEN}", json=event)
    assert r.status_code == 200 and r.json()["written"] == [] and model.calls == 1
    assert "unchanged" in r.json()["skipped"][0]["reason"]


def test_a_missing_object_and_a_broken_one_fail_alone(app):
    http, client, model = app
    upload(client, SRC, "incoming/", {"late/ok.png": photos(1, seed=8)["set0/photo0000.png"],
                                      "late/bad.png": b"not a png"})
    event = minio_event(*[(SRC, f"incoming/late/{n}") for n in ("gone.png", "bad.png", "ok.png")])
    r = http.post("/api/events/s3", json=event, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [w["input"] for w in body["written"]] == [f"s3://{SRC}/incoming/late/ok.png"]
    reasons = {f["input"].rsplit("/", 1)[-1]: f["reason"] for f in body["failed"]}
    assert "no such" in reasons["gone.png"] and "not an image" in reasons["bad.png"]
    r = http.post("/api/events/s3", content=b"{not json",
                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400


def test_a_poison_pill_is_a_failed_entry_not_a_500_and_is_not_retried(app):
    """A 64x1 PNG (it crashed the blur features once) and a photo that crashes the model:
    200 with each failure, the good photo written; a redelivery retries neither."""
    import numpy as np

    from gir.data.imageio import encode_png

    http, client, model = app
    upload(client, SRC, "incoming/", {"pill/wide.png": encode_png(np.zeros((1, 64, 3),
                                                                           np.uint8)),
                                      "pill/ok.png": photos(1, seed=10)["set0/photo0000.png"]})
    event = minio_event(*[(SRC, f"incoming/pill/{n}") for n in ("wide.png", "ok.png")])
    for _ in range(2):
        r = http.post("/api/events/s3", json=event, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
    body = r.json()
    assert body["written"] == [] and body["failed"] == []     # the redelivery: nothing redone
    assert any("too small: 64x1 px" in s["reason"] for s in body["skipped"])
    assert "pill/ok.png.png" in outputs(client) and "pill/wide.png.png" not in outputs(client)


def test_aws_records_via_sns_and_other_events_are_ignored(app):
    http, client, model = app
    upload(client, SRC, "incoming/", {"sns/a b.png": photos(1, seed=9)["set0/photo0000.png"]})
    record = minio_event((SRC, "incoming/sns/a b.png"))["Records"][0]
    removed = {**record, "eventName": "ObjectRemoved:Delete"}
    sns = {"Type": "Notification", "Message": json.dumps({"Records": [
        {**record, "eventName": "ObjectCreated:Put"}, removed]})}
    r = http.post("/api/events/s3", json=sns, headers={"Authorization": TOKEN})
    assert r.status_code == 200, r.text
    assert r.json()["ignored"] == 1 and len(r.json()["written"]) == 1
    assert "sns/a b.png.png" in outputs(client)


def test_serve_without_a_token_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("GIR_EVENT_TOKEN", raising=False)
    proc = run_gir("serve", "--events-source", "s3://b/in/", "--events-dest", str(tmp_path),
                   cwd=tmp_path, check=False, env=FAST)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "GIR_EVENT_TOKEN" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

"""gir.rectifier.ledger: one entry per input (written whole, read back by other writers), and
the leases that let replicas share a destination (one claim wins, a dead replica's claim
expires, only the holder releases), on a folder and on a loopback S3 server (moto)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from batchkit import s3  # noqa: F401


def test_entries_are_recorded_whole_and_seen_by_another_ledger(tmp_path):
    from gir.data.storage import Location
    from gir.rectifier.ledger import DONE, FAILED, LEDGER_DIR, Ledger, entry_name

    a, b = Ledger(Location(tmp_path)), Ledger(Location(tmp_path))
    a.record({"input": "x/1.png", "status": DONE, "model": "v1"})
    a.record({"input": "2.png", "status": FAILED, "model": None, "reason": "empty file"})
    assert b.refresh().get("x/1.png")["model"] == "v1" and "recorded" in b.get("x/1.png")
    assert b.counts() == {DONE: 1, FAILED: 1}
    (tmp_path / LEDGER_DIR / "stray.json").write_text("not json")     # not ours: ignored
    (tmp_path / entry_name("2.png")).unlink()                         # deleted: forgotten
    assert b.refresh().get("2.png") is None and b.counts() == {DONE: 1, FAILED: 0}
    a.record({"input": "x/1.png", "status": DONE, "model": "v2"})
    assert b.reload("x/1.png")["model"] == "v2"
    assert b.load(["x/1.png", "absent.png"]).get("absent.png") is None
    name = entry_name("x/1.png")
    assert json.loads((tmp_path / name).read_text())["input"] == "x/1.png"


def test_failed_entries_stand_for_their_model_version_only():
    from gir.rectifier.batch import is_current

    pill = {"task": "rectify", "status": "failed", "model": "v1", "reason": "ValueError: x"}
    assert is_current(pill, "rectify", False, "v1")          # tried once with v1 ...
    assert not is_current(pill, "rectify", False, "v2")      # ... and again with v2
    bad = {"task": "rectify", "status": "failed", "model": None, "reason": "empty file"}
    assert is_current(bad, "rectify", True, "v2")            # no model can fix it
    done = {"task": "rectify", "status": "done", "model": "v1"}
    assert is_current(done, "rectify", False, "v2") and not is_current(done, "rectify", True,
                                                                        "v2")
    assert not is_current(done, "deblur", True, "v1") and is_current(done, "deblur", False, None)


_made: list = []


@pytest.fixture(autouse=True)
def _stop_heartbeats():
    """Claims a test leaves held are dropped at its end, so no heartbeat outlives the test
    (one renewing against a stopped S3 server would warn into later tests' output)."""
    yield
    while _made:
        leases = _made.pop()
        with leases._cond:
            leases.held.clear()
            leases._cond.notify_all()


def leases_on(loc, seconds: float = 30):
    from gir.rectifier.ledger import Leases

    _made.append(Leases(loc, seconds))
    return _made[-1]


def check_leases(loc) -> None:
    from gir.rectifier.ledger import lease_name

    a, b = leases_on(loc), leases_on(loc)
    lease, _ = a.claim("p/1.png")
    assert lease is not None and lease.owner == a.owner
    again, holder = b.claim("p/1.png")
    assert again is None and holder.startswith(a.owner)
    b.release(lease)                      # not b's: left alone
    assert b.claim("p/1.png")[0] is None
    a.release(lease)
    lease_b, _ = b.claim("p/1.png")
    assert lease_b is not None

    # A dead replica: its claim expires and is taken over, once.
    dead = leases_on(loc, seconds=1.5)
    assert dead.claim("p/2.png")[0] is not None
    assert a.claim("p/2.png")[0] is None
    dead.held.clear()                     # it dies: its heartbeat renews nothing any more
    time.sleep(1.6)
    got = []
    threads = [threading.Thread(target=lambda r: got.append(r.claim("p/2.png")[0]),
                                args=(r,)) for r in (a, b, leases_on(loc), leases_on(loc))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(g is not None for g in got) == 1, got
    dead.release(dead.claim("p/2.png")[0])    # the dead one's late release: no effect
    assert loc.read_stamped(lease_name("p/2.png")) is not None

    # Many claims at once on a fresh input: exactly one wins.
    many = [leases_on(loc) for _ in range(8)]
    won = []
    threads = [threading.Thread(target=lambda r: won.append(r.claim("p/3.png")[0]), args=(r,))
               for r in many]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(w is not None for w in won) == 1, won


def test_leases_on_a_folder(tmp_path):
    from gir.data.storage import Location
    from gir.rectifier.ledger import lease_name

    loc = Location(tmp_path)
    check_leases(loc)
    (tmp_path / lease_name("p/4.png")).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / lease_name("p/4.png")).write_bytes(b"{half a wr")   # a killed write
    assert leases_on(loc).claim("p/4.png")[0] is not None          # counts as expired


def test_leases_on_s3(s3):
    from gir.data.storage import Location

    url, client = s3
    client.create_bucket(Bucket="gir-leases")
    check_leases(Location("s3://gir-leases/dst"))


def test_a_claim_that_cannot_be_written_is_an_error_not_a_claim(tmp_path):
    from gir.data.storage import Location

    (tmp_path / "_gir").write_text("a file where the folder should be")
    with pytest.raises(OSError):
        leases_on(Location(tmp_path)).claim("x.png")


def check_renewal(loc) -> None:
    """A claim held past its lease_s is renewed by the heartbeat: nobody takes it over while
    it is held, and after its release another worker gets it."""
    from gir.rectifier.ledger import lease_name

    # Lease lengths in this file leave the heartbeat (every lease/3) a stall of over half a
    # second on a loaded CI machine before a claim would expire.
    a, b = leases_on(loc, seconds=1.0), leases_on(loc, seconds=1.0)
    lease, _ = a.claim("p/slow.png")
    first = lease.expires
    t_end = time.monotonic() + 3.5                  # three and a half lease lengths
    while time.monotonic() < t_end:
        assert b.claim("p/slow.png")[0] is None     # never taken over mid-work
        time.sleep(0.1)
    assert lease.expires > first + 2 and not lease.lost
    assert json.loads(loc.read_stamped(lease_name("p/slow.png"))[0])["expires"] > time.time()
    a.release(lease)
    lease_b = b.claim("p/slow.png")[0]
    assert lease_b is not None
    b.release(lease_b)
    t_end = time.monotonic() + 5
    while (a._beat or b._beat) and time.monotonic() < t_end:
        time.sleep(0.05)
    assert a._beat is None and b._beat is None      # the heartbeat ends with the last claim


def test_a_claim_held_past_its_lease_is_renewed_on_a_folder(tmp_path):
    from gir.data.storage import Location

    check_renewal(Location(tmp_path))


def test_a_claim_held_past_its_lease_is_renewed_on_s3(s3):
    from gir.data.storage import Location

    url, client = s3
    client.create_bucket(Bucket="gir-renew")
    check_renewal(Location("s3://gir-renew/dst"))


def test_a_claim_that_cannot_be_renewed_before_it_expires_is_given_up(tmp_path, caplog):
    """Storage gone mid-work: the heartbeat warns, and once the claim has expired marks it lost
    (another worker may take it over now) and stops, instead of retrying for ever."""
    from gir.data.storage import Location

    loc = Location(tmp_path)
    a = leases_on(loc, seconds=0.3)
    lease, _ = a.claim("p/x.png")

    def unreachable(*args, **kwargs):
        raise OSError("endpoint unreachable")
    loc.read_stamped = unreachable
    t_end = time.monotonic() + 5
    while a._beat is not None and time.monotonic() < t_end:
        time.sleep(0.05)
    assert lease.lost and a._beat is None
    warned = [r.getMessage() for r in caplog.records if "p/x.png" in r.getMessage()]
    assert warned and "expired" in warned[-1] and len(warned) <= 4, warned


def test_a_renewal_after_a_takeover_loses_the_claim(tmp_path):
    """A stalled holder whose claim expired and was taken over must not renew it back."""
    from gir.data.storage import Location

    loc = Location(tmp_path)
    a, b = leases_on(loc, seconds=30), leases_on(loc, seconds=30)
    lease, _ = a.claim("p/x.png")
    lease_b = b.claim("p/x.png")[0]
    assert lease_b is None
    a.release(lease)
    lease_b, _ = b.claim("p/x.png")
    assert not a.renew(lease) and lease.lost
    assert b.claim("p/x.png")[0] is not None     # b's claim untouched (b may re-claim its own)


def test_two_replicas_with_a_short_lease_and_slow_photos_do_each_photo_once(tmp_path):
    """Each photo takes longer than lease_s: without renewal the other replica would take
    it over mid-work and do it again."""
    from batchkit import Invert, loader, photos
    from gir.rectifier.batch import run_batch

    src, dst = tmp_path / "in", tmp_path / "out"
    for rel, data in photos(4).items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    models, reports = [Invert(delay=1.5), Invert(delay=1.5)], []

    def replica(m):
        reports.append(run_batch([str(src)], str(dst), "deblur", loader(m, "v1"),
                                 lease_s=0.6, workers=1, report_name=None))
    threads = [threading.Thread(target=replica, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(m.calls for m in models) == 4, [m.calls for m in models]
    assert sum(r["counts"]["written"] for r in reports) == 4
    assert not any("lost" in s["reason"] for r in reports for s in r["skipped"])

"""The ledger of a batch destination: what was done to each input, kept at DST/_gir/.

One small JSON object per input, ``DST/_gir/ledger/<sha256 of its relative path>.json``,
records the input's sha256 and change stamp, the task and model version, and the outputs (or
why it failed). Object stores have no append, so one object per input is what makes the ledger
crash-safe without locks: each entry is written whole (Location.write) and only *after* the
outputs it names, so after a kill -9 an input either has its entry (done, never redone) or has
none (redone, its outputs overwritten whole). Entries are never rewritten for the same content
and model, which is what "nothing processed twice" means.

A failed input's entry names the model version it failed with (None when no model could do
better: an input that is not a usable image), so a poison pill is tried once per model
version, not on every poll. Leases (below) let several replicas share one destination.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass

from gir.data.storage import Location

META_DIR = "_gir"
LEDGER_DIR = f"{META_DIR}/ledger"
REPORT = f"{META_DIR}/report.json"
DONE, FAILED = "done", "failed"
log = logging.getLogger("gir")


def entry_name(rel: str) -> str:
    """Where the entry of input rel lives, relative to the destination."""
    return f"{LEDGER_DIR}/{hashlib.sha256(rel.encode()).hexdigest()}.json"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Ledger:
    """The entries of one destination, read lazily and cached; `record` writes one through."""

    def __init__(self, dest: Location):
        self.dest = dest
        self.entries: dict[str, dict] = {}      # input rel -> entry
        self._stamps: dict[str, str] = {}       # entry object name -> stamp when last read
        self._names: dict[str, str] = {}        # entry object name -> input rel

    def refresh(self) -> "Ledger":
        """Bring the cache up to date: read the entries that are new or changed since the last
        refresh (another writer, or our own writes), forget the ones that were deleted."""
        listed = {s.rel: s.stamp for s in self.dest.list(LEDGER_DIR)}
        for name in set(self._names) - set(listed):
            self.entries.pop(self._names.pop(name), None)
            self._stamps.pop(name, None)
        changed = [n for n, stamp in listed.items() if self._stamps.get(n) != stamp]
        for name, data in self.dest.read_many(changed).items():
            self._take(name, data)
            self._stamps[name] = listed[name]
        return self

    def load(self, rels: list[str]) -> "Ledger":
        """Read just the entries of these inputs (an event names a few objects)."""
        names = {entry_name(r): r for r in rels}
        got = self.dest.read_many(list(names))
        for name, rel in names.items():
            if name in got:
                self._take(name, got[name])
            else:
                self.entries.pop(rel, None)
        return self

    def reload(self, rel: str) -> dict | None:
        """The entry of rel as it is now (another replica may have written it)."""
        return self.load([rel]).get(rel)

    def _take(self, name: str, data: bytes) -> None:
        try:
            entry = json.loads(data)
            rel = entry["input"]
        except (ValueError, KeyError, TypeError):
            return   # not ours: written whole, so never half an entry
        if entry_name(rel) == name:
            self.entries[rel] = entry
            self._names[name] = rel

    def get(self, rel: str) -> dict | None:
        return self.entries.get(rel)

    def record(self, entry: dict) -> None:
        """Write the entry of entry["input"] (after its outputs exist)."""
        entry = {**entry, "recorded": now()}
        name = entry_name(entry["input"])
        self.dest.write(name, json.dumps(entry, indent=1).encode())
        self.entries[entry["input"]] = entry
        self._names[name] = entry["input"]
        self._stamps.pop(name, None)   # re-read once on the next refresh: cheap, and exact

    def counts(self) -> dict[str, int]:
        out = {DONE: 0, FAILED: 0}
        for entry in self.entries.values():
            out[entry.get("status", FAILED)] = out.get(entry.get("status", FAILED), 0) + 1
        return out


# ----------------------------------------------------------------------------- leases

LEASE_DIR = f"{META_DIR}/leases"


def lease_name(rel: str) -> str:
    return f"{LEASE_DIR}/{hashlib.sha256(rel.encode()).hexdigest()}.json"


def new_owner() -> str:
    """A name for this worker that no other replica shares (host, pid and a random part)."""
    import socket
    import uuid

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Lease:
    """This worker's claim on one input until `expires` (epoch seconds); lost: another worker
    may hold it now (it expired before a renewal reached it, or the storage could not be
    reached to renew it before it expired)."""

    rel: str
    owner: str
    expires: float
    lost: bool = False


class Leases:
    """Claims on inputs, kept at DST/_gir/leases/: a replica claims an input before it reads
    it, and other replicas (watchers, the event endpoint) leave it alone until the claim is
    released or expires (a dead replica's claims expire after `seconds`). A claim is an
    exclusive create (S3 If-None-Match: *, O_EXCL on a folder), taking over an expired one is
    a conditional replace of that very version, and every claim is read back before work
    starts, which also covers an endpoint that ignores the conditions.

    While a claim is held, a heartbeat thread renews it every seconds/3 (a conditional
    replace of our own version with a later expiry), so a photo that takes longer than
    `seconds` is not taken over mid-work; the heartbeat ends with the last claim released,
    and only a dead (or stalled) replica's claims expire."""

    def __init__(self, dest: Location, seconds: float, owner: str | None = None):
        self.dest, self.seconds = dest, float(seconds)
        self.owner = owner or new_owner()
        self.held: dict[str, Lease] = {}
        self._cond = threading.Condition()
        self._renewing = threading.Lock()   # a release waits for a renewal in flight
        self._beat: threading.Thread | None = None

    def _body(self, rel: str, expires: float) -> bytes:
        return json.dumps({"input": rel, "owner": self.owner, "expires": expires,
                           "expires_utc": _utc(expires)}).encode()

    def claim(self, rel: str) -> tuple[Lease | None, str]:
        """(the lease, "") when this worker now holds rel, else (None, who holds it)."""
        name = lease_name(rel)
        lease = Lease(rel, self.owner, time.time() + self.seconds)
        body = self._body(rel, lease.expires)
        if not self.dest.create(name, body):
            got = self.dest.read_stamped(name)
            if got is not None:
                holder = _holder(got[0])
                if holder[1] > time.time() and holder[0] != self.owner:  # ours: a leftover
                    return None, f"{holder[0]} until {_utc(holder[1])}"
                if not self.dest.replace_if(name, body, got[1]):
                    return None, "another worker (it just took over an expired claim)"
            elif not self.dest.create(name, body):
                return None, "another worker"
        got = self.dest.read_stamped(name)     # the read-back check
        if got is None or _holder(got[0])[0] != self.owner:
            return None, (_holder(got[0])[0] if got else "another worker (claim vanished)")
        self._hold(lease)
        return lease, ""

    def renew(self, lease: Lease) -> bool:
        """Push the expiry of our claim `seconds` ahead, only if the claim is still ours (a
        conditional replace of the version we read). False, and lease.lost, when another
        worker holds it now; a storage error is raised (the next beat tries again)."""
        name = lease_name(lease.rel)
        got = self.dest.read_stamped(name)
        expires = time.time() + self.seconds
        if (got is None or _holder(got[0])[0] != self.owner
                or not self.dest.replace_if(name, self._body(lease.rel, expires), got[1],
                                            gapless=True)):
            lease.lost = True
            log.warning("gir: lost the claim on %s to another worker", lease.rel)
            return False
        lease.expires = expires
        return True

    def _hold(self, lease: Lease) -> None:
        with self._cond:
            self.held[lease.rel] = lease
            if self._beat is None:
                self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                              name="gir-lease-heartbeat")
                self._beat.start()

    def _heartbeat(self) -> None:
        """Renew the held claims every seconds/3, until none is held (or every one held is
        lost: a claim that could not be renewed before it expired is given up, since another
        worker may take it over from then on)."""
        period = max(0.02, self.seconds / 3)
        while True:
            with self._cond:
                self._cond.wait(period)
                due = [lease for lease in self.held.values() if not lease.lost]
                if not due:
                    self._beat = None
                    return
            for lease in due:
                with self._renewing:
                    if self.held.get(lease.rel) is not lease:   # released meanwhile
                        continue
                    try:
                        self.renew(lease)
                    except Exception as exc:  # noqa: BLE001 - the endpoint: next beat again
                        if time.time() >= lease.expires:
                            lease.lost = True
                            log.warning("gir: lost the claim on %s: it expired while the "
                                        "storage could not be reached (%s)", lease.rel, exc)
                        else:
                            log.warning("gir: cannot renew the claim on %s: %s",
                                        lease.rel, exc)

    def release(self, lease: Lease | None) -> None:
        """Give rel back (after its ledger entry, or when it was not processed); only our own
        claim is removed, never a claim another worker took over after ours expired."""
        if lease is None:
            return
        with self._renewing, self._cond:
            if self.held.get(lease.rel) is lease:
                del self.held[lease.rel]
        name = lease_name(lease.rel)
        try:
            got = self.dest.read_stamped(name)
            if got is not None and _holder(got[0])[0] == self.owner:
                self.dest.delete(name)
        except Exception:  # noqa: BLE001 - an unreleased claim only expires later
            pass


def _holder(data: bytes) -> tuple[str, float]:
    """(owner, expiry) of a lease object; an unreadable one (a killed write) counts as
    expired."""
    try:
        got = json.loads(data)
        return str(got["owner"]), float(got["expires"])
    except (ValueError, KeyError, TypeError):
        return "?", 0.0


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

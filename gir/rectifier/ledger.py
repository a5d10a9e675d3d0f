"""The ledger of a batch destination: what was done to each input, kept at DST/_gir/.

One small JSON object per input, ``DST/_gir/ledger/<sha256 of its relative path>.json``,
records the input's sha256 and change stamp, the task and model version, and the outputs (or
why it failed). Object stores have no append, so one object per input is what makes the ledger
crash-safe without locks: each entry is written whole (Location.write) and only *after* the
outputs it names, so after a kill -9 an input either has its entry (done, never redone) or has
none (redone, its outputs overwritten whole). Entries are never rewritten for the same content
and model, which is what "nothing processed twice" means.
"""

from __future__ import annotations

import hashlib
import json
import time

from gir.data.storage import Location

META_DIR = "_gir"
LEDGER_DIR = f"{META_DIR}/ledger"
REPORT = f"{META_DIR}/report.json"
DONE, FAILED = "done", "failed"


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

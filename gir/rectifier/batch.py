"""Batch rectification: a folder or s3:// prefix in, a folder or prefix out, resumable.

`gir rectify|deblur SRC -o DST` (with a folder, a prefix or an s3:// destination), `gir watch`,
the S3-event endpoint of `gir serve` and the Kubeflow `gir-rectify` shards all run
:func:`run_batch`; it knows nothing of where the model comes from (it is handed a loader that
returns the model and its version string).

For each input (its path relative to SRC is `rel`) it writes ``DST/<rel>.png`` and, for
rectify, ``DST/<rel>.json`` with the decisions, then the input's ledger entry (see ledger.py),
and at the end ``DST/_gir/report.json``: what was written, failed (and why), skipped (and why),
and the model version. An input is processed when the ledger has no entry for it, or its
content changed (a new stamp is checked against the recorded sha256, so a touched but
unchanged file is not redone), or, with reprocess, when its entry names another model or task.
Inputs are only read. Reads are prefetched and writes overlapped on a few threads; each
input's writes stay in order (outputs, then its ledger entry).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Callable

from gir.data.imageio import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, encode_png
from gir.data.storage import (Location, Stat, check_destination, is_hidden, list_source,
                              safe_rel, split_source)
from gir.errors import BadImageError, GirError
from gir.rectifier.deblur import render
from gir.rectifier.ledger import DONE, FAILED, META_DIR, REPORT, Ledger, now

TASKS = ("rectify", "deblur")
WORKERS = 4


class ModelSlot:
    """The model, loaded on first need and kept; load() returns (deblurrer, version string)."""

    def __init__(self, load: Callable[[], tuple[Callable, str]]):
        self._load = load
        self._lock = threading.Lock()
        self.model = None
        self.version: str | None = None

    def get(self):
        with self._lock:
            if self.model is None:
                self.model, self.version = self._load()
                if hasattr(self.model, "progress"):
                    self.model.progress = False   # no tile bars in batch logs
            return self.model


def as_slot(model) -> ModelSlot:
    return model if isinstance(model, ModelSlot) else ModelSlot(model)


@dataclass
class Item:
    source: Location
    rel: str
    stat: Stat
    entry: dict | None = None

    @property
    def url(self) -> str:
        return self.source.url_of(self.rel)


@dataclass
class Plan:
    """What a batch will do: the inputs to process, and the ones it will not (with reasons)."""

    dest: Location
    ledger: Ledger
    todo: list[Item] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    listed: int = 0


def outputs_of(rel: str, task: str) -> list[str]:
    """DST-relative outputs of input rel: <rel>.png (+ <rel>.json for rectify)."""
    return [f"{rel}.png"] + ([f"{rel}.json"] if task == "rectify" else [])


def supported(rel: str) -> bool:
    return PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES


def is_current(entry: dict, task: str, reprocess: bool, version: str | None) -> bool:
    """Whether an entry for the same content still stands: same task, and with reprocess, the
    same model (a failure that no model could fix, model None, always stands)."""
    if entry.get("task") != task:
        return not reprocess
    return not reprocess or entry.get("model") in (None, version)


def _unchanged_reason(entry: dict) -> str:
    if entry.get("status") == DONE:
        return f"unchanged; done {entry.get('recorded', '')} with {entry.get('model')}"
    return f"unchanged; failed before: {entry.get('reason')}"


def check_task(task: str) -> None:
    if task not in TASKS:
        raise GirError(f"task {task!r}: expected one of {', '.join(TASKS)}")


def plan(sources: list[str], dest: str | Location, task: str = "rectify",
         model: ModelSlot | None = None, *, reprocess: bool = False,
         only: list[str] | None = None, ledger: Ledger | None = None) -> Plan:
    """List the inputs (all of each source, or just the `only` rels of a single source), read
    the ledger, and decide per input. With reprocess the model is loaded to learn its version."""
    check_task(task)
    dest = ledger.dest if ledger else dest if isinstance(dest, Location) else Location(dest)
    ledger = ledger or Ledger(dest)
    if not sources:
        raise GirError("no inputs given")
    if only is not None and len(sources) != 1:
        raise GirError("named inputs need exactly one source")
    check_destination(dest)
    p = Plan(dest, ledger)
    items: dict[str, Item] = {}
    for src in sources:
        loc, rels = split_source(str(src))
        if only is not None:
            rels = list(only)
        if rels is None:
            if loc.contains(dest):
                raise GirError(f"the destination {dest.url} is inside the source {loc.url}: "
                               "outputs would become inputs; pick a destination outside it")
            try:
                stats = list_source(loc, str(src))
            except GirError as exc:   # this source only: the others are still processed
                p.failed.append({"input": str(src), "reason": str(exc).removeprefix(
                    f"cannot list {src}: ")})
                stats = []
        else:
            stats = []
            for rel in rels:
                st = loc.stat(rel) if safe_rel(rel) and not is_hidden(rel) else None
                if st is None:
                    why = ("unsafe name (empty, '.' or '..' parts)" if not safe_rel(rel)
                           else "hidden name" if is_hidden(rel) else "no such file or object")
                    p.failed.append({"input": loc.url_of(rel) if safe_rel(rel) else rel,
                                     "reason": why})
                else:
                    stats.append(st)
        p.listed += len(stats)
        for st in stats:
            item = Item(loc, st.rel, st)
            if not safe_rel(st.rel):
                p.failed.append({"input": item.url, "reason": "unsafe name ('.' or '..' parts)"})
            elif st.rel in items:
                p.skipped.append({"input": item.url, "reason": f"same relative path as "
                                                               f"{items[st.rel].url}"})
            else:
                items[st.rel] = item
    if only is not None:
        ledger.load(list(items))
    else:
        ledger.refresh()
    version = None
    if reprocess and any(ledger.get(rel) for rel in items):
        model.get()
        version = model.version
    for rel, item in items.items():
        item.entry = ledger.get(rel)
        if (item.entry and item.entry.get("stamp") == item.stat.stamp
                and is_current(item.entry, task, reprocess, version)):
            p.skipped.append({"input": item.url, "reason": _unchanged_reason(item.entry)})
        else:
            p.todo.append(item)
    return p


def run_batch(sources: list[str], dest: str | Location, task: str, model, detector=None, *,
              reprocess: bool = False, only: list[str] | None = None, limit: int | None = None,
              stop: threading.Event | None = None, ledger: Ledger | None = None,
              max_pixels: int = DEFAULT_MAX_PIXELS, workers: int = WORKERS,
              report_name: str | None = REPORT, write_report: bool | None = True,
              progress: bool = False) -> dict:
    """Process what the plan says (at most `limit` inputs; stop early when `stop` is set) and
    return the run report, also written to DST/report_name (write_report None: only when
    something was written or failed). model: a ModelSlot or a loader returning
    (deblurrer, version); detector: a loaded Detector (rectify only)."""
    slot = as_slot(model)
    started, t0 = now(), time.perf_counter()
    p = plan(sources, dest, task, slot, reprocess=reprocess, only=only, ledger=ledger)
    todo = p.todo if limit is None else p.todo[:limit]
    written, failed, skipped = [], list(p.failed), list(p.skipped)
    done = process(todo, p, task, slot, detector, reprocess, written, failed, skipped,
                   stop=stop, max_pixels=max_pixels, workers=workers, progress=progress)
    seconds = time.perf_counter() - t0
    report = {
        "task": task, "sources": [str(s) for s in sources], "dest": p.dest.url,
        "model": slot.version, "started": started, "finished": now(),
        "seconds": round(seconds, 3),
        "images_per_second": round(len(written) / seconds, 3) if seconds > 0 else None,
        "counts": {"listed": p.listed, "written": len(written), "failed": len(failed),
                   "skipped": len(skipped), "pending": len(p.todo) - done},
        "written": written, "failed": failed, "skipped": skipped}
    if report_name and (write_report or (write_report is None and (written or failed))):
        p.dest.write(report_name, json.dumps(report, indent=1).encode())
    return report


def process(todo: list[Item], p: Plan, task: str, slot: ModelSlot, detector, reprocess: bool,
            written: list, failed: list, skipped: list, *, stop=None,
            max_pixels: int = DEFAULT_MAX_PIXELS, workers: int = WORKERS,
            progress: bool = False) -> int:
    """Run the items through the model; returns how many were taken (the rest is pending)."""
    from tqdm import tqdm

    from gir.rectifier.rectify import Rectifier

    rectifier = Rectifier(slot.get, detector) if task == "rectify" else None
    ahead = max(2, 2 * workers)
    taken = 0
    lock = threading.Lock()

    def finish(fut: Future, item: Item, outcome: dict, entry: dict) -> None:
        """After the writes of one item: file it under written / failed / skipped."""
        try:
            fut.result()
        except Exception as exc:  # noqa: BLE001 - a write that failed: not ledgered, retried
            with lock:
                failed.append({"input": item.url, "reason": _one_line(exc)})
            return
        with lock:
            {"written": written, "failed": failed, "skipped": skipped}[outcome.pop("_as")].append(
                outcome)

    with ThreadPoolExecutor(workers, thread_name_prefix="gir-read") as readers, \
            ThreadPoolExecutor(workers, thread_name_prefix="gir-write") as writers:
        reads: deque[tuple[Item, Future | None]] = deque()
        inflight: deque[tuple[Future, Item, dict, dict]] = deque()
        queue = iter(todo)

        def fill():
            while len(reads) < ahead:
                item = next(queue, None)
                if item is None:
                    return
                reads.append((item, readers.submit(item.source.read, item.rel)
                              if supported(item.rel) else None))

        def write(item: Item, files: dict[str, bytes], entry: dict, outcome: dict):
            def job():
                for rel, data in files.items():
                    p.dest.write(rel, data)
                p.ledger.record(entry)
            fut = writers.submit(job)
            inflight.append((fut, item, outcome, entry))
            while len(inflight) > ahead or (inflight and inflight[0][0].done()):
                finish(*inflight.popleft())

        bar = tqdm(total=len(todo), desc=task, unit="img", disable=not progress)
        fill()
        while reads:
            if stop is not None and stop.is_set():
                for _, fut in reads:
                    if fut is not None:
                        fut.cancel()
                break
            item, fut = reads.popleft()
            fill()
            taken += 1
            bar.update()
            base = {"input": item.rel, "source": item.source.url, "stamp": item.stat.stamp,
                    "size": item.stat.size, "task": task}
            if fut is None:
                reason = (f"unsupported format {PurePosixPath(item.rel).suffix or '(none)'!r} "
                          f"(supported: {', '.join(sorted(IMAGE_SUFFIXES))})")
                write(item, {}, {**base, "status": FAILED, "sha256": None, "model": None,
                                 "reason": reason},
                      {"_as": "failed", "input": item.url, "reason": reason})
                continue
            try:
                data = fut.result()
            except FileNotFoundError:
                failed.append({"input": item.url, "reason": "gone before it could be read"})
                continue
            except Exception as exc:  # noqa: BLE001 - network, permissions: retried next run
                failed.append({"input": item.url, "reason": f"cannot read: {_one_line(exc)}"})
                continue
            sha = hashlib.sha256(data).hexdigest()
            entry = item.entry
            if entry and entry.get("sha256") == sha and is_current(
                    entry, task, reprocess, slot.version if reprocess else None):
                # Touched, not changed: keep the entry, with the new stamp, and do nothing.
                write(item, {}, {**entry, "stamp": item.stat.stamp},
                      {"_as": "skipped", "input": item.url,
                       "reason": "unchanged content; " + _unchanged_reason(entry)})
                continue
            base["sha256"] = sha
            try:
                deblurrer = slot.get()
                if rectifier is None:
                    out, report = render(data, item.url, deblurrer, max_pixels), None
                else:
                    holder = {}

                    def decide(rgb, item=item, holder=holder):
                        img, holder["report"] = rectifier.decide(
                            rgb, item.url, p.dest.url_of(f"{item.rel}.png"))
                        return img
                    out = render(data, item.url, decide, max_pixels)
                    report = holder["report"]
                png = encode_png(out)
            except BadImageError as exc:   # the input itself: no model would do better
                reason = str(exc).removeprefix(f"{item.url}: ")
                write(item, {}, {**base, "status": FAILED, "model": None, "reason": reason},
                      {"_as": "failed", "input": item.url, "reason": reason})
                continue
            except GirError as exc:        # the model on this input: retried with another
                if slot.model is None:
                    raise                  # no model at all: nothing in the batch can run
                reason = str(exc)
                write(item, {}, {**base, "status": FAILED, "model": slot.version,
                                 "reason": reason},
                      {"_as": "failed", "input": item.url, "reason": reason})
                continue
            outs = outputs_of(item.rel, task)
            files = {outs[0]: png}
            if report is not None:
                report["model"] = slot.version
                files[outs[1]] = json.dumps(report, indent=1).encode()
            action = report["action"] if report else "deblurred"
            write(item, files, {**base, "status": DONE, "model": slot.version, "outputs": outs,
                                "action": action},
                  {"_as": "written", "input": item.url,
                   "outputs": [p.dest.url_of(o) for o in outs], "action": action,
                   "pixels": int(out.shape[0] * out.shape[1])})
        while inflight:
            finish(*inflight.popleft())
        bar.close()
    return taken


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, GirError) else text


# ----------------------------------------------------------------------------- shards

def run_dir(run_id: str) -> str:
    """Where one fan-out run keeps its plan and shard reports, relative to DST."""
    return f"{META_DIR}/runs/{run_id}"


def shard_report_name(run_id: str, index: int) -> str:
    return f"{run_dir(run_id)}/shard-{int(index):04d}.json"


def plan_shards(source: str, dest: str, shards: int, task: str, model, *,
                reprocess: bool = False, run_id: str | None = None) -> list[dict]:
    """Split what a batch would process into at most `shards` lists of rels (for a fan-out).
    With run_id, the plan report (what is skipped and why) goes to DST/<run_dir>/plan.json."""
    if shards < 1:
        raise GirError(f"shards: expected at least 1, got {shards}")
    p = plan([source], dest, task, as_slot(model), reprocess=reprocess)
    rels = [item.rel for item in p.todo]
    n = min(shards, len(rels))
    out = [{"index": i, "inputs": rels[i::n]} for i in range(n)]
    report = {"task": task, "sources": [source], "dest": p.dest.url, "planned": now(),
              "counts": {"listed": p.listed, "todo": len(rels), "skipped": len(p.skipped),
                         "failed": len(p.failed), "shards": n},
              "skipped": p.skipped, "failed": p.failed}
    if run_id:
        p.dest.write(f"{run_dir(run_id)}/plan.json", json.dumps(report, indent=1).encode())
    return out


def merge_reports(dest: str, run_id: str, report_name: str | None = REPORT) -> dict:
    """One report, DST/_gir/report.json, from a fan-out run's plan and shard reports."""
    loc = Location(dest)
    parts = [json.loads(data) for data in loc.read_many(
        [s.rel for s in loc.list(run_dir(run_id)) if s.rel.endswith(".json")]).values()]
    shards = [r for r in parts if "written" in r]
    plan_part = next((r for r in parts if "planned" in r), {})
    merged = {"task": plan_part.get("task") or next((r["task"] for r in shards), None),
              "sources": plan_part.get("sources", []), "dest": loc.url,
              "model": sorted({r["model"] for r in shards if r.get("model")}) or None,
              "shards": len(shards), "finished": now(),
              "written": [w for r in shards for w in r["written"]],
              "failed": plan_part.get("failed", []) + [f for r in shards for f in r["failed"]],
              "skipped": plan_part.get("skipped", []) + [s for r in shards for s in r["skipped"]]}
    if isinstance(merged["model"], list) and len(merged["model"]) == 1:
        merged["model"] = merged["model"][0]
    merged["counts"] = {k: len(merged[k]) for k in ("written", "failed", "skipped")}
    if report_name:
        loc.write(report_name, json.dumps(merged, indent=1).encode())
    return merged


# ----------------------------------------------------------------------------- watch

def watch(sources: list[str], dest: str, task: str, model, detector=None, *,
          interval: float = 10.0, batch_size: int = 64, reprocess: bool = False,
          stop: threading.Event | None = None, log: Callable[[str], None] = print,
          max_pixels: int = DEFAULT_MAX_PIXELS, workers: int = WORKERS,
          max_batches: int | None = None) -> int:
    """Poll the sources and process new arrivals in batches of at most batch_size, until stop
    is set (SIGTERM in `gir watch`); a backlog is worked through batch after batch without
    waiting. One log line per batch. Returns the number of inputs written."""
    from gir.data.storage import missing_reason

    stop = stop or threading.Event()
    for src in sources:   # a wrong source is a typo, not an empty prefix to wait on
        if split_source(str(src))[1] is None and (why := missing_reason(str(src))):
            raise GirError(f"cannot watch {src}: {why}")
    slot, ledger = as_slot(model), Ledger(Location(dest))
    total, batches, first = 0, 0, True
    while not stop.is_set():
        try:
            report = run_batch(sources, dest, task, slot, detector, reprocess=reprocess,
                               limit=batch_size, stop=stop, ledger=ledger,
                               max_pixels=max_pixels, workers=workers, write_report=None)
        except GirError as exc:
            if first:
                raise            # a wrong source/destination: say so and stop
            log(f"watch: batch failed: {exc}; retrying in {interval:g} s")
            stop.wait(interval)
            continue
        except Exception as exc:  # noqa: BLE001 - a store that is down: keep watching
            log(f"watch: batch failed: {_one_line(exc)}; retrying in {interval:g} s")
            stop.wait(interval)
            continue
        c = report["counts"]
        if c["written"] or c["failed"] or first:
            batches += 1
            log(f"watch: batch {batches}: {c['written']} written, {c['failed']} failed, "
                f"{c['skipped']} unchanged, {c['pending']} pending; "
                f"{report['images_per_second'] or 0:.1f} img/s in {report['seconds']:.1f} s")
            for f in report["failed"]:
                log(f"watch: failed {f['input']}: {f['reason']}")
        first = False
        total += c["written"]
        if max_batches is not None and batches >= max_batches:
            break
        if c["pending"] == 0:
            stop.wait(interval)
    return total


"""Batch rectification: a folder or s3:// prefix in, a folder or prefix out, resumable.

`gir rectify|deblur SRC -o DST`, `gir watch`, the S3-event endpoint of `gir serve` and the
Kubeflow `gir-rectify` shards all run :func:`run_batch`; it knows nothing of where the model
comes from (it is handed a loader that returns the model and its version string).

For each input (its path relative to SRC is `rel`) it writes ``DST/<rel>.png`` and, for
rectify, ``DST/<rel>.json`` with the decisions, then the input's ledger entry (see ledger.py),
and at the end ``DST/_gir/report.json``: what was written, failed (and why), skipped (and why),
what was not processed, and the model version. An input is processed when the ledger has no
entry for it, or its content changed (a new stamp is checked against the recorded sha256), or,
with reprocess, when its entry names another model or task; an input that failed with a model
is tried again only with another model version.

Three parts, so that one photo can never stop the others:
- the prefetcher claims each input (a lease, so that replicas share the work) and reads it;
- :func:`handle` turns one input's bytes into a typed outcome (Written, Failed, Skipped),
  catching every exception of that photo, and writes nothing;
- the ordered writer writes each outcome's files, then its ledger entry, then gives the
  lease back.
Every remote call has timeouts (storage.Timeouts), the batch has an optional deadline, and a
run of storage errors stops it; the photos it did not get to are named in the report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Callable

from gir.data.imageio import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, encode_png, write_bytes_atomic
from gir.data.storage import (
    Location,
    Stat,
    check_destination,
    is_hidden,
    list_source,
    one_line,
    safe_rel,
    split_source,
)
from gir.errors import BadImageError, GirError
from gir.rectifier.deblur import MIN_SIDE, check_side, render
from gir.rectifier.ledger import DONE, FAILED, META_DIR, REPORT, Lease, Leases, Ledger, now

log = logging.getLogger("gir")
TASKS = ("rectify", "deblur")
WORKERS = 4


@dataclass
class BatchOptions:
    """How one batch runs; the defaults are params.yaml's batch section (gir.config.schema)."""

    reprocess: bool = False
    only: list[str] | None = None          # just these rels of the single source (events)
    limit: int | None = None               # at most this many inputs (a watch batch)
    stop: threading.Event | None = None    # set: finish the current input, then stop
    ledger: Ledger | None = None           # a cached ledger (watch keeps one)
    leases: Leases | None = None           # this worker's claims (watch keeps one)
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = MIN_SIDE               # smaller photos fail with a reason, not a crash
    workers: int = WORKERS
    report_name: str | None = REPORT
    write_report: bool | None = True       # None: only when something was written or failed
    progress: bool = False
    deadline_s: float = 0.0                # 0: none
    lease_s: float = 600.0
    temp_max_age_s: float = 3600.0         # 0: never sweep leftover temp files
    storage_errors_to_stop: int = 3        # storage errors in a row that stop the batch
    fallback_dir: str = "."                # the report goes here when DST cannot take it


class ModelSlot:
    """The model, loaded on first need and kept; load() returns (deblurrer, version string).
    A load that failed is kept in load_error: no input of the batch can run without it."""

    def __init__(self, load: Callable[[], tuple[Callable, str]]):
        self._load = load
        self._lock = threading.Lock()
        self.model = None
        self.version: str | None = None
        self.load_error: BaseException | None = None

    def get(self):
        with self._lock:
            if self.load_error is not None:
                raise self.load_error
            if self.model is None:
                try:
                    self.model, self.version = self._load()
                except BaseException as exc:
                    self.load_error = exc
                    raise
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


# ----------------------------------------------------------------------------- outcomes

@dataclass
class Written:
    """An input whose outputs are ready to be written (files), then its ledger entry."""

    input: str
    outputs: list[str]
    action: str
    pixels: int
    files: dict[str, bytes] = field(repr=False)
    entry: dict = field(repr=False)

    def row(self) -> dict:
        return {"input": self.input, "outputs": self.outputs, "action": self.action,
                "pixels": self.pixels}


@dataclass
class Failed:
    """An input that could not be done, and why; with an entry, the failure is ledgered (not
    retried until its content or the model changes), without one it is retried next run."""

    input: str
    reason: str
    entry: dict | None = field(default=None, repr=False)
    storage: bool = False                  # a storage error (counts towards stopping)

    def row(self) -> dict:
        return {"input": self.input, "reason": self.reason}


@dataclass
class Skipped:
    """An input left alone (unchanged, or claimed by another worker), and why."""

    input: str
    reason: str
    entry: dict | None = field(default=None, repr=False)

    def row(self) -> dict:
        return {"input": self.input, "reason": self.reason}


Outcome = Written | Failed | Skipped
KIND = {Written: "written", Failed: "failed", Skipped: "skipped"}


@dataclass
class Plan:
    """What a batch will do: the inputs to process, and the ones it will not (with reasons)."""

    dest: Location
    ledger: Ledger
    todo: list[Item] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    listed: int = 0


def outputs_of(rel: str, task: str) -> list[str]:
    """DST-relative outputs of input rel: <rel>.png (+ <rel>.json for rectify)."""
    return [f"{rel}.png"] + ([f"{rel}.json"] if task == "rectify" else [])


def supported(rel: str) -> bool:
    return PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES


def is_current(entry: dict, task: str, reprocess: bool, version: str | None) -> bool:
    """Whether an entry for the same content still stands: same task; a failure with a model
    stands for that model version only (a poison pill is tried once per version); with
    reprocess, the same model (a failure no model could fix, model None, always stands)."""
    if entry.get("task") != task:
        return not reprocess
    if entry.get("status") == FAILED and entry.get("model") is not None:
        return entry.get("model") == version
    return not reprocess or entry.get("model") in (None, version)


def _needs_version(entry: dict | None, reprocess: bool) -> bool:
    return bool(entry) and (reprocess or (entry.get("status") == FAILED
                                          and entry.get("model") is not None))


def _unchanged_reason(entry: dict) -> str:
    if entry.get("status") == DONE:
        return f"unchanged; done {entry.get('recorded', '')} with {entry.get('model')}"
    return f"unchanged; failed before: {entry.get('reason')}"


def check_task(task: str) -> None:
    if task not in TASKS:
        raise GirError(f"task {task!r}: expected one of {', '.join(TASKS)}")


def _named_stats(loc: Location, rels: list[str], p: Plan) -> list[Stat]:
    """The stats of the named rels of one location; the missing ones fail, one line each."""
    stats = []
    for rel in rels:
        st = loc.stat(rel) if safe_rel(rel) and not is_hidden(rel) else None
        if st is not None:
            stats.append(st)
            continue
        why = ("unsafe name (empty, '.' or '..' parts)" if not safe_rel(rel)
               else "hidden name" if is_hidden(rel) else loc.why_not(rel))
        p.failed.append(Failed(loc.url_of(rel) if safe_rel(rel) else rel, why))
    return stats


def _source_stats(src: str, dest: Location, p: Plan, only: list[str] | None) -> tuple[
        Location, list[Stat]]:
    """One source's files; what cannot be listed is a failure of that entry or source only."""
    loc, rels = split_source(str(src))
    if only is not None:
        rels = list(only)
    if rels is not None:
        return loc, _named_stats(loc, rels, p)
    if loc.contains(dest):
        raise GirError(f"the destination {dest.url} is inside the source {loc.url}: "
                       "outputs would become inputs; pick a destination outside it")
    try:
        listing = list_source(loc, str(src))
    except GirError as exc:   # this source only: the others are still processed
        p.failed.append(Failed(str(src), str(exc).removeprefix(f"cannot list {src}: ")))
        return loc, []
    p.failed += [Failed(loc.url_of(rel), why) for rel, why in listing.failed]
    p.skipped += [Skipped(loc.url_of(rel), why) for rel, why in listing.skipped]
    return loc, listing.files


def plan(sources: list[str], dest: str | Location, task: str = "rectify",
         model: ModelSlot | None = None, *, reprocess: bool = False,
         only: list[str] | None = None, ledger: Ledger | None = None) -> Plan:
    """List the inputs (all of each source, or just the `only` rels of a single source), read
    the ledger, and decide per input. The model is loaded to learn its version only when an
    entry's fate depends on it (reprocess, or an earlier failure with a model)."""
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
        loc, stats = _source_stats(src, dest, p, only)
        p.listed += len(stats)
        for st in stats:
            item = Item(loc, st.rel, st)
            if not safe_rel(st.rel):
                p.failed.append(Failed(item.url, "unsafe name ('.' or '..' parts)"))
            elif st.rel in items:
                p.skipped.append(Skipped(item.url, f"same relative path as {items[st.rel].url}"))
            else:
                items[st.rel] = item
    ledger.load(list(items)) if only is not None else ledger.refresh()
    version = None
    if any(_needs_version(ledger.get(rel), reprocess) for rel in items):
        model.get()
        version = model.version
    for rel, item in items.items():
        item.entry = ledger.get(rel)
        if (item.entry and item.entry.get("stamp") == item.stat.stamp
                and is_current(item.entry, task, reprocess, version)):
            p.skipped.append(Skipped(item.url, _unchanged_reason(item.entry)))
        else:
            p.todo.append(item)
    return p


# ----------------------------------------------------------------------------- running

@dataclass
class Run:
    """One batch in progress: its plan, model, options, claims, deadline and outcomes."""

    plan: Plan
    task: str
    slot: ModelSlot
    detector: object
    opts: BatchOptions
    leases: Leases
    deadline: float | None                       # time.monotonic() value, or None
    outcomes: list[Outcome] = field(default_factory=list)
    storage_errors: int = 0                      # in a row
    stopped: str = ""                            # why it stopped early ("" = it did not)
    rectifier: object = None

    def left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def should_stop(self) -> bool:
        if self.opts.stop is not None and self.opts.stop.is_set():
            self.stopped = self.stopped or "stopped"
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped = self.stopped or f"deadline of {self.opts.deadline_s:g} s reached"
        return bool(self.stopped)

    def file(self, outcome: Outcome) -> None:
        """Keep an outcome; a run of storage errors (an endpoint down, a full disk) stops."""
        self.outcomes.append(outcome)
        if isinstance(outcome, Failed) and outcome.storage:
            self.storage_errors += 1
            if self.storage_errors >= self.opts.storage_errors_to_stop and not self.stopped:
                self.stopped = (f"{self.storage_errors} storage errors in a row "
                                f"(last: {outcome.reason})")
        elif isinstance(outcome, Written):
            self.storage_errors = 0


def run_batch(sources: list[str], dest: str | Location, task: str, model, detector=None,
              options: BatchOptions | None = None, **overrides) -> dict:
    """Process what the plan says and return the run report, also written to
    DST/report_name (or, when DST cannot take it, to fallback_dir). model: a ModelSlot or a
    loader returning (deblurrer, version); detector: a loaded Detector (rectify only);
    options (and keyword overrides of its fields): see BatchOptions."""
    opts = replace(options or BatchOptions(), **overrides)
    slot = as_slot(model)
    started, t0 = now(), time.perf_counter()
    deadline = time.monotonic() + opts.deadline_s if opts.deadline_s > 0 else None
    grace = min(5.0, opts.deadline_s / 10)     # of the deadline, kept for the report
    p = bounded(lambda: plan(sources, dest, task, slot, reprocess=opts.reprocess,
                             only=opts.only, ledger=opts.ledger),
                None if deadline is None else deadline - time.monotonic(),
                f"listing {', '.join(map(str, sources))}")
    swept = p.dest.sweep_temp(opts.temp_max_age_s) if opts.temp_max_age_s > 0 else []
    leases = opts.leases or Leases(p.dest, opts.lease_s)
    run = Run(p, task, slot, detector, opts, leases, deadline and deadline - grace)
    todo = p.todo if opts.limit is None else p.todo[:opts.limit]
    taken = process(todo, run)
    report = batch_report(run, sources, started, time.perf_counter() - t0,
                          [i.url for i in todo[taken:]])
    report["counts"]["pending"] = len(p.todo) - taken
    report["swept"] = swept
    worked = any(not isinstance(o, Skipped) for o in run.outcomes)   # not listing alone
    if opts.report_name and (opts.write_report or (opts.write_report is None and worked)):
        save_report(report, run, deadline)
    return report


def batch_report(run: Run, sources: list[str], started: str, seconds: float,
                 not_processed: list[str]) -> dict:
    """The run report: one layout for files, folders and prefixes alike."""
    rows: dict[str, list[dict]] = {"written": [], "failed": [], "skipped": []}
    for outcome in [*run.plan.failed, *run.plan.skipped, *run.outcomes]:
        rows[KIND[type(outcome)]].append(outcome.row())
    return {
        "task": run.task, "sources": [str(s) for s in sources], "dest": run.plan.dest.url,
        "model": run.slot.version, "started": started, "finished": now(),
        "seconds": round(seconds, 3),
        "images_per_second": round(len(rows["written"]) / seconds, 3) if seconds > 0 else None,
        "counts": {"listed": run.plan.listed, **{k: len(v) for k, v in rows.items()},
                   "not_processed": len(not_processed)},
        **rows, "stopped": run.stopped or None, "not_processed": not_processed}


def save_report(report: dict, run: Run, deadline: float | None) -> None:
    """Write the report to DST, by the deadline; when that fails (endpoint down, disk full),
    to fallback_dir, and say where it went in report["report"] (or why nowhere in
    report["report_error"])."""
    data = json.dumps(report, indent=1).encode()
    dest, name = run.plan.dest, run.opts.report_name
    left = None if deadline is None else max(1.0, deadline - time.monotonic())
    try:
        bounded(lambda: dest.write(name, data), left, f"writing {dest.url_of(name)}")
        report["report"] = dest.url_of(name)
        return
    except Exception as exc:  # noqa: BLE001 - the report must not be lost with the endpoint
        why = one_line(exc)
    local = Path(run.opts.fallback_dir) / f"gir-report-{time.strftime('%Y%m%dT%H%M%S')}.json"
    try:
        write_bytes_atomic(local, data)
        report["report"], report["report_error"] = str(local), why
    except OSError as exc:
        report["report"], report["report_error"] = None, f"{why}; locally: {one_line(exc)}"


def bounded(fn: Callable, seconds: float | None, what: str):
    """fn() in a daemon thread, given up after `seconds` (None: no limit) with one GirError
    line: a remote call that hangs despite its timeouts cannot hold a deadline hostage."""
    if seconds is None:
        return fn()
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc
    thread = threading.Thread(target=target, daemon=True, name="gir-bounded")
    thread.start()
    thread.join(max(0.0, seconds))
    if thread.is_alive():
        raise GirError(f"deadline: {what} did not finish in time")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ----------------------------------------------------------------------------- the three parts

def fetch(item: Item, run: Run) -> tuple[Lease | None, bytes | Outcome]:
    """Claim one input, check it was not done meanwhile, and read it (a prefetch thread):
    (the lease, the bytes), or (None, the outcome that makes reading it moot)."""
    if not supported(item.rel):
        reason = (f"unsupported format {PurePosixPath(item.rel).suffix or '(none)'!r} "
                  f"(supported: {', '.join(sorted(IMAGE_SUFFIXES))})")
        return None, Failed(item.url, reason, {**_base(item, run.task), "status": FAILED,
                                               "sha256": None, "model": None,
                                               "reason": reason})
    try:
        lease, holder = run.leases.claim(item.rel)
    except Exception as exc:  # noqa: BLE001 - the destination is unreachable: retried next run
        return None, Failed(item.url, f"cannot claim: {one_line(exc)}", storage=True)
    if lease is None:
        return None, Skipped(item.url, f"being processed by {holder}")
    try:
        entry = run.plan.ledger.reload(item.rel)    # done by another worker meanwhile?
        if (entry and entry != item.entry and entry.get("status") == DONE
                and entry.get("stamp") == item.stat.stamp and entry.get("task") == run.task):
            run.leases.release(lease)
            return None, Skipped(item.url, "done meanwhile by another worker")
        item.entry = entry or item.entry
        return lease, item.source.read(item.rel)
    except FileNotFoundError:
        run.leases.release(lease)
        return None, Failed(item.url, "gone before it could be read")
    except Exception as exc:  # noqa: BLE001 - network, permissions: retried next run
        run.leases.release(lease)
        return None, Failed(item.url, f"cannot read: {one_line(exc)}",
                            storage=item.source.remote)


def _base(item: Item, task: str) -> dict:
    return {"input": item.rel, "source": item.source.url, "stamp": item.stat.stamp,
            "size": item.stat.size, "task": task}


def handle(item: Item, data: bytes, run: Run) -> Outcome:
    """One input's bytes to its outcome; writes nothing. Any exception of this photo is its
    failure: an input no model can use (BadImageError) is ledgered with model None, anything
    else (a detector or model crash) with the model version, to be tried again with another."""
    sha = hashlib.sha256(data).hexdigest()
    entry = item.entry
    if entry and entry.get("sha256") == sha and is_current(
            entry, run.task, run.opts.reprocess, _version_for(entry, run)):
        # Touched, not changed: keep the entry, with the new stamp, and do nothing.
        return Skipped(item.url, "unchanged content; " + _unchanged_reason(entry),
                       {**entry, "stamp": item.stat.stamp})
    base = {**_base(item, run.task), "sha256": sha}
    try:
        out, report = transform(data, item, run)
        png = encode_png(out)
    except BadImageError as exc:   # the input itself: no model would do better
        reason = str(exc).removeprefix(f"{item.url}: ")
        return Failed(item.url, reason, {**base, "status": FAILED, "model": None,
                                         "reason": reason})
    except Exception as exc:  # noqa: BLE001 - a poison pill: this photo's failure only
        if run.slot.load_error is not None:
            raise                  # no model at all: nothing in the batch can run
        reason = one_line(exc)
        log.debug("gir: %s failed", item.url, exc_info=True)
        return Failed(item.url, reason, {**base, "status": FAILED,
                                         "model": _version_for({}, run, force=True),
                                         "reason": reason})
    outs = outputs_of(item.rel, run.task)
    files = {outs[0]: png}
    if report is not None:
        report["model"] = run.slot.version
        files[outs[1]] = json.dumps(report, indent=1).encode()
    action = report["action"] if report else "deblurred"
    return Written(item.url, [run.plan.dest.url_of(o) for o in outs], action,
                   int(out.shape[0] * out.shape[1]), files,
                   {**base, "status": DONE, "model": run.slot.version, "outputs": outs,
                    "action": action})


def _version_for(entry: dict, run: Run, force: bool = False) -> str | None:
    """The model version, loading the model only when the answer depends on it."""
    if force or _needs_version(entry, run.opts.reprocess):
        run.slot.get()
    return run.slot.version


def transform(data: bytes, item: Item, run: Run):
    """(output image, rectify decisions or None): decode, check the size, then the model
    (deblur) or Rectifier.decide, the one detect-then-deblur rule (rectify)."""
    holder: dict = {}

    def fn(rgb):
        check_side(rgb, run.opts.min_side)
        if run.rectifier is None:
            return run.slot.get()(rgb)
        img, holder["report"] = run.rectifier.decide(
            rgb, item.url, run.plan.dest.url_of(f"{item.rel}.png"))
        return img
    return render(data, item.url, fn, run.opts.max_pixels), holder.get("report")


class OrderedWriter:
    """Writes each outcome on a few threads (its files, then its ledger entry, then gives its
    lease back) and files the outcomes in input order; a failed write is that input's failure,
    not ledgered (retried next run)."""

    def __init__(self, run: Run, pool: ThreadPoolExecutor, ahead: int):
        self.run, self.pool, self.ahead = run, pool, ahead
        self.inflight: deque[tuple[Future, Outcome]] = deque()

    def submit(self, outcome: Outcome, lease: Lease | None) -> None:
        files = outcome.files if isinstance(outcome, Written) else {}
        entry, dest, ledger = outcome.entry, self.run.plan.dest, self.run.plan.ledger

        def job():
            try:
                if lease is not None and lease.lost:   # another worker may have it now
                    return Skipped(outcome.input, "claim lost to another worker mid-work "
                                   "(it expired before a renewal reached the storage; see "
                                   "batch.lease_s)")
                for rel, data in files.items():
                    dest.write(rel, data)
                if entry is not None:
                    ledger.record(entry)
            finally:
                self.run.leases.release(lease)
        self.inflight.append((self.pool.submit(job), outcome))
        while len(self.inflight) > self.ahead or (self.inflight and self.inflight[0][0].done()):
            if not self.finish_one():
                return

    def finish_one(self) -> bool:
        """File the oldest outcome once written; False when the deadline passed first."""
        fut, outcome = self.inflight[0]
        try:
            outcome = fut.result(timeout=self.run.left()) or outcome
        except FutureTimeout:
            self.run.should_stop()
            return False
        except Exception as exc:  # noqa: BLE001 - disk full, endpoint down: one line
            outcome = Failed(outcome.input, f"cannot write: {one_line(exc)}", storage=True)
        self.inflight.popleft()
        self.run.file(outcome)
        return True

    def drain(self) -> list[Outcome]:
        """Wait for what is in flight (until the deadline); the outcomes never written."""
        while self.inflight and self.finish_one():
            pass
        lost = [o for _, o in self.inflight]
        self.inflight.clear()
        return lost


def process(todo: list[Item], run: Run) -> int:
    """Prefetch, handle and write the items in order; returns how many were taken (the rest
    is not processed: stopped, deadline, or a run of storage errors)."""
    from tqdm import tqdm

    from gir.rectifier.rectify import Rectifier

    if run.task == "rectify":
        run.rectifier = Rectifier(run.slot.get, run.detector)
    ahead, taken = max(2, 2 * run.opts.workers), 0
    readers = ThreadPoolExecutor(run.opts.workers, thread_name_prefix="gir-read")
    writers = ThreadPoolExecutor(run.opts.workers, thread_name_prefix="gir-write")
    writer = OrderedWriter(run, writers, ahead)
    reads: deque[tuple[Item, Future]] = deque()
    queue = iter(todo)
    bar = tqdm(total=len(todo), desc=run.task, unit="img", disable=not run.opts.progress)
    try:
        while True:
            while len(reads) < ahead and (item := next(queue, None)) is not None:
                reads.append((item, readers.submit(fetch, item, run)))
            if not reads or run.should_stop():
                break
            item, fut = reads[0]
            try:
                lease, got = fut.result(timeout=run.left())
            except FutureTimeout:
                run.should_stop()
                break
            reads.popleft()
            taken += 1
            bar.update()
            try:
                outcome = got if not isinstance(got, bytes) else handle(item, got, run)
            except BaseException:
                run.leases.release(lease)   # no model at all: give the claim back
                raise
            writer.submit(outcome, lease)
        lost = writer.drain()
        taken -= len(lost)
    finally:
        bar.close()
        done = [fut for _, fut in reads if not fut.cancel()]   # claimed, not processed
        threading.Thread(target=lambda: [_release_read(run, f) for f in done], daemon=True,
                         name="gir-release").start()   # never holds up a deadline
        readers.shutdown(wait=not run.stopped.startswith("deadline"), cancel_futures=True)
        writers.shutdown(wait=not run.stopped.startswith("deadline"), cancel_futures=True)
    return taken


def _release_read(run: Run, fut: Future) -> None:
    try:
        run.leases.release(fut.result(timeout=600)[0])
    except Exception:  # noqa: BLE001 - an unreleased claim only expires later
        pass


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
              "skipped": [s.row() for s in p.skipped], "failed": [f.row() for f in p.failed]}
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
              "skipped": plan_part.get("skipped", []) + [s for r in shards for s in r["skipped"]],
              "not_processed": [u for r in shards for u in r.get("not_processed", [])]}
    if isinstance(merged["model"], list) and len(merged["model"]) == 1:
        merged["model"] = merged["model"][0]
    merged["counts"] = {k: len(merged[k]) for k in ("written", "failed", "skipped",
                                                    "not_processed")}
    if report_name:
        loc.write(report_name, json.dumps(merged, indent=1).encode())
    return merged


# ----------------------------------------------------------------------------- watch

def watch(sources: list[str], dest: str, task: str, model, detector=None, *,
          interval: float = 10.0, batch_size: int = 64, options: BatchOptions | None = None,
          log: Callable[[str], None] = print, max_batches: int | None = None,
          **overrides) -> int:
    """Poll the sources and process new arrivals in batches of at most batch_size, until
    options.stop is set (SIGTERM in `gir watch`); a backlog is worked through batch after
    batch without waiting. One log line per batch, and each failure said once; a failed photo
    is ledgered, so it is not tried again until its content or the model version changes.
    Returns the number of inputs written."""
    from gir.data.storage import missing_reason

    opts = replace(options or BatchOptions(), **overrides)
    stop = opts.stop or threading.Event()
    for src in sources:   # a wrong source is a typo, not an empty prefix to wait on
        if split_source(str(src))[1] is None and (why := missing_reason(str(src))):
            raise GirError(f"cannot watch {src}: {why}")
    loc = Location(dest)
    swept = loc.sweep_temp(opts.temp_max_age_s) if opts.temp_max_age_s > 0 else []
    if swept:
        log(f"watch: removed {len(swept)} leftover temp file(s) from {dest}")
    opts = replace(opts, stop=stop, ledger=opts.ledger or Ledger(loc), limit=batch_size,
                   leases=opts.leases or Leases(loc, opts.lease_s), write_report=None,
                   temp_max_age_s=0)
    slot, said = as_slot(model), set()
    total, batches, first = 0, 0, True
    while not stop.is_set():
        try:
            report = run_batch(sources, dest, task, slot, detector, opts)
        except Exception as exc:  # noqa: BLE001 - a store that is down: keep watching
            if first and isinstance(exc, GirError):
                raise            # a wrong source/destination: say so and stop
            log(f"watch: batch failed: {one_line(exc)}; retrying in {interval:g} s")
            stop.wait(interval)
            continue
        c = report["counts"]
        news = [f for f in report["failed"] if (f["input"], f["reason"]) not in said]
        if c["written"] or news or first:
            batches += 1
            log(f"watch: batch {batches}: {c['written']} written, {c['failed']} failed, "
                f"{c['skipped']} unchanged or claimed, {c['pending']} pending; "
                f"{report['images_per_second'] or 0:.1f} img/s in {report['seconds']:.1f} s")
        for f in news:    # each failure said once, not on every poll
            said.add((f["input"], f["reason"]))
            log(f"watch: failed {f['input']}: {f['reason']}")
        first = False
        total += c["written"]
        if max_batches is not None and batches >= max_batches:
            break
        if c["pending"] == 0 or not c["written"] and not c["failed"]:
            stop.wait(interval)
    return total

"""A folder or an object-store prefix, addressed by relative POSIX paths.

Batch rectification reads its inputs from, and writes its outputs and ledger to, either a local
folder or an ``s3://bucket/prefix/`` (any fsspec URL). :class:`Location` gives both the same
few operations: list files recursively with a cheap change stamp, stat, read, and write whole
objects. Writes are atomic: a local file is written beside its name and renamed (atomic_path);
an S3 object becomes visible only when its single PUT (or multipart upload) completes, so no
reader, and no crash, ever sees half an object. The S3 endpoint and credentials come from the
standard AWS environment variables (AWS_ENDPOINT_URL for MinIO or a test server).
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gir.data.imageio import is_remote, write_bytes_atomic
from gir.errors import GirError


@dataclass(frozen=True)
class Timeouts:
    """Limits on every remote call, so that a silent endpoint costs seconds, not for ever:
    connect and read timeouts (s) and attempts per call (botocore's and s3fs's retries)."""

    connect_s: float = 5.0
    read_s: float = 30.0
    attempts: int = 2


DEFAULT_TIMEOUTS = Timeouts()
_timeouts = [DEFAULT_TIMEOUTS]


def set_timeouts(timeouts: Timeouts) -> None:
    """The timeouts of remote Locations made from now on in this process (params batch.*)."""
    _timeouts[0] = timeouts


def remote_options(url: str, timeouts: Timeouts | None = None) -> dict:
    """fsspec options for a remote URL: the endpoint (AWS_ENDPOINT_URL) and, for s3, timeouts.
    The endpoint is part of fsspec's instance-cache key: a changed AWS_ENDPOINT_URL gets a new
    client, never a cached one talking to the old endpoint."""
    if not url.startswith("s3"):
        return {}
    t = timeouts or _timeouts[0]
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    # No listings cache: a long-running watcher must see objects that arrived after it
    # listed a folder (s3fs answers info/cat_file from a stale listing with "not found").
    return {**({"endpoint_url": endpoint} if endpoint else {}), "use_listings_cache": False,
            "config_kwargs": {"connect_timeout": t.connect_s, "read_timeout": t.read_s,
                              "retries": {"max_attempts": t.attempts, "mode": "standard"}}}


@dataclass
class Listing:
    """What a listing found: regular files, entries that failed (symlink loops, dangling links,
    unreadable folders) and entries skipped as not files (FIFOs, devices, sockets)."""

    files: list["Stat"] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (rel, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (rel, reason)


@dataclass(frozen=True)
class Stat:
    """One file: its path relative to the location, size, and a stamp that changes when it does
    (the S3 ETag; size + mtime for a local file)."""

    rel: str
    size: int
    stamp: str


def is_hidden(rel: str) -> bool:
    """Dot-files and anything under a dot-folder: editors', rsync's and our own temp files."""
    return any(part.startswith(".") for part in rel.split("/"))


def safe_rel(rel: str) -> bool:
    """A relative path that cannot climb out of a destination when mirrored there."""
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and all(p not in ("", ".", "..") for p in parts)


class Location:
    """A local folder or a remote prefix (s3://bucket/prefix) holding files by relative path."""

    def __init__(self, url: str | os.PathLike, timeouts: Timeouts | None = None):
        self.url = str(url)
        self.remote = is_remote(self.url)
        if self.remote:
            from fsspec.core import url_to_fs

            t = timeouts or _timeouts[0]
            self.fs, path = url_to_fs(self.url, **remote_options(self.url, t))
            if hasattr(self.fs, "retries"):
                self.fs.retries = max(1, t.attempts)   # s3fs retries on top of botocore's
            self.root = path.rstrip("/")
            self.protocol = self.url.split("://", 1)[0]
        else:
            self.fs, self.root, self.protocol = None, str(Path(self.url)), ""

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    # -------------------------------------------------------------------- naming

    def url_of(self, rel: str) -> str:
        """The full URL (or local path) of rel inside this location."""
        if self.remote:
            return f"{self.protocol}://{self.root}/{rel}"
        return str(Path(self.root) / rel)

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if self.remote else str(Path(self.root) / rel)

    def contains(self, other: "Location") -> bool:
        """Whether other is this location or lies inside it (same file system)."""
        if self.remote != other.remote or self.protocol != other.protocol:
            return False
        if self.remote:
            a, b = self.root.rstrip("/"), other.root.rstrip("/")
        else:
            a, b = str(Path(self.root).resolve()), str(Path(other.root).resolve())
        return b == a or b.startswith(a.rstrip("/") + "/")

    # -------------------------------------------------------------------- reading

    def list(self, under: str = "") -> list[Stat]:
        """Every regular file below `under` (recursively, hidden ones left out), sorted by rel."""
        return self.scan(under).files

    def scan(self, under: str = "") -> Listing:
        """list(), plus what was not listed and why: a bad entry is one entry, never the whole
        location (a symlink loop, a dangling link, a FIFO or a socket among good photos)."""
        base = f"{self.root}/{under}".rstrip("/") if under else self.root
        if not self.remote:
            out = _scan_local(Path(self.root), Path(self.root) / under if under else None)
        else:
            out = Listing()
            self.fs.invalidate_cache(base)
            try:
                found = self.fs.find(base, detail=True, withdirs=False)
            except FileNotFoundError:
                found = {}
            for name, info in found.items():
                if info.get("type") == "directory" or not name.startswith(self.root + "/"):
                    continue
                rel = name[len(self.root) + 1:]
                if under and not rel.startswith(under.rstrip("/") + "/"):
                    continue
                out.files.append(Stat(rel, int(info.get("size") or 0), _remote_stamp(info)))
        visible = [x for x in out.failed + out.skipped if not is_hidden(x[0])]
        out.files = sorted((s for s in out.files if not is_hidden(s.rel)), key=lambda s: s.rel)
        out.failed = sorted(x for x in out.failed if x in visible)
        out.skipped = sorted(x for x in out.skipped if x in visible)
        return out

    def stat(self, rel: str) -> Stat | None:
        """The file rel, or None when there is no such file."""
        if self.remote:
            path = self._path(rel)
            self.fs.invalidate_cache(path)
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return None
            if info.get("type") == "directory":
                return None
            return Stat(rel, int(info.get("size") or 0), _remote_stamp(info))
        kind, st = _local_kind(Path(self.root) / rel)
        return Stat(rel, st.st_size, _local_stamp(st)) if kind is None else None

    def why_not(self, rel: str) -> str:
        """Why stat(rel) found no file: a one-line reason for the report."""
        if self.remote:
            return "no such file or object"
        return _local_kind(Path(self.root) / rel)[0] or "no such file or object"

    def read(self, rel: str) -> bytes:
        """The bytes of rel; FileNotFoundError when it is gone."""
        if self.remote:
            return self.fs.cat_file(self._path(rel))
        return read_regular(Path(self.root) / rel)

    def read_many(self, rels: list[str]) -> dict[str, bytes]:
        """Several small files at once (concurrent requests on S3); missing ones are left out."""
        if not rels:
            return {}
        if self.remote:
            paths = {self._path(r): r for r in rels}
            got = self.fs.cat(list(paths), on_error="omit")
            return {paths[p.removeprefix(f"{self.protocol}://")]: data
                    for p, data in got.items() if isinstance(data, bytes)}
        out = {}
        for rel in rels:
            try:
                out[rel] = read_regular(Path(self.root) / rel)
            except (FileNotFoundError, NotADirectoryError):
                pass
        return out

    # -------------------------------------------------------------------- writing

    def write(self, rel: str, data: bytes) -> None:
        """Write rel whole or not at all (see the module docstring)."""
        if not self.remote:
            write_bytes_atomic(Path(self.root) / rel, data)
            return
        try:
            self.fs.pipe_file(self._path(rel), data)
        except Exception as exc:  # noqa: BLE001 - network, credentials: one line
            raise GirError(f"cannot write {self.url_of(rel)}: {one_line(exc)}") from None


    def create(self, rel: str, data: bytes) -> bool:
        """Write rel only if it does not exist (S3 If-None-Match: *; O_EXCL on a folder).
        False when it exists. An endpoint that ignores the condition is caught by the
        caller's read-back (see Leases.claim)."""
        if not self.remote:
            return _create_local(Path(self.root) / rel, data)
        return self._put_if(rel, data, IfNoneMatch="*")

    def replace_if(self, rel: str, data: bytes, stamp: str, *, gapless: bool = False) -> bool:
        """Overwrite rel only if it is still the version `stamp` (S3 If-Match on the ETag; on a
        folder, an atomic rename of that very file aside, then an exclusive create). gapless
        (a lease renewal): rel is never absent, even for a moment; on a folder the new bytes
        are renamed over it after the stamp check, which is exact while only the holder
        writes it (a renewal comes well before its claim could be taken over)."""
        if not self.remote and gapless:
            return _replace_local_if(Path(self.root) / rel, data, stamp)
        if not self.remote:
            path = Path(self.root) / rel
            aside = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.stale")
            try:
                if _local_stamp(path.stat()) != stamp:
                    return False
                os.rename(path, aside)
            except FileNotFoundError:
                return False
            ok = _local_stamp(aside.stat()) == stamp   # another took it first: give it back
            if not ok:
                os.replace(aside, path)
                return False
            aside.unlink()
            return self.create(rel, data)
        return self._put_if(rel, data, IfMatch=stamp)

    def _put_if(self, rel: str, data: bytes, **condition) -> bool:
        bucket, _, key = self._path(rel).partition("/")
        try:
            self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
        except Exception as exc:  # noqa: BLE001 - 412 means "someone else's", 501 "no support"
            text = f"{type(exc).__name__} {exc}"
            if isinstance(exc, FileExistsError) or any(s in text for s in (
                    "PreconditionFailed", "pre-condition", "412", "ConditionalRequestConflict")):
                return False
            if any(s in text for s in ("NotImplemented", "501")):
                self.write(rel, data)   # no conditional writes: the read-back decides
                return True
            raise GirError(f"cannot write {self.url_of(rel)}: {one_line(exc)}") from None
        finally:
            self.fs.invalidate_cache(self._path(rel))
        return True

    def read_stamped(self, rel: str) -> tuple[bytes, str] | None:
        """(bytes, stamp) of rel, or None when there is none."""
        if not self.remote:
            path = Path(self.root) / rel
            try:
                st = path.stat()
                return read_regular(path), _local_stamp(st)
            except FileNotFoundError:
                return None
        self.fs.invalidate_cache(self._path(rel))
        try:
            info = self.fs.info(self._path(rel))
            return self.fs.cat_file(self._path(rel)), _remote_stamp(info)
        except FileNotFoundError:
            return None

    def delete(self, rel: str) -> None:
        """Remove rel if it is there."""
        try:
            if self.remote:
                self.fs.rm_file(self._path(rel))
            else:
                (Path(self.root) / rel).unlink()
        except FileNotFoundError:
            pass

    def sweep_temp(self, older_than_s: float) -> list[str]:
        """Remove the temp files that a killed write left behind (``.<name>.*.tmp``, written by
        atomic_path, and ``.*.stale``) when older than older_than_s; returns their rels. Only
        a local destination has any: an S3 object appears whole or not at all."""
        if self.remote or not Path(self.root).is_dir():
            return []
        removed, cutoff = [], time.time() - older_than_s
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                if name.startswith(".") and name.endswith((".tmp", ".stale")):
                    path = Path(dirpath) / name
                    try:
                        if path.lstat().st_mtime < cutoff and path.is_file():
                            path.unlink()
                            removed.append(path.relative_to(self.root).as_posix())
                    except FileNotFoundError:
                        continue
        return removed


_KINDS = ((stat_mod.S_ISFIFO, "a FIFO"), (stat_mod.S_ISSOCK, "a socket"),
          (stat_mod.S_ISCHR, "a character device"), (stat_mod.S_ISBLK, "a block device"),
          (stat_mod.S_ISDIR, "a folder"))


def _local_kind(path: Path) -> tuple[str | None, os.stat_result | None]:
    """(None, stat) for a regular file (or a link to one); else (why it is not one, None)."""
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop", None
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            if path.is_symlink():
                return f"dangling symlink (to {os.readlink(path)})", None
            return "no such file or object", None
        return f"cannot stat: {one_line(exc)}", None
    if stat_mod.S_ISREG(st.st_mode):
        return None, st
    kind = next((what for test, what in _KINDS if test(st.st_mode)), "not a regular file")
    return f"not a regular file ({kind})", None


def _local_stamp(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}"


def _scan_local(root: Path, start: Path | None) -> Listing:
    """Walk a folder: regular files (and links to them) listed; loops and dangling links
    failed; FIFOs, sockets and devices skipped; folder links not followed (no cycles)."""
    out = Listing()

    def on_error(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else root
        rel = where.relative_to(root).as_posix() if where != root else "."
        out.failed.append((rel, f"cannot list folder: {one_line(exc)}"))

    for dirpath, dirnames, filenames in os.walk(start or root, onerror=on_error):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            kind, st = _local_kind(path)
            if kind is None:
                out.files.append(Stat(rel, st.st_size, _local_stamp(st)))
            elif kind == "no such file or object":
                continue                      # removed while we looked
            elif kind.startswith("not a regular file"):
                out.skipped.append((rel, kind if kind != "not a regular file (a folder)"
                                    else "symlink to a folder (not followed)"))
            else:
                out.failed.append((rel, kind))
    return out


def _create_local(path: Path, data: bytes) -> bool:
    """Exclusive create, never seen half-written: the bytes go to a temp file that is then
    hard-linked to path (link fails when path exists); O_EXCL where links are not allowed."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:   # no hard links here (some network file systems): O_EXCL below
        pass
    finally:
        os.unlink(tmp)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return True


def _replace_local_if(path: Path, data: bytes, stamp: str) -> bool:
    """Write path (a temp file, then renamed over it) if it is still the version `stamp`."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:   # its folder is gone, and so is the version `stamp`
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if _local_stamp(path.stat()) != stamp:
            return False
        os.replace(tmp, path)
        return True
    except FileNotFoundError:
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file; refuses (never blocks on) a FIFO or a device."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _remote_stamp(info: dict) -> str:
    etag = info.get("ETag") or info.get("etag") or info.get("md5") or ""
    if etag:
        return str(etag).strip('"')
    return f"{info.get('size')}:{info.get('LastModified') or info.get('mtime') or ''}"


def split_source(url: str) -> tuple[Location, list[str] | None]:
    """A source as (location, rels): a folder or prefix gives (itself, None = everything in it);
    a single file gives (its parent, [its name]) so that it mirrors as just its name."""
    loc = Location(url)
    if loc.remote:
        path = loc.root
        is_file = not url.endswith("/") and loc.fs.isfile(path)
    else:
        is_file = Path(url).is_file()
    if not is_file:
        return loc, None
    parent, name = str(PurePosixPath(loc.root).parent), PurePosixPath(loc.root).name
    if loc.remote:
        return Location(f"{loc.protocol}://{parent}"), [name]
    return Location(str(Path(url).resolve().parent)), [Path(url).name]


def one_line(exc: BaseException) -> str:
    """An exception as one line for a report: its message (a GirError's) or type: message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, GirError):
        return text
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def bucket_exists(loc: Location) -> bool:
    """Whether the bucket of a remote location is there (and we may look at it)."""
    bucket = loc.root.split("/", 1)[0]
    try:
        return bool(loc.fs.exists(bucket))
    except Exception:  # noqa: BLE001 - forbidden or unreachable: the listing will say which
        return True


def missing_reason(url: str) -> str | None:
    """Why a source that listed no files is wrong, or None when it is just empty (a prefix
    waiting for uploads is empty, not wrong)."""
    loc = Location(url)
    if not loc.remote:
        return None if Path(url).is_dir() else "no such file or folder"
    if not bucket_exists(loc):
        return f"no such bucket {loc.root.split('/', 1)[0]!r}"
    if not url.endswith("/") and "/" in loc.root and not loc.fs.isdir(loc.root):
        return "no such object or prefix"
    return None


def list_source(loc: Location, url: str) -> Listing:
    """loc.scan(), with an unreadable or missing source as one GirError line."""
    try:
        listing = loc.scan()
    except GirError:
        raise
    except Exception as exc:  # noqa: BLE001 - credentials, network, permissions
        raise GirError(f"cannot list {url}: {one_line(exc)}") from None
    if not (listing.files or listing.failed or listing.skipped):
        why = missing_reason(url)
        if why:
            raise GirError(f"cannot list {url}: {why}")
    return listing


def check_destination(loc: Location) -> None:
    """A remote destination whose bucket is missing fails before any work, in one line."""
    if loc.remote and not bucket_exists(loc):
        raise GirError(f"destination {loc.url}: no such bucket "
                       f"{loc.root.split('/', 1)[0]!r}")


def is_tree(url: str) -> bool:
    """Whether url names a folder or prefix (as opposed to a single file or nothing)."""
    if not is_remote(url):
        return Path(url).is_dir()
    if url.endswith("/"):
        return True
    loc = Location(url)
    try:
        return loc.fs.isdir(loc.root)
    except Exception:  # noqa: BLE001 - unreachable: let the read report it
        return False


def use_endpoint(url: str | None) -> None:
    """Point S3 access at an S3-compatible endpoint (MinIO) for this process, when given."""
    if url:
        os.environ["AWS_ENDPOINT_URL"] = url

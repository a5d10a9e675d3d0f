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

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gir.data.imageio import is_remote, write_bytes_atomic
from gir.errors import GirError


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

    def __init__(self, url: str | os.PathLike):
        self.url = str(url)
        self.remote = is_remote(self.url)
        if self.remote:
            from fsspec.core import url_to_fs

            endpoint = os.environ.get("AWS_ENDPOINT_URL")
            opts = {"endpoint_url": endpoint} if endpoint and self.url.startswith("s3") else {}
            # The endpoint is part of fsspec's instance-cache key: a changed AWS_ENDPOINT_URL
            # gets a new client, never a cached one talking to the old endpoint.
            self.fs, path = url_to_fs(self.url, **opts)
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
        """Every file below `under` (recursively, hidden ones left out), sorted by rel."""
        base = f"{self.root}/{under}".rstrip("/") if under else self.root
        out: list[Stat] = []
        if self.remote:
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
                out.append(Stat(rel, int(info.get("size") or 0), _remote_stamp(info)))
        else:
            root = Path(self.root)
            start = root / under if under else root
            for dirpath, dirnames, filenames in os.walk(start):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for name in filenames:
                    path = Path(dirpath) / name
                    try:
                        st = path.stat()
                    except FileNotFoundError:   # removed while we looked
                        continue
                    out.append(Stat(path.relative_to(root).as_posix(), st.st_size,
                                    f"{st.st_size}:{st.st_mtime_ns}"))
        return sorted((s for s in out if not is_hidden(s.rel)), key=lambda s: s.rel)

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
        path = Path(self.root) / rel
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return Stat(rel, st.st_size, f"{st.st_size}:{st.st_mtime_ns}")

    def read(self, rel: str) -> bytes:
        """The bytes of rel; FileNotFoundError when it is gone."""
        if self.remote:
            return self.fs.cat_file(self._path(rel))
        return (Path(self.root) / rel).read_bytes()

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
                out[rel] = (Path(self.root) / rel).read_bytes()
            except FileNotFoundError:
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
            raise GirError(f"cannot write {self.url_of(rel)}: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


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


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
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


def list_source(loc: Location, url: str) -> list[Stat]:
    """loc.list(), with an unreadable or missing source as one GirError line."""
    try:
        stats = loc.list()
    except GirError:
        raise
    except Exception as exc:  # noqa: BLE001 - credentials, network, permissions
        raise GirError(f"cannot list {url}: {_one_line(exc)}") from None
    if not stats:
        why = missing_reason(url)
        if why:
            raise GirError(f"cannot list {url}: {why}")
    return stats


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

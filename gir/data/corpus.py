"""The pretraining corpus: openly licensed photos rebuilt byte for byte from Debian packages.

`corpus/manifest.csv` names each photo by package, exact version, path inside the package and
sha256. `build_corpus` fetches those .deb files (or finds them in a cache), pulls the photos out
with `dpkg-deb --fsys-tarfile` (no root, nothing installed), checks every byte against the
manifest and writes them under stable names. The `sample` photos (scikit-image) and any photo
shipped inside a Python package are never part of it: they stay free for evaluation.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path

from PIL import Image

from gir.data.manifest import sha256_bytes, sha256_file
from gir.errors import GirError

COLUMNS = ("package", "version", "path_in_package", "sha256", "licence", "width", "height", "name")
CORPUS_CSV = "corpus.csv"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
PART_SUFFIX = ".part"

_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_VERSION = re.compile(r"^[A-Za-z0-9.+~:-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


def read_corpus_manifest(path: str | os.PathLike) -> list[dict]:
    """Read and check the manifest up front, so a bad row fails before anything is downloaded."""
    path = Path(path)
    if not path.is_file():
        raise GirError(f"corpus manifest not found: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise GirError(f"corpus manifest {path}: missing column(s) {', '.join(missing)}")
        rows = [_check_row(path, line, row) for line, row in enumerate(reader, start=2)]
    if not rows:
        raise GirError(f"corpus manifest {path}: no rows")
    _check_unique(path, rows)
    return rows


def _check_row(path: Path, line: int, row: dict) -> dict:
    """Turn one CSV row into a typed record, naming the line and field that is wrong."""
    row = {c: (row.get(c) or "").strip() for c in COLUMNS}
    empty = [c for c in COLUMNS if not row[c]]
    if empty:
        raise GirError(f"corpus manifest {path} line {line}: empty {', '.join(empty)}")
    row["path_in_package"] = row["path_in_package"].removeprefix("./")
    problem = _row_problem(row)
    if problem:
        raise GirError(f"corpus manifest {path} line {line}: {problem}")
    row["width"], row["height"] = int(row["width"]), int(row["height"])
    return row


def _row_problem(row: dict) -> str | None:
    """The first thing wrong with a row's fields (None when it is usable)."""
    inner = row["path_in_package"]
    checks = [
        (_PACKAGE.match(row["package"]), f"bad package name {row['package']!r}"),
        (_VERSION.match(row["version"]), f"bad version {row['version']!r}"),
        (_SHA256.match(row["sha256"]), f"sha256 must be 64 lowercase hex, got {row['sha256']!r}"),
        (_NAME.match(row["name"]), f"name must be [a-z0-9_-] (at most 80), got {row['name']!r}"),
        (not inner.startswith("/") and ".." not in inner.split("/"), f"unsafe path {inner!r}"),
        (inner.lower().endswith(IMAGE_EXTS), f"path is not an image file name: {inner!r}"),
        (row["width"].isdigit() and row["height"].isdigit()
         and int(row["width"]) > 0 and int(row["height"]) > 0,
         f"width/height must be positive integers, got {row['width']!r}x{row['height']!r}"),
    ]
    return next((msg for ok, msg in checks if not ok), None)


def _check_unique(path: Path, rows: list[dict]) -> None:
    """Two rows with one name would overwrite each other's file."""
    seen: set[str] = set()
    for row in rows:
        if row["name"] in seen:
            raise GirError(f"corpus manifest {path}: duplicate name {row['name']!r}")
        seen.add(row["name"])


def local_name(row: dict) -> str:
    """The file a row becomes in the corpus: its name plus the package file's own extension."""
    return row["name"] + posixpath.splitext(row["path_in_package"])[1].lower()


def build_corpus(manifest_path: str | os.PathLike, out_dir: str | os.PathLike,
                 deb_dir: str | os.PathLike | None = None, download: bool = True) -> dict:
    """Rebuild the corpus from Debian packages, byte for byte, so pretraining can be repeated."""
    rows = read_corpus_manifest(manifest_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _sweep_partials(out)
    debs = Path(deb_dir) if deb_dir is not None else out / ".debs"
    report = {"written": [], "skipped": [], "errors": [], "out_dir": str(out)}
    for (package, version), group in _by_package(rows).items():
        todo = [r for r in group if not _up_to_date(out, r, report)]
        if todo:
            _build_package(package, version, todo, debs, download, out, report)
    done = set(report["written"]) | set(report["skipped"])
    _write_corpus_csv(out, [r for r in rows if r["name"] in done])
    return report


def _by_package(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Group rows by .deb, so each package is fetched and unpacked once."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["package"], row["version"]), []).append(row)
    return groups


def _up_to_date(out: Path, row: dict, report: dict) -> bool:
    """A file already there with the right checksum is kept (the build is idempotent)."""
    target = out / local_name(row)
    if target.is_file() and sha256_file(target) == row["sha256"]:
        report["skipped"].append(row["name"])
        return True
    return False


def _build_package(package: str, version: str, rows: list[dict], debs: Path, download: bool,
                   out: Path, report: dict) -> None:
    """Write one package's photos; a package that cannot be had fails only its own rows."""
    try:
        deb = find_deb(debs, package, version, download)
        found = extract_files(deb, [r["path_in_package"] for r in rows])
    except GirError as exc:
        report["errors"] += [{"name": r["name"], "reason": str(exc)} for r in rows]
        return
    for row in rows:
        data = found.get(row["path_in_package"])
        reason = _problem(row, data, deb)
        if reason:
            report["errors"].append({"name": row["name"], "reason": reason})
            continue
        write_atomic(out / local_name(row), data)
        report["written"].append(row["name"])


def _problem(row: dict, data: bytes | str | None, deb: Path) -> str | None:
    """Why a file from the package must not enter the corpus (None when it is the one meant)."""
    where = f"{row['path_in_package']} in {deb.name}"
    if data is None:
        return f"missing: {where} is not in the package"
    if isinstance(data, str):
        return f"missing: {where} {data}"
    got = sha256_bytes(data)
    if got != row["sha256"]:
        return f"altered: {where} has sha256 {got[:12]}..., manifest says {row['sha256'][:12]}..."
    size = _decoded_size(data)
    if isinstance(size, str):
        return f"corrupt: {where} does not decode as an image ({size})"
    if size != (row["width"], row["height"]):
        want = f"{row['width']}x{row['height']}"
        return f"corrupt: {where} is {size[0]}x{size[1]}, the manifest says {want}"
    return None


def _decoded_size(data: bytes) -> tuple[int, int] | str:
    """Decode the whole image once: a file that only looks like an image is not a photo."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.size
    except Image.UnidentifiedImageError:
        return "not a format PIL knows"
    except Exception as exc:  # PIL raises many types for bad data; all mean "not a photo"
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def deb_file_names(package: str, version: str) -> list[str]:
    """Glob patterns for a .deb as apt names it (an epoch's ':' becomes '%3a')."""
    names = {f"{package}_{version.replace(':', '%3a')}_*.deb", f"{package}_{version}_*.deb"}
    if ":" in version:
        names.add(f"{package}_{version.split(':', 1)[1]}_*.deb")
    return sorted(names)


def find_deb(debs: Path, package: str, version: str, download: bool) -> Path:
    """The exact package version the manifest was made from: cached, or fetched with apt."""
    hit = _cached_deb(debs, package, version)
    if hit is None and download:
        _apt_download(debs, package, version)
        hit = _cached_deb(debs, package, version)
    if hit is None:
        how = "apt-get download gave none" if download else "download=False"
        raise GirError(f"missing package: no {package}_{version}_*.deb in {debs} ({how})")
    return hit


def _cached_deb(debs: Path, package: str, version: str) -> Path | None:
    """A .deb already in the cache directory, if any."""
    for pattern in deb_file_names(package, version):
        hits = sorted(debs.glob(pattern))
        if hits:
            return hits[0]
    return None


def _apt_download(debs: Path, package: str, version: str) -> None:
    """Fetch one exact version with apt (needs only the apt lists, not root or installing)."""
    debs.mkdir(parents=True, exist_ok=True)
    cmd = ["apt-get", "download", "-q", f"{package}={version}"]
    try:
        proc = subprocess.run(cmd, cwd=debs, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise GirError(f"missing package: no apt-get to download {package}={version}") from None
    except subprocess.TimeoutExpired:
        raise GirError(f"missing package: apt-get download {package}={version} timed out") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise GirError(f"missing package: apt-get download {package}={version} failed: {tail}")


def extract_files(deb: Path, wanted: list[str]) -> dict[str, bytes | str]:
    """Read chosen files out of a .deb without installing it; links are followed inside it."""
    result: dict[str, bytes | str] = {}
    links: dict[str, str] = {}
    todo = asked = set(wanted)
    for _ in range(4):  # a link may point at a file earlier in the archive: read it again
        data, new_links = _read_members(deb, todo)
        result.update(data)
        links.update(new_links)
        todo = {t for t in links.values() if t not in asked}
        asked = asked | todo
        if not todo:
            break
    for path in wanted:
        target, hops = path, 0
        while target in links and hops < 8:
            target, hops = links[target], hops + 1
        if target != path:
            result[path] = result.get(target, f"is a link to {target}, which is not in the package")
    return result


def _read_members(deb: Path, wanted: set[str]) -> tuple[dict[str, bytes], dict[str, str]]:
    """Stream the package's file tree once, keeping the wanted files and noting links."""
    data: dict[str, bytes] = {}
    links: dict[str, str] = {}
    cmd = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise GirError("missing package: dpkg-deb not found (it comes with dpkg)") from None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                _take(tar, member, wanted, data, links)
    except tarfile.TarError as exc:
        raise GirError(f"missing package: {deb.name} is not a readable .deb ({exc})") from None
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        if proc.wait() != 0:
            raise GirError(f"missing package: dpkg-deb cannot read {deb.name}: "
                           f"{(err.splitlines() or ['error'])[-1]}")
    return data, links


def _take(tar: tarfile.TarFile, member: tarfile.TarInfo, wanted: set[str],
          data: dict[str, bytes], links: dict[str, str]) -> None:
    """Keep one archive member if it is wanted: a file's bytes, or where a link points."""
    name = posixpath.normpath(member.name.removeprefix("./"))
    if name not in wanted:
        return
    if member.isfile():
        data[name] = tar.extractfile(member).read()
    elif member.issym():
        links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
    elif member.islnk():
        links[name] = posixpath.normpath(member.linkname.removeprefix("./"))


def write_atomic(target: Path, data: bytes) -> None:
    """Write beside the target, then rename: a reader never sees half a photo."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=PART_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the corpus is meant to be read by others
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sweep_partials(out: Path) -> None:
    """Remove temp files a killed earlier build left behind (only ours: '.<file>.*.part')."""
    for stale in out.glob(f".*{PART_SUFFIX}"):
        stale.unlink(missing_ok=True)


def _write_corpus_csv(out: Path, rows: list[dict]) -> None:
    """Record what is on disk now, with each photo's local file, for the steps that read it."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*COLUMNS, "path"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({**r, "path": local_name(r)} for r in rows)
    write_atomic(out / CORPUS_CSV, buf.getvalue().encode("utf-8"))

"""The pretraining corpus: rebuilt from .deb files, checked byte for byte, never the sample photos.

The build tests make a tiny .deb with `dpkg-deb --build` and use download=False: no network, no apt.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gir.data.corpus import COLUMNS, CORPUS_CSV, build_corpus, read_corpus_manifest
from gir.errors import GirError

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "corpus" / "manifest.csv"
PKG, VERSION = "gir-test-photos", "1:1.0-1"  # an epoch, as apt names it in the file: 1%3a1.0-1
BG = "usr/share/backgrounds"

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not available")


def _photo(fmt: str, seed: int, size=(64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_deb(tmp_path):
    """A .deb with two photos, a link to one, a non-image, a cut-off JPEG; and its manifest."""
    files = {"good1.jpg": _photo("JPEG", 1), "good2.png": _photo("PNG", 2),
             "altered.jpg": _photo("JPEG", 3), "notimage.png": b"this is text, not a PNG\n",
             "truncated.jpg": _photo("JPEG", 4)[:400]}
    tree = tmp_path / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {PKG}\nVersion: {VERSION}\nArchitecture: all\n"
        "Maintainer: GIR tests <gir@example.invalid>\nDescription: photos for a corpus test\n")
    (tree / BG).mkdir(parents=True)
    for name, data in files.items():
        (tree / BG / name).write_bytes(data)
    os.symlink("good1.jpg", tree / BG / "link.jpg")
    debs = tmp_path / "debs"
    debs.mkdir()
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree),
                    str(debs / f"{PKG}_1%3a1.0-1_all.deb")], check=True, capture_output=True)
    rows = [
        _row("good1", "good1.jpg", files["good1.jpg"]),
        _row("good2", "good2.png", files["good2.png"]),
        _row("linked", "link.jpg", files["good1.jpg"]),
        _row("absent", "absent.jpg", files["good1.jpg"]),
        {**_row("altered", "altered.jpg", files["altered.jpg"]), "sha256": "0" * 64},
        _row("notimage", "notimage.png", files["notimage.png"]),
        _row("truncated", "truncated.jpg", files["truncated.jpg"]),
        {**_row("nopkg", "good1.jpg", files["good1.jpg"]), "package": "gir-not-cached"},
    ]
    manifest = tmp_path / "manifest.csv"
    _write(manifest, rows)
    return manifest, debs, files


def _row(name: str, file: str, data: bytes) -> dict:
    return {"package": PKG, "version": VERSION, "path_in_package": f"{BG}/{file}",
            "sha256": _sha(data), "licence": "CC0-1.0", "width": 64, "height": 48, "name": name}


def _write(path: Path, rows: list[dict], fields=COLUMNS) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


@needs_dpkg
def test_build_writes_verified_photos_and_reports_bad_rows(fake_deb, tmp_path):
    manifest, debs, files = fake_deb
    out = tmp_path / "corpus"
    report = build_corpus(manifest, out, deb_dir=debs, download=False)

    assert sorted(report["written"]) == ["good1", "good2", "linked"]
    assert report["skipped"] == [] and report["out_dir"] == str(out)
    reasons = {e["name"]: e["reason"] for e in report["errors"]}
    assert sorted(reasons) == ["absent", "altered", "nopkg", "notimage", "truncated"]
    assert reasons["absent"].startswith("missing:") and "absent.jpg" in reasons["absent"]
    assert reasons["altered"].startswith("altered:") and "sha256" in reasons["altered"]
    assert reasons["notimage"].startswith("corrupt:") and "decode" in reasons["notimage"]
    assert reasons["truncated"].startswith("corrupt:") and "truncated" in reasons["truncated"]
    assert reasons["nopkg"].startswith("missing package:") and "gir-not-cached" in reasons["nopkg"]
    assert all("\n" not in r for r in reasons.values())

    assert (out / "good1.jpg").read_bytes() == files["good1.jpg"]
    assert (out / "linked.jpg").read_bytes() == files["good1.jpg"]
    assert _sha((out / "good2.png").read_bytes()) == _sha(files["good2.png"])
    # nothing partial or unverified: only the good photos and the index
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["good1.jpg", "good2.png", "linked.jpg", CORPUS_CSV])
    with open(out / CORPUS_CSV, newline="") as fh:
        index = list(csv.DictReader(fh))
    assert [(r["name"], r["path"]) for r in index] == [
        ("good1", "good1.jpg"), ("good2", "good2.png"), ("linked", "linked.jpg")]


@needs_dpkg
def test_second_build_skips_and_repairs_a_changed_file(fake_deb, tmp_path):
    manifest, debs, files = fake_deb
    out = tmp_path / "corpus"
    build_corpus(manifest, out, deb_dir=debs, download=False)
    again = build_corpus(manifest, out, deb_dir=debs, download=False)
    assert again["written"] == [] and sorted(again["skipped"]) == ["good1", "good2", "linked"]

    (out / "good2.png").write_bytes(b"tampered")
    (out / ".good1.jpg.x1y2.part").write_bytes(b"left by a killed build")
    third = build_corpus(manifest, out, deb_dir=debs, download=False)
    assert third["written"] == ["good2"]
    assert (out / "good2.png").read_bytes() == files["good2.png"]
    assert not list(out.glob("*.part")) and not list(out.glob(".*.part"))


def test_manifest_problems_are_one_line_errors(tmp_path):
    good = _row("ok", "ok.jpg", b"x")
    cases = {
        "missing column(s) sha256": ([good], [c for c in COLUMNS if c != "sha256"]),
        "sha256 must be 64": ([{**good, "sha256": "abc"}], COLUMNS),
        "duplicate name 'ok'": ([good, {**good, "path_in_package": f"{BG}/b.jpg"}], COLUMNS),
        "unsafe path": ([{**good, "path_in_package": "../etc/passwd.jpg"}], COLUMNS),
        "not an image file name": ([{**good, "path_in_package": f"{BG}/x.txt"}], COLUMNS),
        "empty licence": ([{**good, "licence": ""}], COLUMNS),
    }
    for expected, (rows, fields) in cases.items():
        path = tmp_path / "m.csv"
        _write(path, rows, fields)
        with pytest.raises(GirError, match=re.escape(expected)) as info:
            read_corpus_manifest(path)
        assert "\n" not in str(info.value)
    with pytest.raises(GirError, match="not found"):
        read_corpus_manifest(tmp_path / "nope.csv")


def test_committed_manifest_is_licensed_and_disjoint_from_the_sample_photos():
    skdata = pytest.importorskip("skimage.data")
    rows = read_corpus_manifest(MANIFEST)
    assert 40 <= len(rows) <= 150
    assert all(r["licence"] for r in rows)
    assert all(not re.search(r"\bN[CD]\b", r["licence"]) for r in rows)  # modifiable, any use
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["sha256"]) for r in rows)
    assert len({r["name"] for r in rows}) == len(rows)
    assert len({r["sha256"] for r in rows}) == len(rows)

    data_dir = Path(skdata.data_dir)
    sample = {p.name.split(".")[0].lower() for p in data_dir.iterdir()}
    sample_sha = {_sha(p.read_bytes()) for p in data_dir.iterdir() if p.is_file()}
    for r in rows:
        stem = Path(r["path_in_package"]).name.split(".")[0].lower()
        assert r["name"].lower() not in sample and stem not in sample, r["name"]
        assert r["sha256"] not in sample_sha, r["name"]
        assert "site-packages" not in r["path_in_package"] and "/python" not in r["path_in_package"]


@needs_dpkg
def test_cli_reports_each_bad_photo_in_one_line_and_writes_the_rest(fake_deb, tmp_path):
    from tests.helpers import run_gir

    manifest, debs, _ = fake_deb
    out = tmp_path / "cli_out"
    proc = run_gir("corpus", "build", "--manifest", str(manifest), "--out", str(out),
                   "--debs", str(debs), "--offline", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("gir corpus: ")]
    assert {line.split(":")[1].strip() for line in errors} == {
        "absent", "altered", "notimage", "truncated", "nopkg"}
    assert "corpus: 3 written, 0 already there, 5 failed" in proc.stderr
    assert sorted(p.stem for p in out.glob("*.*") if p.name != CORPUS_CSV) == [
        "good1", "good2", "linked"]

"""GoPro and folder sources, and incremental ingest by content (sha256)."""

from __future__ import annotations

from pathlib import Path

import pytest

import gir.data.facts
from datatrees import make_gopro_tree, photo, save
from gir.data.manifest import read_manifest, resolve
from gir.errors import GirError
from gir.steps.ingest import ingest
from tests.helpers import run_gir, tiny_params


def test_gopro_variant_and_limits(tmp_path):
    root = make_gopro_tree(tmp_path / "GOPRO_Large", variant="blur_gamma")
    params = tiny_params("data.source=gopro", f"data.gopro.root={root}",
                         "data.gopro.blur_variant=blur_gamma",
                         "data.gopro.max_pairs_per_sequence=2")
    df = read_manifest(ingest(params, tmp_path / "raw"))
    assert df["blur_path"].str.contains("/blur_gamma/").all()
    assert df.groupby("scene").size().max() == 2
    assert set(df["scene"]) == {"GOPR0001_00_00", "GOPR0002_00_00", "GOPR0003_00_00"}
    for rel in df["blur_path"]:
        assert Path(resolve(tmp_path / "raw", rel)).is_file()


def test_gopro_wrong_root_is_one_line(tmp_path):
    proc = run_gir("ingest", "--out", "raw", "--set", "data.source=gopro",
                   "--set", f"data.gopro.root={tmp_path / 'nope'}", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "GOPRO_Large layout" in proc.stderr
    assert "Traceback" not in proc.stderr


def _folder_params(src: Path, *extra: str):
    return tiny_params("data.source=folder", f"data.folder.path={src}",
                       "data.synth.per_image=2", *extra)


def _photos(src: Path, names=("astronaut", "coffee", "chelsea")) -> Path:
    for i, name in enumerate(names):
        save(src / ("sub" if i % 2 else "") / f"{name}.png", photo(name))
    return src


def test_incremental_ingest_processes_only_new_files(tmp_path, monkeypatch):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "raw"
    first = read_manifest(ingest(_folder_params(src), out))
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}

    decoded: list[str] = []
    real = gir.data.facts.image_facts
    monkeypatch.setattr(gir.data.facts, "image_facts",
                        lambda data, name, *a: decoded.append(name) or real(data, name, *a))
    save(src / "sub/rocket.png", photo("rocket"))
    second = read_manifest(ingest(_folder_params(src), out))
    assert len(second) == len(first) + 2
    # Unchanged photos: same rows, their outputs not rewritten, their files not decoded again.
    old = second[second["pair_id"].isin(first["pair_id"])]
    assert old.drop(columns=["notes"]).equals(first.drop(columns=["notes"]))
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert decoded and all("rocket" in d for d in decoded)


def test_removing_a_source_file_removes_only_its_rows(tmp_path):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "raw"
    first = read_manifest(ingest(_folder_params(src), out))
    (src / "sub/coffee.png").unlink()
    keep = {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and "coffee" not in p.name and p.name != "manifest.csv"}
    second = read_manifest(ingest(_folder_params(src), out))
    assert set(second["pair_id"]) == {p for p in first["pair_id"] if "coffee" not in p}
    assert not any("coffee" in p.name for p in out.rglob("*"))
    assert {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and p.name != "manifest.csv"} == keep


def test_changed_settings_remake_pairs(tmp_path):
    src = _photos(tmp_path / "photos", ("astronaut",))
    out = tmp_path / "raw"
    first = read_manifest(ingest(_folder_params(src), out))
    second = read_manifest(ingest(_folder_params(src, "seed=1"), out))
    assert (first["recipe"] != second["recipe"]).all()
    assert (first["blur_sha256"] != second["blur_sha256"]).all()


def test_changed_file_is_reprocessed(tmp_path):
    src = _photos(tmp_path / "photos", ("astronaut",))
    out = tmp_path / "raw"
    first = read_manifest(ingest(_folder_params(src), out))
    save(src / "astronaut.png", photo("astronaut", shift=20))
    second = read_manifest(ingest(_folder_params(src), out))
    assert (first["origin_sha256"] != second["origin_sha256"]).all()
    assert (first["sharp_sha256"] != second["sharp_sha256"]).all()


def test_folder_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for path, msg in ((tmp_path / "missing", "not a folder"), (tmp_path / "empty", "")):
        with pytest.raises(GirError) as err:
            ingest(_folder_params(path), tmp_path / "raw")
        assert msg in str(err.value)

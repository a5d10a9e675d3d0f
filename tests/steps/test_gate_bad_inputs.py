"""Every odd file a user may bring is ingested and gated: each one reported with its reason,
nothing else lost, and the user's files byte-identical afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from datatrees import FOLDER_EXPECT, GOPRO_EXPECT, make_folder_tree, make_gopro_tree, tree_hashes
from gir.data.manifest import read_manifest
from gir.errors import GateFailed
from gir.steps.ingest import ingest
from gir.steps.validate import validate
from tests.helpers import tiny_params


def _gate(params, tmp_path: Path):
    ingest(params, tmp_path / "raw")
    result = validate(params.validate, tmp_path / "raw", tmp_path / "validated",
                      tmp_path / "reports")
    return (result, read_manifest(tmp_path / "validated"),
            read_manifest(tmp_path / "validated/quarantine.csv"))


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("folder_gate")
    src = make_folder_tree(tmp / "photos")
    before = tree_hashes(src)
    params = tiny_params("data.source=folder", f"data.folder.path={src}",
                         "data.synth.per_image=2", "validate.max_quarantine_fraction=0.5")
    result, passed, quarantine = _gate(params, tmp)
    return src, before, result, passed, quarantine, tmp


def _origin_file(origin: str) -> str:
    return origin.split("photos/", 1)[1]


def test_folder_each_bad_file_reported_with_reason(folder_run):
    src, before, result, passed, quarantine, _ = folder_run
    reasons = {_origin_file(o): r for o, r in zip(quarantine["origin_path"], quarantine["reason"])}
    for name, expect in FOLDER_EXPECT.items():
        if expect is None:
            assert name not in reasons, f"{name} quarantined: {reasons.get(name)}"
        else:
            assert expect in reasons.get(name, ""), f"{name}: {reasons.get(name)!r}"
    assert set(reasons) == {n for n, e in FOLDER_EXPECT.items() if e}


def test_folder_nothing_else_lost(folder_run):
    src, before, result, passed, quarantine, _ = folder_run
    good = {n for n, e in FOLDER_EXPECT.items() if e is None}
    assert {_origin_file(o) for o in passed["origin_path"]} == good
    assert len(passed) == 2 * len(good)  # per_image=2
    assert result.quarantined == len(quarantine) and result.success


def test_folder_sources_untouched(folder_run):
    src, before, *_ = folder_run
    assert tree_hashes(src) == before


def test_folder_normalisation_notes(folder_run):
    _, _, _, passed, _, _ = folder_run
    rows = {_origin_file(o): r for o, r in zip(passed["origin_path"], passed.to_dict("records"))}
    assert rows["odd/sixteen_bit.png"]["bit_depth"] == 16
    assert "8-bit" in rows["odd/sixteen_bit.png"]["notes"]
    assert "CMYK converted to RGB" in rows["odd/cmyk.jpg"]["notes"]
    assert rows["odd/cmyk.jpg"]["mode"] == "CMYK"
    assert "L converted to RGB" in rows["odd/grey.png"]["notes"]
    assert "composited on white" in rows["odd/rgba.png"]["notes"]
    exif = rows["odd/exif_rotated.jpg"]
    assert "exif orientation 6 applied" in exif["notes"]
    assert (exif["width"], exif["height"]) == (80, 120)  # stored landscape, shown portrait
    for r in rows.values():  # what the gate passes is 8-bit RGB on disk
        assert r["sharp_mode"] == "RGB" and r["sharp_bit_depth"] == 8


def test_folder_near_duplicates_share_a_scene(folder_run):
    _, _, _, passed, _, _ = folder_run
    scene = dict(zip(passed["origin_path"].map(_origin_file), passed["scene"]))
    assert scene["odd/near_dup_of_astronaut.jpg"] == scene["good/astronaut.png"]
    assert "merged" in passed[passed["origin_path"].str.endswith("near_dup_of_astronaut.jpg")][
        "notes"].iloc[0]
    assert scene["good/rocket.tiff"] != scene["good/astronaut.png"]


def test_reports_written(folder_run):
    *_, tmp = folder_run
    assert (tmp / "reports/quality.json").exists()
    html = (tmp / "reports/quality.html").read_text()
    assert "empty file" in html and "data_docs/index.html" in html
    docs = tmp / "reports/data_docs/index.html"
    assert docs.exists() and "gir_pairs" in docs.read_text()


def test_gopro_pairing_mistakes_reported(tmp_path):
    root = make_gopro_tree(tmp_path / "GOPRO_Large")
    before = tree_hashes(root)
    params = tiny_params("data.source=gopro", f"data.gopro.root={root}",
                         "validate.max_quarantine_fraction=0.5")
    result, passed, quarantine = _gate(params, tmp_path)
    reasons = dict(zip(quarantine["pair_id"], quarantine["reason"]))
    for pid, expect in GOPRO_EXPECT.items():
        if expect is None:
            assert pid in set(passed["pair_id"]), f"{pid} lost: {reasons.get(pid)}"
        else:
            assert expect in reasons.get(pid, ""), f"{pid}: {reasons.get(pid)!r}"
    assert len(passed) + len(quarantine) == len(GOPRO_EXPECT)
    assert set(passed["split"]) == {"train", "test"}  # the official split is kept
    assert (passed["blur_kind"] == "real").all()
    assert tree_hashes(root) == before
    # Paths point into the user's tree (relative to the dataset dir), nothing was copied.
    assert not (tmp_path / "raw/blur").exists()
    assert passed["blur_path"].str.contains("GOPRO_Large/").all()


def test_gate_fails_above_threshold_but_still_writes_quarantine(tmp_path):
    src = make_folder_tree(tmp_path / "photos")
    params = tiny_params("data.source=folder", f"data.folder.path={src}",
                         "data.synth.per_image=1", "validate.max_quarantine_fraction=0.1")
    with pytest.raises(GateFailed, match="quarantined"):
        _gate(params, tmp_path)
    quarantine = read_manifest(tmp_path / "validated/quarantine.csv")
    assert len(quarantine) == sum(1 for e in FOLDER_EXPECT.values() if e)

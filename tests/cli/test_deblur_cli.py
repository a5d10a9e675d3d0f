"""`gir deblur` on real files: any size and mode, and bad files reported without losing good ones.

Files given by name go through the one batch path: OUT/<name>.png, the ledger and
OUT/_gir/report.json, as folders and prefixes do."""

import json

import numpy as np
from PIL import Image

from tests.helpers import run_gir


def _env(tiny_run):
    return {"MLFLOW_TRACKING_URI": tiny_run.uri}


def test_deblur_keeps_size_and_mode(tiny_run, tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((37, 61, 3)) * 255).astype(np.uint8)).save(tmp_path / "rgb.jpg")
    Image.fromarray((rng.random((50, 33)) * 255).astype(np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray((rng.random((40, 40, 4)) * 255).astype(np.uint8)).save(tmp_path / "alpha.png")
    out = tmp_path / "out"
    proc = run_gir("deblur", str(tmp_path / "rgb.jpg"), str(tmp_path / "grey.png"),
                   str(tmp_path / "alpha.png"), "-o", str(out), cwd=tmp_path, env=_env(tiny_run))
    assert "deblur: 3 written, 0 failed, 0 skipped, 0 not processed" in proc.stderr
    report = json.loads((out / "_gir" / "report.json").read_text())
    assert [w["outputs"] for w in report["written"]] == [
        [str(out / f"{n}.png")] for n in ("rgb.jpg", "grey.png", "alpha.png")]
    with Image.open(out / "rgb.jpg.png") as im:
        assert im.size == (61, 37) and im.mode == "RGB"
    with Image.open(out / "grey.png.png") as im:
        assert im.size == (33, 50) and im.mode == "L"
    with Image.open(out / "alpha.png.png") as im:
        assert im.mode == "RGBA"
        src = np.asarray(Image.open(tmp_path / "alpha.png"))[..., 3]
        assert (np.asarray(im)[..., 3] == src).all()


def test_bad_files_get_one_line_each_and_good_ones_are_still_written(tiny_run, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.full((32, 48, 3), 120, np.uint8)).save(good)
    (tmp_path / "empty.png").write_bytes(b"")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    (tmp_path / "notes.jpg").write_text("this is not a photo\n")
    bad = ["empty.png", "truncated.png", "notes.jpg"]
    before = {n: (tmp_path / n).read_bytes() for n in bad + ["good.png"]}
    out = tmp_path / "out"
    proc = run_gir("deblur", *bad, "good.png", "-o", str(out), cwd=tmp_path,
                   env=_env(tiny_run), check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gir deblur: failed")]
    assert len(lines) == 3
    for name, line in zip(bad, lines):
        assert name in line
    assert "empty file" in lines[0] and "truncated" in lines[1] and "not an image" in lines[2]
    assert "1 written, 3 failed" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["_gir", "good.png.png"]
    report = json.loads((out / "_gir" / "report.json").read_text())
    assert [f["input"] for f in report["failed"]] == [str(tmp_path / n) for n in bad]
    assert {n: (tmp_path / n).read_bytes() for n in before} == before  # sources untouched


def test_missing_model_is_one_line(tmp_path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")   # >= min_side
    proc = run_gir("deblur", "a.png", "-o", "out", "--model", "models:/nope@champion",
                   cwd=tmp_path, env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/x.db"},
                   check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr

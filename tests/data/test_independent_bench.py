"""The independent benchmark: photos no step trains on, a blur family training never draws,
mild and sharp rows, intervals, and one clear line for bad input. Tiny: 48 px crops."""

import json

import numpy as np
import pytest

from gir.data import benchmark, heldout_blur, psf
from gir.errors import GirError
from tests.helpers import run_gir, tiny_params

TWO = ["gimp_rose", "visp_klimt"]


@pytest.fixture(scope="module")
def photos():
    return benchmark.load_photos(None, max_side=48, names=TWO)


def test_pairs_cover_every_group_and_are_reproducible(photos):
    synth = tiny_params().data.synth
    pairs = benchmark.benchmark_pairs(photos, synth, per_kind=1, seed=7)
    kinds = {p.blur_kind for p in pairs}
    assert {f"train/{k}" for k in synth.kinds} | {f"heldout/{k}" for k in synth.kinds} <= kinds
    assert {"mild/motion", "mild_heldout/motion", "sharp"} <= kinds
    again = benchmark.benchmark_pairs(photos, synth, per_kind=1, seed=7)
    assert all(np.array_equal(a.blur, b.blur) for a, b in zip(pairs, again))
    for p in pairs:
        if p.row["group"] in ("heldout", "mild_heldout"):  # never a training family
            family = json.loads(p.row["blur_params"])["family"]
            assert family not in psf.MOTION_FAMILIES and family in (
                "tremor", "zernike_spot", "anisotropic", "tremor_shake")
    sharp = [p for p in pairs if p.blur_kind == "sharp"]
    assert len(sharp) == 2 and all(np.array_equal(p.blur, p.sharp) for p in sharp)


def test_heldout_kernels_are_normalised_and_sized():
    rng = np.random.default_rng(0)
    for kind in ("motion", "defocus", "gaussian"):
        spec = heldout_blur.heldout_blur(kind, rng, mild=True)
        assert spec.kernel.sum() == pytest.approx(1.0, abs=1e-5)
        assert spec.kernel.shape[0] <= 2 * 7 + 5
    with pytest.raises(ValueError, match="unknown held-out blur kind 'swirl'"):
        heldout_blur.heldout_blur("swirl", rng)


def test_bad_photos_are_one_clear_line(tmp_path):
    with pytest.raises(GirError, match="unknown photo 'china'"):
        benchmark.load_photos(None, names=["china"])
    (tmp_path / "photos.csv").write_text("name,package,path\nx,tuxpaint-data,x.png\n")
    with pytest.raises(GirError, match="reserved for evaluation outside"):
        benchmark.load_photos(tmp_path)
    (tmp_path / "photos.csv").write_text("name,package,path\ngone,gimp-help-en,gone.png\n")
    with pytest.raises(GirError, match="benchmark photo gone"):
        benchmark.load_photos(tmp_path)
    with pytest.raises(GirError, match="has no corpus.csv or photos.csv"):
        benchmark.load_photos(tmp_path / "nowhere")
    proc = run_gir("bench", "--heldout", "--photos", str(tmp_path / "nowhere"), "--model",
                   "pretrained", "--out", str(tmp_path / "o"), cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "has no corpus.csv or photos.csv" in proc.stderr


def test_the_bench_reports_gap_mild_and_sharp_rows_with_intervals(tmp_path):
    from gir.benchmarks.heldout import heldout_bench

    result = heldout_bench(tiny_params(), ["shipped=pretrained"], tmp_path,
                           references=["blurred"], per_kind=1, max_side=48,
                           photos=["gimp_rose"])
    head = result["headline"]["shipped"]
    for key in ("train_mdg", "heldout_mdg", "gap_mdg", "mild_motion", "heldout_shake"):
        assert head[key]["n"] > 0 and head[key]["low"] <= head[key]["mean"] <= head[key]["high"]
    gap = head["train_mdg"]["mean"] - head["heldout_mdg"]["mean"]
    assert head["gap_mdg"]["mean"] == pytest.approx(gap, abs=1e-3)
    sharp = result["sharp"]["shipped"]
    assert sharp["n"] == 1 and 10 < sharp["psnr_to_input"]["mean"] <= 100
    assert sharp["tone_shift_max_abs"] >= abs(sharp["tone_shift"]["mean"])
    saved = json.loads((tmp_path / "heldout.json").read_text())
    assert len(saved["rows"]) == 2 * (result["pairs"] - 1)  # shipped + blurred per blurred pair
    table = (tmp_path / "heldout.md").read_text()
    assert "gap (train - held-out)" in table and "| shipped |" in table

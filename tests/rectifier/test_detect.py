"""The blur detector: held-out synthetic numbers, real photos, and the `gir detect` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gir.data.blur import degrade, random_blur
from gir.data.imageio import read_image
from gir.data.sources.sample import load_sample_image, skimage_data_dir
from gir.rectifier.detect import BLURRED, FLAT, overlay
from gir.rectifier.detect import detect as detect_with
from gir.tracking.resolve import resolve_detector as get_detector
from tests.helpers import ROOT, run_gir


def detect(rgb):
    return detect_with(rgb, get_detector())


@pytest.fixture(scope="module")
def blur_map_scores():
    from gir.rectifier.detect_fit import blur_map_scores

    return blur_map_scores(get_detector(), per_image=3)   # partial composites, unfitted photos


def test_blur_map_on_composites_of_photos_the_tiles_never_saw(blur_map_scores):
    # Mild blur (3 px) is hard to see in one 32 px tile: the map is precise, recall is lower.
    assert blur_map_scores["precision"] >= 0.85 and blur_map_scores["f_measure"] >= 0.6, (
        blur_map_scores)
    assert blur_map_scores["flat_false_alarm_rate"] <= 0.05, blur_map_scores


def test_builtin_fit_is_shipped_current_and_fitted_on_sample_photos_only():
    from gir.benchmarks.heldout import HELDOUT_PHOTOS
    from gir.rectifier.detect import load_detector
    from gir.rectifier.detect_fit import (
        CALIBRATION_IMAGES,
        FIT_IMAGES,
        SHIPPED_FIT,
        inference_hash,
        recipe_hash,
    )

    shipped = load_detector(SHIPPED_FIT)
    assert shipped.fitted_on["code"] == inference_hash(), (
        "blur_features.py / detect.py changed: refit the shipped detector (docs/detector.md)")
    assert shipped.fitted_on["recipe"] == recipe_hash(), (
        "detect_fit.py changed: refit the shipped detector (docs/detector.md)")
    assert not set(FIT_IMAGES) & set(CALIBRATION_IMAGES)
    assert not (set(FIT_IMAGES) | set(CALIBRATION_IMAGES)) & set(HELDOUT_PHOTOS)
    assert get_detector().fitted_on == shipped.fitted_on


def test_partly_blurred_photo_gets_a_map_marking_the_moving_subject():
    """A moving subject (an ellipse, motion-blurred in linear light) on a sharp background."""
    from gir.data import blur
    from gir.rectifier.blur_features import block_mean
    from gir.rectifier.detect_fit import camera_finish

    rng = np.random.default_rng(3)
    sharp = blur.srgb_to_linear(load_sample_image("astronaut")[:320, 96:416] / 255.0)
    moving = blur.convolve(sharp, blur.motion_kernel(9.0, rng).astype(np.float64))
    yy, xx = np.mgrid[:320, :320]
    subject = ((yy - 170) / 110) ** 2 + ((xx - 190) / 90) ** 2 <= 1
    img = camera_finish(np.where(subject[..., None], moving, sharp), rng)
    det = detect(img)
    share = block_mean(subject.astype(np.float32), det.tile)   # of each tile in the subject
    inside, outside = det.labels[share >= 0.9], det.labels[share <= 0.1]
    assert (inside[inside != FLAT] == BLURRED).mean() > 0.7, det.report()["map"]
    assert (outside[outside != FLAT] == BLURRED).mean() < 0.3, det.report()["map"]


def test_sharp_call_says_why_and_follows_the_operating_point():
    from gir.rectifier.detect import with_operating_point

    det = detect(load_sample_image("astronaut"))
    assert not det.blurred and det.reason.startswith("sharp: blur score")
    assert "threshold" in det.reason and det.report()["false_alarm_rate"] == 0.05
    # Willing to call every sharp photo blurred: the threshold drops below any score.
    lax = detect_with(load_sample_image("astronaut"), with_operating_point(get_detector(), 0.5))
    assert lax.threshold < det.threshold


def test_clock_motion_is_blurred_by_motion():
    rgb, _ = read_image(skimage_data_dir() / "clock_motion.png")
    det = detect(rgb)
    assert det.blurred and det.blur_type == "motion", det.report()


@pytest.mark.parametrize("name", ["astronaut", "motorcycle_left"])
def test_sharp_photos_are_not_blurred(name):
    det = detect(load_sample_image(name))
    assert not det.blurred and det.blur_type is None, det.report()


def test_a_flat_image_is_all_flat_and_not_blurred():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :160]
    img = np.clip(np.stack([xx * 0.5 + 60, yy * 0.3 + 90, 120 + 0 * xx], -1)
                  + rng.normal(0, 2, (128, 160, 3)), 0, 255).astype(np.uint8)
    det = detect(img)
    assert (det.labels == FLAT).all() and not det.blurred


def test_map_marks_the_blurred_half():
    rng = np.random.default_rng(1)
    sharp = load_sample_image("astronaut")[:256, 128:384]
    blurred = degrade(sharp, random_blur("defocus", rng), rng)
    img = sharp.copy()
    img[:, 128:] = blurred[:, 128:]
    det = detect(img)
    left, right = det.labels[:, :3], det.labels[:, 5:]
    assert (right[right != FLAT] == BLURRED).mean() > 0.8
    assert (left[left != FLAT] == BLURRED).mean() < 0.3
    assert overlay(img, det).shape == img.shape


def test_tiny_and_grey_inputs_do_not_crash():
    det = detect(np.full((20, 30, 3), 128, np.uint8))
    assert det.labels.shape == (1, 1) and not det.blurred


def test_cli_detect_json_and_map(tmp_path):
    out = tmp_path / "map.png"
    proc = run_gir("detect", str(skimage_data_dir() / "clock_motion.png"), "--map", str(out),
                   "--json", cwd=ROOT)
    report = json.loads(proc.stdout)
    assert report["blurred"] is True and report["blur_type"] == "motion"
    assert report["blur_type_note"] == ""         # motion needs no caveat
    assert read_image(out)[0].shape == (300, 400, 3)


def test_cli_detect_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    proc = run_gir("detect", str(bad), cwd=ROOT, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_numpy_filters_equal_scipy_ndimage():
    """The features' filters are numpy (scipy.ndimage's import alone is ~0.4 s of `gir detect`)
    and must equal the scipy filters they replace, borders included, down to tiny images."""
    from scipy import ndimage

    from gir.rectifier.blur_features import box3, gaussian_blurs, line_range, noise_sigma

    rng = np.random.default_rng(0)
    for shape in [(61, 97), (3, 3), (5, 40)]:
        img = rng.random(shape).astype(np.float32)
        for s, mine in zip((1, 2, 4, 8), gaussian_blurs(img, (1, 2, 4, 8))):
            np.testing.assert_allclose(mine, ndimage.gaussian_filter(img, s, mode="reflect"),
                                       atol=1e-6)
        for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
            foot = np.zeros((11, 11), bool)
            foot[5 + np.arange(-5, 6) * dy, 5 + np.arange(-5, 6) * dx] = True
            want = ndimage.maximum_filter(img, footprint=foot) - ndimage.minimum_filter(
                img, footprint=foot)
            np.testing.assert_array_equal(line_range(img, dy, dx, 5), want)
        np.testing.assert_allclose(box3(img, "constant"), ndimage.uniform_filter(
            img, 3, mode="constant"), atol=1e-6)
        stack = np.stack([img, 2 * img], -1)
        np.testing.assert_allclose(box3(stack, "nearest"), ndimage.uniform_filter(
            stack, (3, 3, 1), mode="nearest"), atol=1e-6)
    img = rng.random((40, 50)).astype(np.float32)
    lap = ndimage.convolve(img, np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32))
    assert noise_sigma(img) == pytest.approx(np.sqrt(np.pi / 2) * np.abs(lap[1:-1, 1:-1]).mean()
                                             / 6.0, rel=1e-5)


def test_gir_detect_imports_stay_light_and_blocks_match_the_deblurrer():
    """`gir detect` must not import scipy or the fitting code's scipy.signal (the 1 s budget),
    and a photo up to 1280 px a side is one detection block, as it is one deblurring piece."""
    import subprocess
    import sys

    from gir.rectifier.detect import BLOCK
    from gir.rectifier.inference import AUTO_TILE_ABOVE

    assert BLOCK == AUTO_TILE_ABOVE
    code = ("import sys, gir.rectifier.detect, gir.rectifier.detect_fit, gir.data.imageio; "
            "print(sorted(m for m in sys.modules if m.startswith(('scipy', 'sklearn', 'mlflow'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert proc.stdout.strip() == "[]"


def test_bench_detect_times_the_function_and_the_command(tmp_path):
    from gir.benchmarks.detect_speed import detect_speed_bench

    result = detect_speed_bench(tmp_path, repeats=1)
    assert 0 < result["in_process"]["wall_s"] < result["command"]["wall_s"]
    assert json.loads((tmp_path / "detect_speed.json").read_text())["size"] == "1280x720"
    assert "gir detect PHOTO" in (tmp_path / "detect_speed.md").read_text()

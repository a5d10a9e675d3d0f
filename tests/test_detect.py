"""The blur detector: held-out synthetic numbers, real photos, and the `gir detect` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gir.data.blur import degrade, random_blur
from gir.rectifier.detect import BLURRED, FLAT, detect as detect_with, overlay
from gir.tracking.resolve import resolve_detector as get_detector


def detect(rgb):
    return detect_with(rgb, get_detector())
from gir.data.imageio import read_image
from gir.data.sources.sample import load_sample_image, skimage_data_dir
from tests.conftest import ROOT, run_gir


@pytest.fixture(scope="module")
def evaluation():
    from gir.rectifier.detect_fit import evaluate_detector

    return evaluate_detector(get_detector(), per_image=6)   # `gir detect-eval` reports per_image=12


def test_blur_map_f_measure_on_held_out_composites(evaluation):
    blur_map = evaluation["blur_map"]
    assert blur_map["f_measure"] >= 0.85, blur_map
    assert blur_map["flat_tiles"] > 50


def test_flat_regions_are_not_called_blurred(evaluation):
    assert evaluation["blur_map"]["flat_false_alarm_rate"] <= 0.02, evaluation["blur_map"]


def test_blur_type_accuracy_on_held_out_images(evaluation):
    assert evaluation["blur_type"]["accuracy"] >= 0.95, evaluation["blur_type"]


def test_held_out_photos_are_not_the_fitting_photos():
    from gir.rectifier.detect_fit import FIT_IMAGES, HELD_OUT_IMAGES

    assert not set(FIT_IMAGES) & set(HELD_OUT_IMAGES)
    assert get_detector().fitted_on["images"] == list(FIT_IMAGES)


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
    assert read_image(out)[0].shape == (300, 400, 3)


def test_cli_detect_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    proc = run_gir("detect", str(bad), cwd=ROOT, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

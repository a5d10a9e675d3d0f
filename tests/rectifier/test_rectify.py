"""`gir rectify`: blurred photos are deblurred, sharp ones come back untouched, with reports
(files given by name go through the same batch path as folders and prefixes)."""

from __future__ import annotations

import json

import numpy as np

from gir.data.blur import degrade, random_blur
from gir.data.imageio import read_image, write_png
from gir.data.sources.sample import load_sample_image
from gir.rectifier.batch import run_batch
from gir.rectifier.rectify import Decision, blur_type_note
from gir.tracking.resolve import resolve_detector
from tests.helpers import ROOT, run_gir


class CountingDeblurrer:
    """Stands in for the model: brightens a little so a deblurred output is recognisable."""

    def __init__(self):
        self.calls = 0

    def __call__(self, rgb):
        self.calls += 1
        return np.clip(rgb.astype(int) + 1, 0, 255).astype(np.uint8)


def photos(tmp_path):
    rng = np.random.default_rng(3)
    sharp = load_sample_image("astronaut")[::2, ::2][:256, :256]   # plainly sharp
    blurred = degrade(sharp, random_blur("motion", rng, motion_length=(15, 17)), rng)
    write_png(tmp_path / "sharp.png", sharp)
    write_png(tmp_path / "shaky.png", blurred)
    return sharp, blurred


def test_rectify_deblurs_only_the_blurred_photo(tmp_path):
    """Files given by name: the one batch path, OUT/<name>.png and .json, one report."""
    sharp, blurred = photos(tmp_path)
    model = CountingDeblurrer()
    out = tmp_path / "out"
    report = run_batch([str(tmp_path / "sharp.png"), str(tmp_path / "shaky.png"),
                        str(tmp_path / "missing.png")], str(out), "rectify",
                       lambda: (model, "counting"), resolve_detector())
    assert model.calls == 1
    actions = {w["input"]: w["action"].split(" ")[0] for w in report["written"]}
    assert actions == {str(tmp_path / "sharp.png"): "untouched",
                       str(tmp_path / "shaky.png"): "deblurred"}
    assert [f["input"] for f in report["failed"]] == [str(tmp_path / "missing.png")]
    assert np.array_equal(read_image(out / "sharp.png.png")[0], sharp)          # untouched
    assert not np.array_equal(read_image(out / "shaky.png.png")[0], blurred)    # deblurred
    sharp_report = json.loads((out / "sharp.png.json").read_text())
    shaky_report = json.loads((out / "shaky.png.json").read_text())
    assert sharp_report["blurred"] is False and sharp_report["action"].startswith("untouched")
    assert shaky_report["blurred"] is True and shaky_report["blur_type"] == "motion"
    assert shaky_report["blur_type_note"] == ""
    assert shaky_report["action"].startswith("deblurred")
    assert shaky_report["model"] == "counting"
    saved = json.loads((out / "_gir" / "report.json").read_text())
    assert saved["counts"]["written"] == 2 and saved["counts"]["failed"] == 1


def test_rectify_sharp_only_never_loads_a_model(tmp_path):
    photos(tmp_path)

    def no_model():
        raise AssertionError("model loaded for a sharp photo")

    report = run_batch([str(tmp_path / "sharp.png")], str(tmp_path / "out"), "rectify",
                       no_model, resolve_detector())
    assert [w["action"] for w in report["written"]] == ["untouched (not blurred)"]


def test_cli_rectify_with_the_tiny_model(tmp_path, tiny_run):
    photos(tmp_path)
    out = tmp_path / "out"
    proc = run_gir("rectify", str(tmp_path / "sharp.png"), str(tmp_path / "shaky.png"), "-o",
                   str(out), "--model", str(tiny_run.root / "models"), cwd=ROOT)
    assert "rectify: 2 written, 0 failed, 0 skipped, 0 not processed (1 deblurred, 1 untouched)" \
        in proc.stderr
    assert read_image(out / "shaky.png.png")[0].shape == (256, 256, 3)


def test_the_one_rule_acts_on_the_detectors_operating_point_and_says_why(tmp_path):
    from gir.rectifier.detect import with_operating_point
    from gir.rectifier.rectify import Rectifier

    sharp, _ = photos(tmp_path)
    strict = Rectifier(CountingDeblurrer, resolve_detector())
    out, decision = strict.rectify(sharp)
    assert not decision.deblurred and out is sharp and decision.action == "untouched (not blurred)"
    assert decision.reason and decision.report()["reason"] == decision.reason
    eager = Rectifier(CountingDeblurrer, with_operating_point(resolve_detector(), 1.0))
    out, decision = eager.rectify(sharp)      # calls every textured photo blurred
    assert decision.deblurred and decision.action.startswith("deblurred (")
    assert np.array_equal(out, np.clip(sharp.astype(int) + 1, 0, 255))


def test_detection_in_blocks_matches_the_whole_photo_map():
    from gir.rectifier.blur_features import to_grey
    from gir.rectifier.detect import _blur_map, blur_map_in_blocks

    detector = resolve_detector()
    rgb = np.tile(load_sample_image("astronaut"), (2, 2, 1))[:700, :1000]   # ragged edges
    grey = to_grey(rgb)
    whole_labels, whole_prob, whole_x = _blur_map(grey, detector)
    labels, prob, x = blur_map_in_blocks(grey, detector, block=256, margin=64)
    assert labels.shape == whole_labels.shape and x.shape == whole_x.shape
    assert (labels == whole_labels).mean() > 0.9        # only the noise level is per block
    assert (np.isnan(prob) == np.isnan(whole_prob)).mean() > 0.9   # flat: the same tiles
    one = blur_map_in_blocks(grey, detector, block=1024)
    assert np.array_equal(one[0], whole_labels)           # one block: exactly the whole map


def test_an_all_round_blur_type_names_its_look_alike():
    """Defocus and Gaussian are told apart on about half of real photos: both are named."""
    class Typed:
        def __init__(self, kind):
            self.kind = kind

        def report(self):
            return {"blurred": True, "blur_type": self.kind, "map": []}

    notes = {kind: Decision(Typed(kind), True, "deblurred", "why", 1, 0.1).report()[
        "blur_type_note"] for kind in ("defocus", "gaussian", "motion")}
    assert notes == {"defocus": "or Gaussian: the two look alike on real photos",
                     "gaussian": "or defocus: the two look alike on real photos", "motion": ""}
    assert blur_type_note(None) == ""

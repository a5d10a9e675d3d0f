"""Camera shake and realistic degradations (data.synth), and the held-out benchmark's pairs."""

import json

import numpy as np
import pytest

from gir.config import SplitConfig, SynthConfig
from gir.data import blur
from gir.steps.split import assign_scenes


def _photo(h=96, w=128):
    rng = np.random.default_rng(3)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


def _shake(extent=12.0, seed=5, **degradations):
    return blur.BlurSpec("shake", None, {"extent": extent, "focal_mm": 24.0, "seed": seed},
                         degradations=degradations)


def test_shake_path_has_the_drawn_extent_and_turns_the_camera():
    homs, _, realised = blur.shake_path({"extent": 20.0, "focal_mm": 28.0, "seed": 1}, (300, 400))
    assert realised["extent_px"] == pytest.approx(20.0, rel=0.02)
    assert realised["yaw_deg"] > 0 and realised["pitch_deg"] > 0
    assert len(homs) == realised["frames"] >= 8


def test_shake_blur_varies_across_the_frame():
    """A rotating camera moves the corners differently: the blur is not one kernel."""
    homs, _, _ = blur.shake_path({"extent": 20.0, "focal_mm": 24.0, "seed": 11}, (301, 301))
    pts = np.array([[0.0, 0.0, 1.0], [300.0, 300.0, 1.0], [150.0, 150.0, 1.0]])
    q = np.einsum("fij,pj->fpi", homs, pts)
    paths = q[..., :2] / q[..., 2:] - pts[None, :, :2]  # displacement of each point per frame
    assert np.abs(paths[:, 0] - paths[:, 1]).max() > 1.0  # opposite corners follow other paths


def test_a_crop_rendered_in_its_frame_matches_the_crop_of_the_whole_render():
    """Training re-blurs crops: with frame=..., a crop gets the blur its place in the photo has."""
    sharp = _photo(120, 160)
    whole = blur.degrade(sharp, _shake(10.0), np.random.default_rng(0))
    y0, x0, m = 30, 50, _shake(10.0).margin
    region = sharp[y0 - m: y0 + 48 + m, x0 - m: x0 + 48 + m]
    part = blur.degrade(region, _shake(10.0), np.random.default_rng(0),
                        frame=(120, 160, y0 - m, x0 - m))
    diff = np.abs(part[m:-m, m:-m].astype(int) - whole[y0:y0 + 48, x0:x0 + 48].astype(int))
    assert diff.max() <= 1


def test_degradations_are_drawn_recorded_and_off_when_switched_off():
    rng = np.random.default_rng(0)
    off = SynthConfig(linear_light=False, shot_noise=[0.0, 0.0], read_noise=[0.0, 0.0],
                      jpeg_probability=0.0, highlight_probability=0.0)
    plain = blur.synth_blur("motion", rng, off, severity="full")
    assert plain.degradations == {} and "degradations" not in json.loads(blur.params_json(plain))
    synth = SynthConfig(kinds=["shake"], shot_noise=[0.01, 0.02], read_noise=[0.001, 0.002],
                        jpeg_probability=1.0, highlight_probability=1.0)
    spec = blur.synth_blur("shake", rng, synth)
    out = blur.degrade(_photo(), spec, rng)
    recorded = json.loads(blur.params_json(spec))
    assert set(recorded["degradations"]) == {"shot_noise", "read_noise", "jpeg_quality", "linear_light",
                                             "highlight_gain", "highlight_share"}
    assert recorded["frames"] >= 8 and out.dtype == np.uint8 and out.shape == (96, 128, 3)


def test_highlights_clip_into_streaks():
    sharp = np.full((64, 64, 3), 40, np.uint8)
    sharp[30:34, 30:34] = 250  # a small lamp
    boosted = blur.degrade(sharp, _shake(6.0, highlight_gain=4.0, highlight_share=16 / 4096),
                           np.random.default_rng(0))
    plain = blur.degrade(sharp, _shake(6.0), np.random.default_rng(0))
    saturated = (boosted.min(axis=-1) >= 254).sum()
    assert saturated > 16 and (plain.min(axis=-1) >= 254).sum() < saturated  # spread, clipped
    assert boosted[0, 0, 0] == plain[0, 0, 0]  # the rest of the photo is not boosted


def test_the_sharp_target_shows_the_boosted_light_clipped_at_full_scale():
    """Both sides of a pair see the same scene: where the blur got light above full scale, the
    sharp target is as bright there (clipped at full scale), not the darker lamp of the photo;
    elsewhere it is the photo."""
    sharp = np.full((64, 64, 3), 40, np.uint8)
    sharp[30:34, 30:34] = (200, 150, 90)  # a small warm lamp, below full scale
    spec = _shake(6.0, highlight_gain=4.0, highlight_share=16 / 4096)
    target = blur.sharp_target(sharp, spec)
    lamp = target[30:34, 30:34].astype(int)
    assert (lamp[..., :2] == 255).all() and (lamp[..., 2] > 90).all()  # red, green clip at 255
    assert np.array_equal(target[:30], sharp[:30]) and np.array_equal(target[34:], sharp[34:])
    assert blur.sharp_target(sharp, _shake(6.0)) is sharp  # nothing boosted: the photo itself


def test_highlight_pairs_keep_their_own_sharp_target(tmp_path):
    """The synthetic source writes a boosted pair's target beside the shared photo, and fresh
    training blurs pair with the same kind of target."""
    from gir.data.dataset import CropDataset, Pair
    from gir.data.manifest import sha256_bytes
    from gir.data.sources.synthetic import synthesize_pairs

    sharp = np.full((64, 64, 3), 40, np.uint8)
    sharp[28:36, 28:36] = 220
    synth = SynthConfig(kinds=["motion", "shake"], per_image=2, highlight_probability=1.0,
                        highlight_gain=[4.0, 4.0], highlight_share=[0.01, 0.01],
                        shares={"full": 1.0})
    rows = synthesize_pairs(sharp, "lamp", "lamp", "test", tmp_path, synth, seed=0)
    # Both blurs clip the lamp to the same white: one target file, named after its first pair.
    assert [r["sharp_path"] for r in rows] == ["sharp/lamp-00.png", "sharp/lamp-00.png"]
    for r in rows:
        data = (tmp_path / r["sharp_path"]).read_bytes()
        assert sha256_bytes(data) == r["sharp_sha256"]
    photo = (tmp_path / "sharp/lamp.png").read_bytes()  # the photo itself is kept as it was
    assert sha256_bytes(photo) != rows[0]["sharp_sha256"]
    ds = CropDataset([Pair("lamp-00", "motion", sharp, sharp, {}, "")], 64, 1, seed=0,
                     resynth=1.0, synth=synth)
    _, target = ds[0]
    assert target.numpy().max() == pytest.approx(1.0)  # the lamp (220) clipped at 255


def test_the_test_split_holds_several_scenes():
    scenes = [f"s{i}" for i in range(11)]
    mapping = assign_scenes(scenes, SplitConfig(), seed=0)
    assert list(mapping.values()).count("test") == 3
    assert list(mapping.values()).count("train") >= 7
    few = assign_scenes(scenes[:4], SplitConfig(), seed=0)
    assert sorted(few.values()).count("train") >= 1

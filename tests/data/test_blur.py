"""Synthetic blur kernels: normalised, centred, of the requested extent; degradation is 8-bit."""

import numpy as np
import pytest
from scipy import ndimage

from gir.data import blur


@pytest.mark.parametrize("make", [
    lambda rng: blur.motion_kernel(15, rng),
    lambda rng: blur.defocus_kernel(4),
    lambda rng: blur.gaussian_kernel(2),
])
def test_kernels_are_normalised_odd_and_centred(make):
    k = make(np.random.default_rng(0))
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    assert k.min() >= 0 and k.shape[0] % 2 == 1 and k.shape[0] == k.shape[1]
    cy, cx = ndimage.center_of_mass(k)
    c = k.shape[0] // 2
    assert abs(cy - c) <= 1 and abs(cx - c) <= 1


def test_motion_kernel_extent_matches_length_and_varies_with_seed():
    k1 = blur.motion_kernel(15, np.random.default_rng(1))
    k2 = blur.motion_kernel(15, np.random.default_rng(2))
    ys, xs = np.nonzero(k1 > 1e-3)
    assert 12 <= max(np.ptp(ys), np.ptp(xs)) <= 18
    assert k1.shape != k2.shape or not np.allclose(k1, k2)


def test_defocus_disk_radius_and_gaussian_sigma():
    d = blur.defocus_kernel(5)
    assert d.shape[0] in (11, 13)
    assert d[d.shape[0] // 2].max() == pytest.approx(d.max())
    g = blur.gaussian_kernel(2)
    yy, xx = np.mgrid[: g.shape[0], : g.shape[1]] - g.shape[0] // 2
    assert np.sqrt((g * xx**2).sum()) == pytest.approx(2, rel=0.05)


def test_degrade_blurs_and_quantises():
    rng = np.random.default_rng(0)
    sharp = (rng.random((64, 80, 3)) * 255).astype(np.uint8)
    spec = blur.random_blur("defocus", rng, noise_sigma=(0, 0))
    out = blur.degrade(sharp, spec, rng)
    assert out.dtype == np.uint8 and out.shape == sharp.shape
    assert out.std() < sharp.std()  # blur removes variance of white noise
    with pytest.raises(ValueError):
        blur.random_blur("swirl", rng)


# --------------------------------------------------------------------------- synthesis v3


@pytest.mark.parametrize("family", ["smooth_walk", "jittery_walk", "boracchi_foi", "linear"])
@pytest.mark.parametrize("length", [1.5, 12.0])
def test_motion_families_reach_their_length_from_mild_to_full(family, length):
    from gir.data import psf

    k, drawn = psf.MOTION_FAMILIES[family](length, np.random.default_rng(4))
    assert k.sum() == pytest.approx(1.0, abs=1e-5) and k.shape[0] % 2 == 1
    ys, xs = np.nonzero(k > k.max() * 0.02)
    assert length - 2 <= max(np.ptp(ys), np.ptp(xs)) <= length + 2
    assert isinstance(drawn, dict)


def test_polygonal_aperture_with_spherical_aberration_has_a_bright_rim():
    from gir.data import psf

    round_, hexagon = psf.aperture_kernel(6.0), psf.aperture_kernel(6.0, blades=6)
    assert round_.shape == hexagon.shape and not np.allclose(round_, hexagon, atol=1e-4)
    rim = psf.aperture_kernel(6.0, spherical=0.8)
    c = rim.shape[0] // 2
    assert rim[c, c] < rim[c, c + 5]  # brighter towards the edge than at the centre


def _synth(**kw):
    from gir.config import SynthConfig

    return SynthConfig(**kw)


def test_severity_shares_draw_identity_and_mild_pairs_and_record_them():
    import json

    rng = np.random.default_rng(0)
    sharp = (np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)
    ident = blur.synth_blur("motion", rng, _synth(shares={"sharp": 1.0}))
    assert ident.kind == "sharp" and ident.margin == 0
    assert np.array_equal(blur.degrade(sharp, ident, rng), sharp)  # left alone, noise too
    mild = blur.synth_blur("motion", rng, _synth(shares={"mild": 1.0}))
    recorded = json.loads(blur.params_json(mild))
    assert recorded["severity"] == "mild" and 1.0 <= recorded["length"] <= 6.0
    assert recorded["family"] in ("smooth_walk", "jittery_walk", "boracchi_foi", "linear")
    assert recorded["degradations"]["linear_light"] is True
    assert blur.synth_blur("motion", rng, _synth(shares={"sharp": 1.0}),
                           allow_sharp=False).kind == "motion"  # stored pairs: no identity


def test_linear_light_blur_brightens_an_edge_as_a_camera_does():
    """Averaging light, not sRGB values: a blurred black/white edge is brighter in linear light."""
    sharp = np.zeros((32, 32, 3), np.uint8)
    sharp[:, 16:] = 255
    spec = blur.BlurSpec("gaussian", blur.gaussian_kernel(3.0), {"sigma": 3.0})
    srgb = blur.degrade(sharp, spec, np.random.default_rng(0))
    spec.degradations = {"linear_light": True}
    linear = blur.degrade(sharp, spec, np.random.default_rng(0))
    assert linear[:, 12:20].mean() > srgb[:, 12:20].mean() + 10


def test_depth_varying_defocus_crop_matches_the_whole_render():
    rng = np.random.default_rng(2)
    synth = _synth(defocus_depth_probability=1.0, shares={"full": 1.0}, shot_noise=[0, 0],
                   read_noise=[0, 0], jpeg_probability=0.0, highlight_probability=0.0)
    spec = blur.synth_blur("defocus", rng, synth)
    assert spec.kernel is None and "radius_near" in spec.params
    sharp = (np.random.default_rng(3).random((80, 96, 3)) * 255).astype(np.uint8)
    whole = blur.degrade(sharp, spec, rng)
    m, y0, x0 = spec.margin, 20, 30
    region = sharp[y0 - m: y0 + 24 + m, x0 - m: x0 + 24 + m]
    part = blur.degrade(region, spec, rng, frame=(80, 96, y0 - m, x0 - m))
    diff = np.abs(part[m:-m, m:-m].astype(int) - whole[y0:y0 + 24, x0:x0 + 24].astype(int))
    assert diff.max() <= 1


@pytest.mark.parametrize("override,message", [
    ("data.synth.shares={full: 0.5, mild: 0.2}", "data.synth.shares: full + mild + sharp must be 1"),
    ("data.synth.shares={full: 0.9, blurry: 0.1}", "unknown severity 'blurry'"),
    ("data.synth.motion_families=[spiral]", "data.synth.motion_families"),
])
def test_bad_synthesis_params_are_one_clear_line(override, message):
    import re

    from gir.config import ConfigError
    from tests.helpers import tiny_params

    with pytest.raises(ConfigError, match=re.escape(message)):
        tiny_params(override)


def test_stored_pairs_keep_every_drawn_value_and_are_never_identity(tmp_path):
    import json

    from gir.data.sources.synthetic import synthesize_pairs

    sharp = (np.random.default_rng(5).random((48, 48, 3)) * 255).astype(np.uint8)
    synth = _synth(kinds=["motion", "defocus"], per_image=4,
                   shares={"full": 0.4, "mild": 0.3, "sharp": 0.3})
    rows = synthesize_pairs(sharp, "p", "p", "test", tmp_path, synth, seed=0)
    assert [r["blur_kind"] for r in rows] == ["motion", "defocus"] * 2
    for r in rows:
        params = json.loads(r["blur_params"])
        assert params["severity"] in ("full", "mild") and "degradations" in params

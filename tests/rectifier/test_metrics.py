"""Third-party metrics and references checked on cases with a known answer."""

import numpy as np
import pytest

from gir.rectifier.scoring import psnr, ssim, summarise, unsharp_reference


def test_psnr_matches_the_formula():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] += 10  # MSE = 100 / 3
    expected = 10 * np.log10(255**2 / (100 / 3))
    assert psnr(a, b) == pytest.approx(expected, abs=1e-6)


def test_ssim_matches_the_formula_on_flat_images():
    # Flat images: only the luminance term remains, (2 mx my + C1) / (mx^2 + my^2 + C1).
    a = np.full((32, 32, 3), 100, np.uint8)
    b = np.full((32, 32, 3), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-6)
    rng = np.random.default_rng(0)
    x = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    noisy = np.clip(x + rng.normal(0, 40, x.shape), 0, 255).astype(np.uint8)
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, noisy) < 0.95


def test_unsharp_reference_sharpens_each_channel_sanely():
    from gir.data import blur
    from gir.data.sources.sample import load_sample_image
    from gir.data.sources.synthetic import cap_size

    sharp = cap_size(load_sample_image("astronaut"), 128)
    rng = np.random.default_rng(0)
    blurred = blur.degrade(sharp, blur.random_blur("gaussian", rng, gaussian_sigma=(1, 1),
                                                   noise_sigma=(0, 0)), rng)
    out = unsharp_reference(blurred, None)
    assert out.shape == sharp.shape and out.dtype == np.uint8
    # Per-channel means are preserved (the skimage RGB pitfall would shift them).
    assert np.abs(out.mean((0, 1)) - blurred.mean((0, 1))).max() < 3
    assert psnr(sharp, out) > psnr(sharp, blurred)


def test_summarise_reports_per_method_and_kind():
    rows = [{"pair_id": "a", "blur_kind": "motion", "method": "model", "psnr": 30, "ssim": .9},
            {"pair_id": "b", "blur_kind": "defocus", "method": "model", "psnr": 20, "ssim": .7},
            {"pair_id": "a", "blur_kind": "motion", "method": "blurred", "psnr": 25, "ssim": .8}]
    s = summarise(rows)
    assert s["methods"]["model"]["psnr"] == 25 and s["methods"]["model"]["n"] == 2
    assert s["per_kind"]["motion"]["blurred"]["psnr"] == 25
    assert "blurred" not in s["per_kind"]["defocus"]

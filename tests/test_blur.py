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

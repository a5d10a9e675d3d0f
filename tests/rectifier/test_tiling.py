"""Tiled inference: no seams, same answer as whole-image inference, streaming bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gir.data.sources.sample import load_sample_image
from gir.nn import build_generator
from gir.rectifier.inference import Deblurrer, blend_ramp, tile_starts


@pytest.fixture(scope="module")
def generator():
    """A small NAFNet whose blocks are switched on (fresh NAFNet blocks start as identity)."""
    torch.manual_seed(0)
    g = build_generator("nafnet", {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1,
                                   "dec_blocks": [1, 1]})
    for name, p in g.named_parameters():
        if name.endswith(("beta", "gamma")):
            p.data.fill_(0.5)
    return g


H, W = 256, 360


def gradient_image(h=H, w=W):
    yy, xx = np.mgrid[:h, :w]
    return np.stack([xx / w * 255, yy / h * 255, (xx + yy) / (w + h) * 255], -1).astype(np.uint8)


@pytest.mark.parametrize("kind", ["gradient", "natural"])
def test_tiled_matches_whole_image_without_seams(generator, kind):
    img = gradient_image() if kind == "gradient" else load_sample_image("astronaut")[:H, :W]
    whole = Deblurrer(generator, "cpu", tile=0)(img).astype(int)
    tiled = Deblurrer(generator, "cpu", tile=128, overlap=32)(img).astype(int)
    assert tiled.shape == whole.shape
    diff = np.abs(tiled - whole)
    assert diff.max() <= 4 and diff.mean() < 0.5, (diff.max(), diff.mean())
    # A seam would be a step in the tiled output at tile borders that the whole image lacks.
    steps = np.abs(np.diff(tiled, axis=1)) - np.abs(np.diff(whole, axis=1))
    starts = tile_starts(W, 128, 32)[1:]
    borders = [x - 1 for x in starts] + [x + 31 for x in starts]
    assert np.abs(steps[:, borders]).mean() < 0.5


def test_tiles_cover_the_image_with_the_overlap():
    assert tile_starts(100, 128, 32) == [0]
    starts = tile_starts(1000, 128, 32)
    assert starts[0] == 0 and starts[-1] == 1000 - 128
    assert all(b - a <= 96 for a, b in zip(starts, starts[1:]))


def test_blend_ramp_is_positive_and_flat_at_image_borders():
    w = blend_ramp(128, 32, ramp_start=False, ramp_end=True)
    assert w[0] == 1 and w.min() > 0 and w[-1] < 0.01


def test_auto_tile_only_for_large_images(generator):
    d = Deblurrer(generator, "cpu")
    assert d.tile_size(800, 600) == 0 and d.tile_size(3000, 2000) == 512
    assert Deblurrer(generator, "cpu", tile=256).tile_size(200, 200) == 0

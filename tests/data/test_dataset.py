"""Training crops: fixed by (seed, index), and `train.resynth` re-blurs synthetic crops honestly."""

from __future__ import annotations

import numpy as np
import pytest

from gir.config import SynthConfig
from gir.data import blur
from gir.data.dataset import CropDataset, Pair


def _pair(kernel_path: str, seed: int = 0, kind: str = "defocus") -> Pair:
    rng = np.random.default_rng(seed)
    sharp = (rng.random((80, 96, 3)) * 255).astype(np.uint8)
    stored = blur.degrade(sharp, blur.random_blur("defocus", rng), rng)
    return Pair("p-00", kind, stored, sharp, {}, kernel_path)


def test_crops_are_fixed_by_index_and_resynth_changes_only_synthetic_pairs():
    synthetic, real = _pair("kernels/p-00.npy"), _pair("", kind="real")
    # Full blur only, no boosted highlights: the fresh pair's target is then the photo's crop.
    full = SynthConfig(highlight_probability=0, shares={"full": 1.0, "mild": 0.0, "sharp": 0.0})
    stored = CropDataset([synthetic], 32, 10, seed=3)
    fresh = CropDataset([synthetic], 32, 10, seed=3, resynth=1.0, synth=full)
    again = CropDataset([synthetic], 32, 10, seed=3, resynth=1.0, synth=full)
    for i in (0, 7):
        assert np.array_equal(fresh[i][0].numpy(), again[i][0].numpy())  # fixed by (seed, i)
        assert np.array_equal(fresh[i][1].numpy(), stored[i][1].numpy())  # same sharp crop
        assert not np.array_equal(fresh[i][0].numpy(), stored[i][0].numpy())
    # A real pair (GoPro's real blur) is never re-blurred.
    real_stored = CropDataset([real], 32, 10, seed=3)
    real_fresh = CropDataset([real], 32, 10, seed=3, resynth=1.0)
    assert np.array_equal(real_fresh[4][0].numpy(), real_stored[4][0].numpy())
    # A shake pair has no kernel file, and is re-blurred all the same.
    shaken = CropDataset([_pair("", kind="shake")], 32, 10, seed=3, resynth=1.0,
                         synth=SynthConfig(kinds=["shake"]))
    assert not np.array_equal(shaken[4][0].numpy(), CropDataset([_pair("", kind="shake")], 32,
                                                                10, seed=3)[4][0].numpy())


@pytest.mark.parametrize("y,x", [(24, 30), (0, 0), (48, 64)])  # interior, corner, far corner
def test_fresh_blur_matches_blurring_the_whole_photo(y, x):
    """The crop's margin makes a re-blurred crop equal to the same crop of the whole photo
    blurred with the same kernel, at the photo's borders too (both reflect there)."""
    synth = SynthConfig(kinds=["motion"], noise_sigma=[0.0, 0.0], shot_noise=[0.0, 0.0],
                        read_noise=[0.0, 0.0], jpeg_probability=0, highlight_probability=0)
    pair = _pair("k.npy")
    ds = CropDataset([pair], 32, 1, seed=0, resynth=1.0, synth=synth)
    got, target = ds._fresh_pair(pair.sharp, y, x, np.random.default_rng(11))
    rng = np.random.default_rng(11)
    spec = blur.synth_blur(str(rng.choice(synth.kinds)), rng, synth)
    whole = blur.degrade(pair.sharp, spec, rng)
    want = whole[y: y + 32, x: x + 32]
    assert got.shape == want.shape == (32, 32, 3)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert np.array_equal(target, pair.sharp[y: y + 32, x: x + 32])  # no highlights: the photo


def test_resynth_must_be_a_share():
    from gir.config import ConfigError, params_from_dict

    with pytest.raises(ConfigError, match="train.resynth: must be between 0 and 1"):
        params_from_dict({"train": {"resynth": 1.5}})


def test_resynth_weights_draw_the_kinds_that_often(monkeypatch):
    """train.resynth_weights {motion: 3, gaussian: 0}: motion is drawn for ~3/4 of the fresh
    blurs, defocus (not named: 1) for the rest, gaussian never; an empty mapping is no
    weighting (the equal draw earlier runs made)."""
    from gir.errors import GirError

    drawn = []
    real_synth_blur = blur.synth_blur

    def recording(kind, rng, synth):
        drawn.append(kind)
        return real_synth_blur(kind, rng, synth)

    monkeypatch.setattr(blur, "synth_blur", recording)
    synth = SynthConfig(kinds=["motion", "defocus", "gaussian"])
    pair = _pair("k.npy")
    weighted = CropDataset([pair], 16, 300, seed=1, resynth=1.0, synth=synth,
                           resynth_weights={"motion": 3.0, "gaussian": 0.0})
    for i in range(len(weighted)):
        weighted[i]
    assert 0.65 < drawn.count("motion") / len(drawn) < 0.85
    assert "gaussian" not in drawn and "defocus" in drawn

    equal = CropDataset([pair], 16, 5, seed=1, resynth=1.0, synth=synth)
    unweighted = CropDataset([pair], 16, 5, seed=1, resynth=1.0, synth=synth, resynth_weights={})
    assert all(np.array_equal(equal[i][0].numpy(), unweighted[i][0].numpy()) for i in range(5))
    with pytest.raises(GirError, match="every data.synth kind has weight 0"):
        CropDataset([pair], 16, 5, seed=1, resynth=1.0, synth=synth,
                    resynth_weights={"motion": 0, "defocus": 0, "gaussian": 0})


def test_resynth_weights_name_known_kinds():
    from gir.config import ConfigError, params_from_dict

    with pytest.raises(ConfigError,
                       match="train.resynth_weights: expected one of .*'shake', got 'blury'"):
        params_from_dict({"train": {"resynth_weights": {"blury": 2.0}}})
    with pytest.raises(ConfigError, match="train.resynth_weights.motion: expected a number"):
        params_from_dict({"train": {"resynth_weights": {"motion": "often"}}})
    with pytest.raises(ConfigError, match="train.resynth_weights: weights must be 0 or more"):
        params_from_dict({"train": {"resynth_weights": {"motion": -1.0}}})
    assert params_from_dict({"train": {"resynth_weights": {"motion": 2}}}).train.resynth_weights \
        == {"motion": 2.0}

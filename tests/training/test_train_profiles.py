"""Training profiles: profiles/gpu.yaml is params.yaml plus the keys it changes."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT


def test_gpu_profile_overrides_only_what_it_names():
    from gir.config import load_params

    base, gpu = load_params(ROOT / "params.yaml"), load_params(ROOT / "profiles/gpu.yaml")
    assert gpu.train.crop == 256 and gpu.train.steps >= 100_000
    assert gpu.train.amp and gpu.train.channels_last and gpu.train.device == "cuda"
    assert gpu.data == base.data and gpu.evaluate == base.evaluate  # inherited
    assert gpu.train.loss == base.train.loss
    assert gpu.model.generator_args["width"] == 20  # replaced whole, not merged
    over = load_params(ROOT / "profiles/gpu.yaml", ["train.steps=10"])
    assert over.train.steps == 10 and over.train.crop == 256


def test_gpu_profile_generator_fits_the_mobile_budget():
    """DeblurGAN-v2's MobileNet variant costs about 44 GMACs at 1280x720: so may ours."""
    from gir.benchmarks.models import count_gmacs
    from gir.config import load_params

    gpu = load_params(ROOT / "profiles/gpu.yaml")
    assert count_gmacs(gpu.model.generator, gpu.model.generator_args) <= 45


def test_profile_base_must_be_another_file(tmp_path):
    from gir.config import ConfigError, load_params

    (tmp_path / "p.yaml").write_text("base: p.yaml\n")
    with pytest.raises(ConfigError, match="not another params file"):
        load_params(tmp_path / "p.yaml")
    (tmp_path / "q.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="not another params file"):
        load_params(tmp_path / "q.yaml")

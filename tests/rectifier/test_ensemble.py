"""The self-ensemble: every view mapped back exactly, the same as rotating tensors by hand,
bad sizes refused in one line, and another model to the batch ledger."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from batchkit import TINY_NAFNET, tiny_model  # noqa: F401
from gir.errors import GirError
from gir.nn import build_generator
from gir.rectifier.ensemble import self_ensemble
from gir.rectifier.inference import Deblurrer
from tests.helpers import run_gir

H, W = 37, 53   # odd and not square: a transposed view has another shape


def image(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_every_view_is_mapped_back(n):
    rgb = image()
    assert np.array_equal(self_ensemble(lambda x: x.astype(np.float32), rgb, n), rgb)
    # A restorer that adds its column index: each view's columns are another axis or
    # direction of the photo, so the mean adds a constant only if each was mapped back.
    added = {1: np.arange(W)[None, :, None], 2: (W - 1) / 2, 4: (W - 1) / 2,
             8: (W + H - 2) / 4}[n]
    out = self_ensemble(lambda x: x + np.arange(x.shape[1], dtype=np.float32)[None, :, None],
                        rgb, n)
    np.testing.assert_allclose(out, rgb + np.broadcast_to(added, rgb.shape), atol=1e-4)


def test_the_deblurrer_equals_the_eight_rotations_and_mirrors_by_hand():
    torch.manual_seed(0)
    g = build_generator("nafnet", TINY_NAFNET)
    for name, p in g.named_parameters():
        if name.endswith(("beta", "gamma")):
            p.data.fill_(0.5)   # fresh NAFNet blocks are the identity; switch them on
    g.eval()
    rgb = image(1)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    outs = []
    with torch.no_grad():
        for mirror in (False, True):
            for k in range(4):
                v = torch.rot90(x.flip(3) if mirror else x, k, (2, 3))
                y = torch.rot90(g(v).clamp(0, 1), -k, (2, 3))   # each view is an image
                outs.append(y.flip(3) if mirror else y)
    expected = torch.stack(outs).mean(0)[0].permute(1, 2, 0).numpy()
    got = Deblurrer(g, "cpu", ensemble=8).run_patch(rgb)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(got - Deblurrer(g, "cpu").run_patch(rgb)).max() > 1e-3   # not a no-op


def test_a_bad_size_is_one_line(tmp_path):
    with pytest.raises(GirError, match="not one of 1, 2, 4, 8"):
        Deblurrer(build_generator("nafnet", TINY_NAFNET), "cpu", ensemble=3)
    Image.fromarray(image()).save(tmp_path / "a.png")
    proc = run_gir("deblur", "a.png", "-o", "out", "--ensemble", "3", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--ensemble" in proc.stderr.splitlines()[-1]


def test_the_ledger_takes_another_ensemble_for_another_model(tiny_model, tmp_path):  # noqa: F811
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(2):
        Image.fromarray(image(i, 48, 64)).save(src / f"p{i}.png")

    def deblur(*flags):
        run_gir("deblur", str(src), "-o", "out", "--model", str(tiny_model), *flags,
                cwd=tmp_path)
        report = json.loads((tmp_path / "out" / "_gir" / "report.json").read_text())
        return report, {p: np.asarray(Image.open(tmp_path / "out" / f"{p}.png.png"))
                        for p in ("p0", "p1")}   # <rel>.png

    report, plain = deblur()
    assert report["counts"]["written"] == 2 and "self-ensemble" not in report["model"]
    report, _ = deblur("--ensemble", "2")      # another model: only redone when asked
    assert report["counts"]["written"] == 0
    report, views = deblur("--ensemble", "2", "--reprocess")
    assert report["counts"]["written"] == 2
    assert report["model"].endswith("self-ensemble of 2 views")
    assert any(np.abs(plain[p].astype(int) - views[p]).max() > 0 for p in plain)

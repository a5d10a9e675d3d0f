"""ONNX export of the registered generator; onnxruntime output equals PyTorch's within 1e-3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import run_gir


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "gir.onnx"
    run_gir("export", "--onnx", str(out), "--model", "models:/gir-deblur@champion",
            cwd=tiny_run.root, env={"MLFLOW_TRACKING_URI": tiny_run.uri})
    return out


@pytest.mark.parametrize("hw", [(64, 64), (37, 83)])
def test_onnx_matches_pytorch(tiny_run, exported, hw):
    import onnxruntime as ort

    from gir.rectifier.inference import load_generator

    model = load_generator(tiny_run.root / "models")
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(x).numpy()
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-3


@pytest.mark.parametrize("ensemble", [1, 4])
def test_deblur_cli_with_onnx_runtime(tiny_run, exported, tmp_path, ensemble):
    from gir.data.imageio import read_rgb, write_png
    from gir.rectifier.inference import Deblurrer, load_generator

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)
    write_png(tmp_path / "in.png", img)
    run_gir("deblur", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--runtime", "onnx",
            "--model", str(exported), "--ensemble", str(ensemble), cwd=tmp_path)
    got = read_rgb(tmp_path / "out" / "in.png.png")
    want = Deblurrer(load_generator(tiny_run.root / "models"), ensemble=ensemble)(img)
    assert got.shape == img.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # rounding of 1e-3 differences


def test_onnx_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    from gir.data.imageio import write_png

    write_png(tmp_path / "in.png", np.zeros((32, 32, 3), np.uint8))   # a photo: the model loads
    proc = run_gir("deblur", str(tmp_path / "in.png"), "-o", str(tmp_path / "o"), "--runtime",
                   "onnx", "--model", str(bad), cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "not a loadable ONNX model" in proc.stderr
    proc = run_gir("export", "--onnx", str(tmp_path / "x.onnx"), "--model", str(tmp_path),
                   cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr

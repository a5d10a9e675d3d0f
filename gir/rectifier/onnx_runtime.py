"""ONNX export of a trained generator and onnxruntime inference (no PyTorch needed to run it).

``gir export --onnx OUT.onnx`` turns a model directory (a registered MLflow model is fetched into
one by gir.tracking.resolve) into an ONNX graph with dynamic batch/height/width axes; ``gir deblur --runtime onnx --model OUT.onnx`` runs
it on CPU through onnxruntime with the same pre/post-processing as the PyTorch Deblurrer.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from gir.errors import GirError
from gir.rectifier.tiling import TiledRestorer

ONNX_FILE = "generator.onnx"
OPSET = 18


def export_onnx(model_dir: str | os.PathLike, out: str | os.PathLike, check_size: int = 64,
                label: str | None = None) -> Path:
    """Export the generator in model_dir to ONNX with dynamic N/H/W axes (label names it in errors)."""
    import torch

    from gir.data.imageio import atomic_path
    from gir.nn import for_inference
    from gir.rectifier.inference import load_generator

    out = Path(out)
    model = label or str(model_dir)
    generator = for_inference(load_generator(model_dir, "cpu").float().eval())
    example = torch.rand(1, 3, check_size, check_size)
    axes = {0: "batch", 2: "height", 3: "width"}
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The TorchScript exporter: seconds instead of the dynamo exporter's minute, and no
        # onnxscript dependency. Neither exporter handles the FFTs of fourier_unet today.
        with atomic_path(out) as tmp_path, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(generator, (example,), str(tmp_path), dynamo=False,
                              opset_version=OPSET, input_names=["image"],
                              output_names=["restored"],
                              dynamic_axes={"image": axes, "restored": axes})
    except GirError:
        raise
    except Exception as exc:  # exporter failures are many and deep; say which model failed
        raise GirError(f"ONNX export of {model} failed: "
                       f"{str(exc).strip().splitlines()[0][:200]}") from None
    # Run the exported graph once at an odd size: a frozen shape fails here, not for a user.
    OnnxDeblurrer(out)(np.zeros((37, 53, 3), np.uint8))
    return out


class OnnxDeblurrer(TiledRestorer):
    """The exported graph run by onnxruntime on CPU, with the PyTorch Deblurrer's call (whole
    image or tiles, self-ensemble): about twice as fast there, and no torch import."""

    def __init__(self, path: str | os.PathLike, threads: int = 0, ensemble: int = 1,
                 tile: int = 0, overlap: int = 32, progress: bool | None = None):
        import onnxruntime as ort

        super().__init__(tile, overlap, progress, ensemble)
        path = Path(path)
        if path.is_dir():
            path = path / ONNX_FILE
        if not path.is_file():
            raise GirError(f"{path}: no ONNX model here (make one with `gir export --onnx`)")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise GirError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]})") \
                from None
        self.input = self.session.get_inputs()[0].name

    def forward(self, rgb: np.ndarray) -> np.ndarray:
        """One pass of the graph: (h, w, 3) uint8 in, float32 in [0, 1] out."""
        x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        y = self.session.run(None, {self.input: x})[0][0]
        return np.clip(y, 0, 1).transpose(1, 2, 0)


def onnxruntime_available() -> bool:
    """Whether onnxruntime can be imported here (it is a dependency; a broken install is not)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None

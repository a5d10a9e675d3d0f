"""ONNX export of a trained generator and onnxruntime inference (no PyTorch needed to run it).

``gir export --onnx OUT.onnx`` turns a model directory or a registered MLflow model into an ONNX
graph with dynamic batch/height/width axes; ``gir deblur --runtime onnx --model OUT.onnx`` runs
it on CPU through onnxruntime with the same pre/post-processing as the PyTorch Deblurrer.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from gir.errors import GirError

ONNX_FILE = "generator.onnx"
OPSET = 18


def _model_dir(model: str) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """A local directory holding generator.json + generator.pt for a dir or an MLflow URI."""
    from gir.inference import SPEC_FILE

    if Path(model).is_dir():
        return Path(model), None
    if "://" in model or model.startswith(("models:/", "runs:/")):
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        from gir.config import MlflowConfig
        from gir.tracking import setup

        setup(MlflowConfig(), experiment=False)
        tmp = tempfile.TemporaryDirectory(prefix="gir-export-")
        try:
            root = Path(mlflow.artifacts.download_artifacts(artifact_uri=model, dst_path=tmp.name))
        except MlflowException as exc:
            tmp.cleanup()
            raise GirError(f"cannot load model {model}: {str(exc).splitlines()[0]}") from None
        specs = list(root.rglob(SPEC_FILE))
        if not specs:
            tmp.cleanup()
            raise GirError(f"{model} is not a GIR deblurring model (no {SPEC_FILE})")
        return specs[0].parent, tmp
    raise GirError(f"--model {model}: neither a model directory nor an MLflow model URI")


def export_onnx(model: str, out: str | os.PathLike, check_size: int = 64) -> Path:
    """Export the generator of `model` (dir or URI) to ONNX with dynamic N/H/W axes."""
    import torch

    from gir.imageio import atomic_path
    from gir.inference import load_generator

    out = Path(out)
    model_dir, tmp = _model_dir(str(model))
    try:
        generator = load_generator(model_dir, "cpu").float().eval()
    finally:
        if tmp:
            tmp.cleanup()
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


class OnnxDeblurrer:
    """Same call as gir.inference.Deblurrer: (H, W, 3) uint8 RGB in, same shape out."""

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        import onnxruntime as ort

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

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        y = self.session.run(None, {self.input: x})[0][0]
        return np.round(np.clip(y, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)

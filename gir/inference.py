"""Running a trained generator on real images of any size and mode.

A model on disk is two files: ``generator.pt`` (state dict) and ``generator.json`` (registry
name + constructor args), written by train and packed into the MLflow pyfunc by register.
:class:`Deblurrer` is what the CLI, the evaluator, the pyfunc and the web app all call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from gir.errors import GirError
from gir.imageio import atomic_path, write_text_atomic

WEIGHTS_FILE = "generator.pt"
SPEC_FILE = "generator.json"
DEFAULT_MODEL_URI = "models:/gir-deblur@champion"


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GirError("train.device: cuda requested but no CUDA device is available")
    return torch.device(name)


def save_generator(model_dir: str | Path, model: torch.nn.Module, name: str, args: dict) -> None:
    """Write generator.pt and generator.json atomically into model_dir."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(model_dir / WEIGHTS_FILE) as tmp:
        torch.save(state, tmp)
    write_text_atomic(model_dir / SPEC_FILE, json.dumps({"generator": name, "args": args},
                                                        indent=2))


def load_generator(model_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a generator from generator.json and load generator.pt."""
    from gir.models import build_generator

    model_dir = Path(model_dir)
    spec_path, weights_path = model_dir / SPEC_FILE, model_dir / WEIGHTS_FILE
    if not spec_path.exists() or not weights_path.exists():
        raise GirError(f"{model_dir}: no trained generator here ({SPEC_FILE} + {WEIGHTS_FILE})")
    spec = json.loads(spec_path.read_text())
    model = build_generator(spec["generator"], spec.get("args") or {})
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return model.to(device).eval()


class Deblurrer:
    """Generator + device; call it on (H, W, 3) uint8 RGB, get the same shape back."""

    def __init__(self, generator: torch.nn.Module, device: str | torch.device = "cpu",
                 tile: int = 0, overlap: int = 32):
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        self.tile = tile
        self.overlap = overlap

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str = "auto", **kw) -> "Deblurrer":
        dev = resolve_device(device)
        return cls(load_generator(model_dir, dev), dev, **kw)

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        from gir.dataset import to_tensor, to_uint8

        x = to_tensor(rgb).unsqueeze(0).to(self.device)
        return to_uint8(self.generator(x)[0])


def load_deblurrer(model: str | os.PathLike | None = None, device: str = "auto") -> Deblurrer:
    """A Deblurrer from a local model directory or an MLflow URI (models:/..., runs:/...)."""
    uri = str(model or DEFAULT_MODEL_URI)
    if Path(uri).is_dir():
        return Deblurrer.from_dir(uri, device)
    if "://" in uri or uri.startswith("models:/") or uri.startswith("runs:/"):
        from gir.config import MlflowConfig
        from gir.registry import load_pyfunc_deblurrer
        from gir.tracking import setup

        setup(MlflowConfig(), experiment=False)
        return load_pyfunc_deblurrer(uri, device)
    raise GirError(f"--model {uri}: neither a model directory nor an MLflow model URI")

"""Running a trained generator on real images of any size and mode.

A model on disk is two files: ``generator.pt`` (state dict) and ``generator.json`` (registry
name + constructor args), written by train and packed into the MLflow pyfunc by register.
:class:`Deblurrer` is what the CLI, the evaluator, the pyfunc and the web app all call.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gir.data.imageio import atomic_path, write_text_atomic
from gir.errors import GirError
from gir.rectifier.tiling import (  # noqa: F401 - re-exported: callers import them from here
    AUTO_TILE,
    AUTO_TILE_ABOVE,
    TiledRestorer,
    blend_ramp,
    tile_starts,
    to_uint8_array,
)

WEIGHTS_FILE = "generator.pt"
SPEC_FILE = "generator.json"


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


def read_generator(model_dir: str | Path) -> tuple[dict, dict]:
    """(spec, state dict) of the generator saved in model_dir, or one clear GirError."""
    model_dir = Path(model_dir)
    spec_path, weights_path = model_dir / SPEC_FILE, model_dir / WEIGHTS_FILE
    if not spec_path.exists() or not weights_path.exists():
        raise GirError(f"{model_dir}: no trained generator here ({SPEC_FILE} + {WEIGHTS_FILE})")
    try:
        spec = json.loads(spec_path.read_text())
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt file: say which, in one line
        raise GirError(f"{model_dir}: unreadable generator files "
                       f"({str(exc).splitlines()[0][:120]})") from None
    return spec, state


def load_generator(model_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a generator from generator.json and load generator.pt."""
    from gir.nn import build_generator

    spec, state = read_generator(model_dir)
    model = build_generator(spec["generator"], spec.get("args") or {})
    model.load_state_dict(state)
    return model.to(device).eval()


class Deblurrer(TiledRestorer):
    """Generator + device, with TiledRestorer's whole-image/tiled/self-ensemble call.

    It runs the generator's inference form (gir.nn.for_inference): for NAFNet a copy with the
    output scales folded into the convs and the upsamplers as transposed convs, so the model
    passed in keeps its weights; other generators run as they are.
    """

    def __init__(self, generator: torch.nn.Module, device: str | torch.device = "cpu",
                 tile: int = 0, overlap: int = 32, progress: bool | None = None,
                 ensemble: int = 1):
        from gir.nn import for_inference

        super().__init__(tile, overlap, progress, ensemble)
        self.device = torch.device(device)
        self.generator = for_inference(generator).to(self.device).eval()

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str = "auto", **kw) -> "Deblurrer":
        dev = resolve_device(device)
        return cls(load_generator(model_dir, dev), dev, **kw)

    @torch.inference_mode()
    def forward(self, rgb: np.ndarray) -> np.ndarray:
        """One pass of the generator on one (h, w, 3) uint8 patch, as float32 in [0, 1]."""
        x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).to(self.device)  # own, writable copy
        x = x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        y = self.generator(x)[0].clamp_(0, 1).permute(1, 2, 0)
        return y.float().cpu().numpy()

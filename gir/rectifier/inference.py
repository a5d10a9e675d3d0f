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
from gir.rectifier.ensemble import check_ensemble, self_ensemble

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


AUTO_TILE = 512           # tile side used when tile=0 and the image is large
AUTO_TILE_ABOVE = 1280    # tile=0: whole-image inference up to this many pixels per side
#                           (a 1280x720 photo in one pass: ~1.7x faster than six tiles, ~1 GB)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering [0, length), neighbours sharing `overlap`."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_ramp(size: int, overlap: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """1-D blending weight: raised-cosine ramps over the overlap, flat 1 elsewhere.

    Ramps are strictly positive (never exactly 0) and skipped at image borders, so the
    normalised sum of overlapping tiles is defined everywhere and has no visible seam.
    """
    w = np.ones(size, np.float32)
    n = min(overlap, size // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n, dtype=np.float32) + 0.5) / n)
        if ramp_start:
            w[:n] = ramp
        if ramp_end:
            w[size - n:] = ramp[::-1]
    return w


class Deblurrer:
    """Generator + device; call it on (H, W, 3) uint8 RGB, get the same shape back.

    It runs the generator's inference form (gir.nn.for_inference): for NAFNet a copy with the
    output scales folded into the convs and the upsamplers as transposed convs, so the model
    passed in keeps its weights; other generators run as they are.

    Large images are processed in overlapping tiles (``tile`` pixels, ``overlap`` shared with
    each neighbour) blended with raised-cosine weights. Tiles stream one row at a time: only a
    float strip of ``tile`` rows is kept, the full-size output is uint8, so peak memory depends
    on the tile and the image width, not on the image height or total pixel count.
    ``tile=0`` picks whole-image inference up to AUTO_TILE_ABOVE pixels per side, else AUTO_TILE.
    ``ensemble`` > 1 averages that many mirrored/flipped/transposed views of each tile
    (:func:`self_ensemble`): better and that many times slower.
    """

    def __init__(self, generator: torch.nn.Module, device: str | torch.device = "cpu",
                 tile: int = 0, overlap: int = 32, progress: bool | None = None,
                 ensemble: int = 1):
        import sys

        from gir.nn import for_inference

        self.device = torch.device(device)
        self.generator = for_inference(generator).to(self.device).eval()
        self.tile = tile
        self.overlap = overlap
        self.ensemble = check_ensemble(ensemble)
        # The tile progress bar shows on an interactive terminal unless asked otherwise.
        self.progress = sys.stderr.isatty() if progress is None else progress

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str = "auto", **kw) -> "Deblurrer":
        dev = resolve_device(device)
        return cls(load_generator(model_dir, dev), dev, **kw)

    def tile_size(self, h: int, w: int) -> int:
        """The tile side for an h x w image; 0 means whole-image inference."""
        if self.tile > 0:
            return self.tile if max(h, w) > self.tile else 0
        return AUTO_TILE if max(h, w) > AUTO_TILE_ABOVE else 0

    def run_patch(self, rgb: np.ndarray) -> np.ndarray:
        """The generator (self-ensembled) on one (h, w, 3) uint8 patch, as float32 in [0, 1]."""
        return self_ensemble(self.forward, rgb, self.ensemble)

    @torch.inference_mode()
    def forward(self, rgb: np.ndarray) -> np.ndarray:
        """One pass of the generator on one (h, w, 3) uint8 patch, as float32 in [0, 1]."""
        x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).to(self.device)  # own, writable copy
        x = x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        y = self.generator(x)[0].clamp_(0, 1).permute(1, 2, 0)
        return y.float().cpu().numpy()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        tile = self.tile_size(h, w)
        if tile == 0:
            return to_uint8_array(self.run_patch(rgb))
        return self.tiled(rgb, tile)

    def tiled(self, rgb: np.ndarray, tile: int) -> np.ndarray:
        """Overlapping tiles, blended strip by strip into a uint8 output."""
        from tqdm import tqdm

        h, w = rgb.shape[:2]
        overlap = min(self.overlap, tile // 2)
        ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
        th, tw = min(tile, h), min(tile, w)
        out = np.empty((h, w, 3), np.uint8)
        acc = np.zeros((th, w, 3), np.float32)   # the current strip: rows [y0, y0 + th)
        wsum = np.zeros((th, w, 1), np.float32)
        bar = tqdm(total=len(ys) * len(xs), desc="deblur tiles", unit="tile",
                   disable=not self.progress)
        for row, y0 in enumerate(ys):
            wy = blend_ramp(th, overlap, row > 0, row < len(ys) - 1)
            for col, x0 in enumerate(xs):
                wx = blend_ramp(tw, overlap, col > 0, col < len(xs) - 1)
                weight = (wy[:, None] * wx[None, :])[..., None]
                patch = self.run_patch(rgb[y0:y0 + th, x0:x0 + tw])
                acc[:, x0:x0 + tw] += patch * weight
                wsum[:, x0:x0 + tw] += weight
                bar.update(1)
            # Rows above the next strip's start are final: write them, then slide the strip.
            done = (ys[row + 1] - y0) if row + 1 < len(ys) else th
            out[y0:y0 + done] = to_uint8_array(acc[:done] / wsum[:done])
            acc = np.roll(acc, -done, axis=0)
            wsum = np.roll(wsum, -done, axis=0)
            acc[th - done:] = 0
            wsum[th - done:] = 0
        bar.close()
        return out


def to_uint8_array(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8, rounded (as gir.data.dataset.to_uint8 does for tensors)."""
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)

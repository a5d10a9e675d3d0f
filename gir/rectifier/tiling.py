"""Running a restorer over an image of any size: whole up to a side length, else overlapping
tiles blended with raised-cosine weights, and the self-ensemble of each patch.

Torch-free, so that the PyTorch Deblurrer (gir.rectifier.inference) and the onnxruntime one
(gir.rectifier.onnx_runtime) share it and the onnxruntime path never imports torch.
"""

from __future__ import annotations

import numpy as np

from gir.rectifier.ensemble import check_ensemble, self_ensemble

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


class TiledRestorer:
    """Call it on (H, W, 3) uint8 RGB, get the same shape back; subclasses give ``forward``,
    one pass of the network on one (h, w, 3) uint8 patch as float32 in [0, 1].

    Large images are processed in overlapping tiles (``tile`` pixels, ``overlap`` shared with
    each neighbour) blended with raised-cosine weights. Tiles stream one row at a time: only a
    float strip of ``tile`` rows is kept, the full-size output is uint8, so peak memory depends
    on the tile and the image width, not on the image height or total pixel count.
    ``tile=0`` picks whole-image inference up to AUTO_TILE_ABOVE pixels per side, else AUTO_TILE.
    ``ensemble`` > 1 averages that many mirrored/flipped/transposed views of each tile
    (:func:`gir.rectifier.ensemble.self_ensemble`): better and that many times slower.
    """

    def __init__(self, tile: int = 0, overlap: int = 32, progress: bool | None = None,
                 ensemble: int = 1):
        import sys

        self.tile = tile
        self.overlap = overlap
        self.ensemble = check_ensemble(ensemble)
        # The tile progress bar shows on an interactive terminal unless asked otherwise.
        self.progress = sys.stderr.isatty() if progress is None else progress

    def forward(self, rgb: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def tile_size(self, h: int, w: int) -> int:
        """The tile side for an h x w image; 0 means whole-image inference."""
        if self.tile > 0:
            return self.tile if max(h, w) > self.tile else 0
        return AUTO_TILE if max(h, w) > AUTO_TILE_ABOVE else 0

    def run_patch(self, rgb: np.ndarray) -> np.ndarray:
        """The network (self-ensembled) on one (h, w, 3) uint8 patch, as float32 in [0, 1]."""
        return self_ensemble(self.forward, rgb, self.ensemble)

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

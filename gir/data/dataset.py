"""The pairs of a split, read lazily, and the random-crop training dataset.

Memory does not grow with the dataset: a split is a list of manifest rows, and a pair's images
are decoded when it is asked for (in the DataLoader's workers while training, one pair at a
time while scoring), each image once per pair; a bounded cache keeps recently decoded images
(a small dataset ends up wholly in it, as fast as holding it in memory).

Each training sample is drawn from a generator seeded by (seed, sample index), so the stream
of crops is the same whatever the number of loader workers, and a resumed run sees exactly the
crops an uninterrupted one would have.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gir.config import SynthConfig
from gir.data import blur as synthetic_blur
from gir.data.imageio import is_remote, read_rgb
from gir.data.manifest import read_manifest, resolve
from gir.errors import GirError

CACHE_MB = 64   # decoded images kept per process by default (evaluate, register, bench)


@dataclass
class Pair:
    pair_id: str
    blur_kind: str
    blur: np.ndarray   # (H, W, 3) uint8
    sharp: np.ndarray  # (H, W, 3) uint8
    row: dict
    kernel_path: str = ""  # absolute path of the true blur kernel (.npy) when synthetic
    kernel: np.ndarray | None = None  # the true kernel in memory (pairs made on the fly)


class LazyPairs(Sequence):
    """A split's pairs, decoded from disk (or s3://) when indexed; memory bounded by cache_mb.

    Decoded images are shared read-only between pairs (a sharp photo with six blurred versions
    is decoded once while it stays in the cache) and evicted least recently used first.
    """

    def __init__(self, data_dir: str | Path, rows: list[dict], cache_mb: float = CACHE_MB):
        self.data_dir, self.rows = data_dir, rows
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._held = 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        row = self.rows[i]
        kernel = row.get("kernel_path")
        return Pair(row["pair_id"], row["blur_kind"], self._image(row["blur_path"]),
                    self._image(row["sharp_path"]), row,
                    resolve(self.data_dir, kernel) if isinstance(kernel, str) and kernel else "")

    def size(self, i: int) -> tuple[int, int]:
        """(height, width) of pair i's blurred image, from the file's header alone."""
        from PIL import Image

        rel = self.rows[i]["blur_path"]
        if rel in self._cache:
            return self._cache[rel].shape[:2]
        path = resolve(self.data_dir, rel)
        if is_remote(path):
            import fsspec

            opened = fsspec.open(path, "rb")
        else:
            opened = open(path, "rb")
        with opened as fh, Image.open(fh) as img:   # a 90-degree EXIF turn keeps the area
            w, h = img.size                          # and the shorter side: all that is asked
        return h, w

    def _image(self, rel: str) -> np.ndarray:
        img = self._cache.get(rel)
        if img is not None:
            self._cache.move_to_end(rel)
            return img
        img = read_rgb(resolve(self.data_dir, rel))
        img.setflags(write=False)   # shared between pairs: nobody may change it in place
        if img.nbytes <= self.cache_bytes:
            self._cache[rel] = img
            self._held += img.nbytes
            while self._held > self.cache_bytes:
                self._held -= self._cache.popitem(last=False)[1].nbytes
        return img

    def __getstate__(self) -> dict:   # a loader worker starts with an empty cache
        return {**self.__dict__, "_cache": OrderedDict(), "_held": 0}


def load_split(data_dir: str | Path, manifest: str | Path, split: str,
               max_images: int = 0, cache_mb: float = CACHE_MB) -> LazyPairs:
    """The pairs of one split, each decoded only when asked for (see LazyPairs)."""
    df = read_manifest(manifest)
    df = df[df["split"] == split]
    if max_images:
        df = df.head(max_images)
    return LazyPairs(data_dir, df.to_dict("records"), cache_mb)


def data_location(params) -> str | None:
    """Where the source's data really lives (a bucket, a folder, a DVC data version), for the
    MLflow dataset's source; None for the built-in sample and for Unsplash."""
    import os

    d = params.data
    where = {"folder": d.folder.path, "gopro": d.gopro.root}.get(d.source)
    if where:
        return where if is_remote(where) else os.path.abspath(where)
    if d.source == "dvc":
        return f"dvc:{d.dvc.repo or '.'}@{d.dvc.rev or 'HEAD'}:{d.dvc.path}"
    return None


def pair_sizes(pairs) -> list[tuple[str, int, int]]:
    """(pair_id, height, width) of each pair, without decoding a lazy split."""
    if isinstance(pairs, LazyPairs):
        return [(r["pair_id"], *pairs.size(i)) for i, r in enumerate(pairs.rows)]
    return [(p.pair_id, *p.blur.shape[:2]) for p in pairs]


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded."""
    return t.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


class CropDataset(Dataset):
    """Aligned random crops with flips and 90-degree rotations; item i is fixed by (seed, i).

    With ``resynth`` > 0, that share of crops from synthetic pairs gets a freshly drawn blur
    (a new kernel and noise from ``synth``, applied to the sharp crop) instead of the stored
    one: a few photos then teach thousands of kernels rather than the six each was stored with.
    Real blur (GoPro) is always used as stored. ``resynth_weights`` ({kind: weight}, 1 for a
    kind not named) draws the harder kinds more often.
    """

    def __init__(self, pairs: Sequence[Pair], crop: int, length: int, seed: int,
                 resynth: float = 0.0, synth: SynthConfig | None = None,
                 resynth_weights: dict[str, float] | None = None):
        if not pairs:
            raise GirError("train: no training pairs (is the train split empty?)")
        sizes = pair_sizes(pairs)
        small = [(pid, h, w) for pid, h, w in sizes if min(h, w) < crop]
        if small:
            pid, h, w = small[0]
            raise GirError(f"train.crop: {crop}px is larger than pair {pid} "
                           f"({w}x{h}); lower train.crop")
        self.pairs, self.crop, self.length, self.seed = pairs, crop, length, seed
        self.resynth, self.synth = resynth, synth or SynthConfig()
        self.kind_p = None  # None: every kind equally likely (and the draws of earlier runs)
        if resynth_weights:
            w = np.array([float(resynth_weights.get(k, 1.0)) for k in self.synth.kinds])
            if w.sum() <= 0:
                raise GirError("train.resynth_weights: every data.synth kind has weight 0")
            self.kind_p = w / w.sum()
        # Larger images are drawn more often, so every pixel is about equally likely.
        areas = np.array([h * w for _, h, w in sizes], float)
        self.weights = areas / areas.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, i])
        pair = self.pairs[rng.choice(len(self.pairs), p=self.weights)]
        h, w = pair.blur.shape[:2]
        y, x = rng.integers(0, h - self.crop + 1), rng.integers(0, w - self.crop + 1)
        k = int(rng.integers(4))
        flip = bool(rng.integers(2))
        b = pair.blur[y: y + self.crop, x: x + self.crop]
        s = pair.sharp[y: y + self.crop, x: x + self.crop]
        if self.resynth > 0 and pair.blur_kind in synthetic_blur.SYNTH_KINDS \
                and rng.random() < self.resynth:
            b, s = self._fresh_pair(pair.sharp, y, x, rng)  # same crop and turn, new blur
        b, s = np.rot90(b, k), np.rot90(s, k)
        if flip:
            b, s = b[:, ::-1], s[:, ::-1]
        return to_tensor(b), to_tensor(s)

    def _fresh_pair(self, sharp: np.ndarray, y: int, x: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The crop at (y, x) blurred anew, with its target: the sharp crop plus the blur's
        reach on each side is degraded as the source degrades whole photos (reflected at the
        photo's borders; a shake follows the whole photo's camera path, seen through the crop),
        and the target is that region's sharp_target (boosted highlights clipped at full scale).
        A highlight pair's stored sharp image is already such a target: blurred anew, it is a
        sharp photo whose lights happen to be clipped, which is consistent all the same."""
        kind = str(rng.choice(self.synth.kinds, p=self.kind_p))
        spec = synthetic_blur.synth_blur(kind, rng, self.synth)
        pad = spec.margin
        h, w = sharp.shape[:2]
        y0, x0 = max(y - pad, 0), max(x - pad, 0)
        y1, x1 = min(y + self.crop + pad, h), min(x + self.crop + pad, w)
        region = sharp[y0:y1, x0:x1]
        blurred = synthetic_blur.degrade(region, spec, rng, frame=(h, w, y0, x0))
        target = synthetic_blur.sharp_target(region, spec)
        inside = (slice(y - y0, y - y0 + self.crop), slice(x - x0, x - x0 + self.crop))
        return blurred[inside], target[inside]

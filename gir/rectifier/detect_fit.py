"""Fitting and scoring the blur detector on synthetic images with known blur masks.

A *composite* is a photo crop in which one side of a random line is blurred with a synthetic
kernel (gir.data.blur: motion / defocus / gaussian, the same ranges as the training data), a
rectangle is replaced by a flat, slightly shaded patch, and sensor noise plus 8-bit
quantisation is applied to the whole. Every pixel's truth (sharp / blurred / flat) is known.

The detector is fitted on photos in FIT_IMAGES and scored on HELD_OUT_IMAGES (different photos,
different seeds), so `gir detect-eval` reports held-out numbers:
- blur-map F-measure of the "blurred" class over tiles, flat tiles included as negatives;
- the share of flat tiles called blurred;
- motion / defocus / gaussian accuracy on uniformly blurred held-out images.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gir.data.blur import BLUR_KINDS, convolve, random_blur
from gir.rectifier.blur_features import TILE, block_mean, spectrum_features, tile_features, to_grey
from gir.rectifier.detect import (BLURRED, BLURRED_FRACTION, DETECTOR_VERSION, FLAT, FLAT_AMPLITUDE,
                                  SHARP, Detector, Linear, blur_map)

FIT_IMAGES = ("chelsea", "coffee", "rocket", "brick", "gravel", "camera")
HELD_OUT_IMAGES = ("astronaut", "motorcycle_left", "grass", "immunohistochemistry")
SIZE = 256
IGNORE = 255


@dataclass
class Composite:
    image: np.ndarray      # (SIZE, SIZE, 3) uint8
    truth: np.ndarray      # (ny, nx) tile truth: SHARP / BLURRED / FLAT / IGNORE
    kind: str


def _crop(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop after a random downscale in [0.5, 1] (photos differ in native sharpness)."""
    from PIL import Image

    h, w = photo.shape[:2]
    scale = max(rng.uniform(0.5, 1.0), (size + 2) / min(h, w))
    side = int(np.ceil(size / scale)) + 1
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    img = Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.LANCZOS)
    return np.asarray(img)


def _finish(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise in [0, 0.01] of full scale, then 8-bit quantisation."""
    x = x + rng.normal(0, rng.uniform(0, 0.01), x.shape)
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def tile_truth(pixel_truth: np.ndarray, sharp_grey: np.ndarray) -> np.ndarray:
    """Tile labels by majority; mixed tiles and sharp/blurred tiles with no texture: IGNORE."""
    shares = np.stack([block_mean((pixel_truth == c).astype(np.float32), TILE)
                       for c in (SHARP, BLURRED, FLAT)], -1)
    truth = shares.argmax(-1).astype(np.uint8)
    truth[shares.max(-1) < 0.75] = IGNORE
    truth[(truth == FLAT) & (shares[..., 2] < 1)] = IGNORE    # flat means wholly inside the patch
    textureless = tile_features(sharp_grey).structure < 1.5 * FLAT_AMPLITUDE
    truth[(truth != FLAT) & textureless] = IGNORE
    return truth


def make_composite(photo: np.ndarray, kind: str, rng: np.random.Generator,
                   size: int = SIZE, partial: bool = True) -> Composite:
    """Part sharp, part blurred (kind), part flat; partial=False blurs everything (no flat)."""
    sharp = _crop(photo, rng, size).astype(np.float64) / 255.0
    blurred = convolve(sharp, random_blur(kind, rng).kernel.astype(np.float64))
    truth = np.full((size, size), BLURRED, np.uint8)
    if partial:
        yy, xx = np.mgrid[:size, :size] - size / 2
        theta = rng.uniform(0, 2 * np.pi)
        offset = rng.uniform(-0.25, 0.25) * size
        truth[(xx * np.cos(theta) + yy * np.sin(theta)) < offset] = SHARP
        fh, fw = rng.integers(size // 4, size // 2, 2)
        fy, fx = rng.integers(0, size - fh), rng.integers(0, size - fw)
        truth[fy:fy + fh, fx:fx + fw] = FLAT
    image = np.where((truth == SHARP)[..., None], sharp, blurred)
    if partial:
        colour = rng.uniform(0.1, 0.9, 3)
        slope = rng.uniform(-0.1, 0.1, 2) / size
        ramp = (np.arange(fh)[:, None] * slope[0] + np.arange(fw)[None, :] * slope[1])[..., None]
        image[fy:fy + fh, fx:fx + fw] = np.clip(colour + ramp, 0, 1)
    sharp_grey = to_grey(np.clip(np.round(np.where((truth == FLAT)[..., None], image, sharp)
                                          * 255), 0, 255).astype(np.uint8))
    return Composite(_finish(image, rng), tile_truth(truth, sharp_grey), kind)


def composites(names, per_image: int, seed: int, partial: bool = True) -> list[Composite]:
    """per_image composites per photo, kinds cycling, fully determined by seed."""
    from gir.data.sources.sample import load_sample_image

    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        photo = load_sample_image(name)
        for i in range(per_image):
            out.append(make_composite(photo, BLUR_KINDS[i % 3], rng, partial=partial))
    return out


def _tile_xy(comps: list[Composite]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for c in comps:
        x = tile_features(to_grey(c.image)).matrix()
        t = c.truth.reshape(-1)
        keep = (t == SHARP) | (t == BLURRED)
        xs.append(x[keep])
        ys.append(t[keep])
    return np.concatenate(xs), np.concatenate(ys)


def _kind_xy(comps: list[Composite], tiles: Linear) -> tuple[np.ndarray, np.ndarray]:
    """Type features over the tiles the fitted tile classifier calls blurred, as at inference."""
    xs, ys = [], []
    probe = Detector(tiles, kinds=None)
    for c in comps:
        grey = to_grey(c.image)
        labels, _ = blur_map(grey, probe)
        f = spectrum_features(grey, labels == BLURRED if (labels == BLURRED).any()
                              else labels != FLAT)
        if f is not None:
            xs.append(f)
            ys.append(c.kind)
    return np.stack(xs), np.array(ys)


def fit_detector(seed: int = 1234, per_image: int = 12) -> Detector:
    """Fit both classifiers on composites of FIT_IMAGES (deterministic; some seconds).

    per_image composites per photo for the blur map, four times as many for the blur type;
    tests use a small per_image to stay fast.
    """
    tiles = Linear.fit(*_tile_xy(composites(FIT_IMAGES, per_image, seed)))
    kinds = Linear.fit(*_kind_xy(composites(FIT_IMAGES, 4 * per_image, seed + 1,
                                            partial=False), tiles), c=0.3)
    return Detector(tiles, kinds, fitted_on={"images": list(FIT_IMAGES), "seed": seed,
                                             "per_image": per_image})


def blur_map_scores(detector: Detector, per_image: int = 12, seed: int = 98765) -> dict:
    """Blur-map F-measure (blurred class over tiles, flat ones as negatives) and flat false
    alarms on held-out partial composites; what promotion compares detectors by."""
    tp = fp = fn = flat_total = flat_called = 0
    for c in composites(HELD_OUT_IMAGES, per_image, seed):
        labels, _ = blur_map(to_grey(c.image), detector)
        scored = c.truth != IGNORE
        pred_b, true_b = (labels == BLURRED) & scored, (c.truth == BLURRED)
        tp += int((pred_b & true_b).sum())
        fp += int((pred_b & ~true_b).sum())
        fn += int((~pred_b & true_b & scored).sum())
        flat_total += int((c.truth == FLAT).sum())
        flat_called += int(((c.truth == FLAT) & (labels == BLURRED)).sum())
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    f = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"f_measure": round(f, 4), "precision": round(precision, 4),
            "recall": round(recall, 4), "flat_tiles": flat_total,
            "flat_called_blurred": flat_called,
            "flat_false_alarm_rate": round(flat_called / max(flat_total, 1), 4)}


def evaluate_detector(detector: Detector, per_image: int = 12, seed: int = 98765) -> dict:
    """Held-out blur-map F-measure, flat false-alarm rate and blur-type accuracy."""
    from gir.rectifier.detect import classify_type

    confusion = {k: {j: 0 for j in BLUR_KINDS + ("none",)} for k in BLUR_KINDS}
    found = 0   # uniformly blurred images that detect() calls blurred
    for c in composites(HELD_OUT_IMAGES, per_image * 2, seed + 1, partial=False):
        grey = to_grey(c.image)
        labels, _ = blur_map(grey, detector)
        kind, _ = classify_type(grey, labels, detector)
        confusion[c.kind][kind or "none"] += 1
        found += bool((labels == BLURRED).sum() >= BLURRED_FRACTION * (labels != FLAT).sum())
    n = sum(sum(r.values()) for r in confusion.values())
    correct = sum(confusion[k][k] for k in BLUR_KINDS)
    return {"held_out_images": list(HELD_OUT_IMAGES), "tile": TILE,
            "blur_map": blur_map_scores(detector, per_image, seed),
            "blur_type": {"accuracy": round(correct / max(n, 1), 4), "images": n,
                          "confusion": confusion},
            "image_decision": {"blurred_images_called_blurred": round(found / max(n, 1), 4),
                               **_sharp_images_called_sharp(detector, per_image, seed + 2)}}


def _sharp_images_called_sharp(detector: Detector, per_image: int, seed: int) -> dict:
    """Held-out crops with noise but no blur: the share detect() calls not blurred."""
    from gir.rectifier.detect import detect
    from gir.data.sources.sample import load_sample_image

    rng = np.random.default_rng(seed)
    calls = [detect(_finish(_crop(load_sample_image(name), rng, SIZE) / 255.0, rng),
                    detector).blurred
             for name in HELD_OUT_IMAGES for _ in range(per_image)]
    return {"sharp_images_called_sharp": round(1 - sum(calls) / len(calls), 4),
            "sharp_images": len(calls)}


def cache_path() -> Path:
    """Cache file named after a hash of the detector's code, so an edit never reads stale fits."""
    import hashlib

    import sklearn

    from gir.data import blur
    from gir.rectifier import blur_features, detect

    h = hashlib.sha256(sklearn.__version__.encode())
    for module in (blur_features, detect, blur, sys.modules[__name__]):
        h.update(Path(module.__file__).read_bytes())
    root = Path(os.environ.get("GIR_CACHE", Path.home() / ".cache" / "gir"))
    return root / f"detector-v{DETECTOR_VERSION}-{h.hexdigest()[:12]}.json"


def cached_fit() -> Detector:
    """The built-in fit: from the cache file, or fitted now (some seconds) and cached."""
    from gir.errors import GirError
    from gir.rectifier.detect import load_detector, save_detector

    path = cache_path()
    try:
        return load_detector(path)
    except GirError:
        detector = fit_detector()
        try:
            save_detector(detector, path)
        except OSError:
            pass   # a read-only home still works, it just refits next time
        return detector

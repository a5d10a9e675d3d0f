"""`gir detect`: where is an image blurred, and is the blur motion, defocus or Gaussian?

Four steps, all on the grey image:

1. **Flat tiles.** Each TILE x TILE tile gets band energies from a difference-of-Gaussians
   pyramid (octaves 0-1, 1-2, 2-4, 4-8 px), with the sensor-noise share removed (noise is
   estimated once per image, Immerkaer's method). A tile whose structure energy is below
   FLAT_AMPLITUDE is *flat* (sky, walls): neither sharp nor blurred, because blur cannot be
   seen where there is nothing to blur.
2. **Blur map.** Natural images have about equal energy per octave; blur removes the fine
   octaves first. The octave energy ratios, directional sharpness, local edge widths per
   direction (a kernel-width estimate: motion widens one direction only), gradient anisotropy,
   their 3x3-tile neighbourhood means and the noise level feed a small neural network (MLP)
   that says blurred / sharp per non-flat tile.
3. **Decision.** Quantiles of the tiles' blur log-odds feed a logistic regression: the
   probability that the photo is blurred (calibrated on photos the tile network never saw).
   The photo is called blurred when it reaches the threshold that calls the chosen share of
   sharp photos blurred (``detect.false_alarm_rate``, the operating point; see threshold()).
4. **Blur type.** Over the blurred tiles, the averaged power spectrum of the image gradient
   estimates |K(w)|^2 of the blur kernel (a gradient image is roughly white). Motion makes it
   anisotropic, a defocus disk gives it zero rings, a Gaussian decays smoothly. Radial and
   angular profiles of it, plus the blurred tiles' mean features, feed a third classifier.

All are fitted deterministically on synthetic photos blurred as a camera does (in linear light,
with shot/read noise and JPEG; gir.rectifier.detect_fit) from photos that the evaluations never
use. The pipeline's `detector` stage fits, scores, tracks and registers them (gir.steps.detector,
MLflow model ``gir-detector``); gir.tracking.resolve says which fit a command uses. Without any
pipeline run, the detector is fitted on first use and cached as JSON in ``$GIR_CACHE`` (default
``~/.cache/gir``) keyed by a hash of its code (gir.rectifier.detect_fit.cached_fit).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gir.rectifier.blur_features import (
    TILE,
    box3,
    spectrum_features,
    tile_features,
    tile_index,
    to_grey,
)

DETECTOR_VERSION = "2"
FLAT_AMPLITUDE = 0.012     # tiles with less structure than this (grey 0-1) are flat
BLURRED_FRACTION = 0.5     # fit-time only: a training composite with this blurred share
DEFAULT_FALSE_ALARM_RATE = 0.05   # the operating point when none is set (params: detect.*)
SHARP, BLURRED, FLAT = 0, 1, 2
LABELS = ("sharp", "blurred", "flat")


# ----------------------------------------------------------------------------- classifiers

@dataclass
class Linear:
    """A fitted multinomial / binary logistic regression, stored as plain numbers."""

    mean: list
    scale: list
    coef: list          # (classes or 1, F)
    intercept: list
    classes: list

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        logits = z @ np.asarray(self.coef).T + np.asarray(self.intercept)
        if len(self.classes) == 2:
            p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1 - p1, p1], -1)
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, c: float = 1.0) -> "Linear":
        from sklearn.linear_model import LogisticRegression

        mean, scale = x.mean(0), x.std(0) + 1e-6
        model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
        return cls(mean.tolist(), scale.tolist(), model.coef_.tolist(),
                   model.intercept_.tolist(), [int(v) if isinstance(v, (int, np.integer)) else
                                               str(v) for v in model.classes_])


@dataclass
class MLP:
    """A fitted sklearn MLPClassifier (ReLU, one logistic/softmax output), as plain numbers:
    JSON on disk, a few numpy matrix products at run time."""

    mean: list
    scale: list
    weights: list       # per layer (in, out)
    biases: list
    classes: list

    def proba(self, x: np.ndarray) -> np.ndarray:
        h = (np.asarray(x, np.float64) - self.mean) / self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ np.asarray(w) + np.asarray(b)
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0)
        if len(self.classes) == 2:
            p1 = 1.0 / (1.0 + np.exp(-np.clip(h[:, 0], -50, 50)))
            return np.stack([1 - p1, p1], -1)
        h -= h.max(1, keepdims=True)
        e = np.exp(h)
        return e / e.sum(1, keepdims=True)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, hidden=(32, 16), alpha: float = 1e-3,
            seed: int = 0) -> "MLP":
        from sklearn.neural_network import MLPClassifier

        mean, scale = x.mean(0), x.std(0) + 1e-6
        model = MLPClassifier(hidden, alpha=alpha, max_iter=400, early_stopping=True,
                              random_state=seed).fit((x - mean) / scale, y)
        return cls(mean.tolist(), scale.tolist(), [w.tolist() for w in model.coefs_],
                   [b.tolist() for b in model.intercepts_],
                   [v.item() if isinstance(v, np.generic) else v for v in model.classes_])


def _classifier(raw: dict):
    return MLP(**raw) if "weights" in raw else Linear(**raw)


@dataclass
class Detector:
    tiles: MLP | Linear    # sharp (0) / blurred (1) per non-flat tile
    kinds: MLP | Linear    # motion / defocus / gaussian from type_features
    image: Linear | None = None   # P(photo blurred) from image_features of the tile map
    sharp_scores: list = field(default_factory=list)  # P(blurred) of sharp calibration photos
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE   # the operating point (set per use)
    version: str = DETECTOR_VERSION
    fitted_on: dict = field(default_factory=dict)

    def threshold(self, false_alarm_rate: float | None = None) -> float:
        """The P(blurred) from which a photo is called blurred: the (1 - rate) quantile of the
        sharp calibration photos' scores, so about that share of sharp photos is called
        blurred. Never below 0.5 when there are no scores."""
        rate = self.false_alarm_rate if false_alarm_rate is None else false_alarm_rate
        if not self.sharp_scores:
            return 0.5
        s = np.sort(np.asarray(self.sharp_scores, np.float64))
        k = int(np.floor(rate * len(s)))     # at most k of n sharp photos at or above it
        return float(np.nextafter(s[len(s) - 1 - k], 2.0)) if k < len(s) else 0.0


def with_operating_point(detector: Detector, false_alarm_rate: float) -> Detector:
    """A copy of detector that decides at this false-alarm rate on sharp photos."""
    import dataclasses

    return dataclasses.replace(detector, false_alarm_rate=float(false_alarm_rate))


DETECTOR_FILE = "detector.json"


def save_detector(detector: Detector, path: str | Path) -> None:
    """Plain JSON (no pickle): readable anywhere gir is installed, diffable, tiny."""
    from gir.data.imageio import write_text_atomic

    write_text_atomic(path, json.dumps(asdict(detector)))


def load_detector(path: str | Path) -> Detector:
    """A detector.json written by save_detector; a one-line GirError if it is not one."""
    from gir.errors import GirError

    try:
        raw = json.loads(Path(path).read_text())
        if raw.get("version") != DETECTOR_VERSION:
            raise ValueError(f"version {raw.get('version')!r}, expected {DETECTOR_VERSION!r}")
        image = raw.get("image")
        return Detector(_classifier(raw["tiles"]), _classifier(raw["kinds"]),
                        Linear(**image) if image else None, list(raw.get("sharp_scores", [])),
                        float(raw.get("false_alarm_rate", DEFAULT_FALSE_ALARM_RATE)),
                        raw["version"], raw.get("fitted_on", {}))
    except OSError as exc:
        raise GirError(f"detector {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GirError(f"detector {path}: not a GIR detector file ({exc})") from None


# ----------------------------------------------------------------------------- detection

@dataclass
class Detection:
    """What `gir detect` reports for one image."""

    blurred: bool
    blurred_fraction: float        # blurred tiles / textured (non-flat) tiles
    flat_fraction: float           # flat tiles / all tiles
    blur_type: str | None          # motion | defocus | gaussian, None when nothing is blurred
    confidence: float              # P(the blurred / not blurred call is right)
    type_scores: dict
    tile: int
    labels: np.ndarray             # (ny, nx) SHARP / BLURRED / FLAT
    blur_prob: np.ndarray          # (ny, nx) P(blurred), NaN on flat tiles
    blur_score: float = 0.0        # P(the photo is blurred), calibrated
    threshold: float = 0.5         # blur_score from which the photo is called blurred
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE   # the operating point it came from
    reason: str = ""               # why it was called blurred / sharp, in words

    def report(self) -> dict:
        return {"blurred": self.blurred, "blurred_fraction": round(self.blurred_fraction, 4),
                "flat_fraction": round(self.flat_fraction, 4), "blur_type": self.blur_type,
                "confidence": round(self.confidence, 4),
                "type_scores": {k: round(v, 4) for k, v in self.type_scores.items()},
                "blur_score": round(self.blur_score, 4), "threshold": round(self.threshold, 4),
                "false_alarm_rate": self.false_alarm_rate, "reason": self.reason,
                "tile": self.tile, "map_shape": list(self.labels.shape),
                "map": ["".join("sbf"[v] for v in row) for row in self.labels]}


def blur_map(grey: np.ndarray, detector: Detector) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile labels (SHARP / BLURRED / FLAT) and P(blurred)."""
    labels, prob, _ = _blur_map(grey, detector)
    return labels, prob


def _blur_map(grey: np.ndarray, detector: Detector):
    feats = tile_features(grey)
    flat = feats.structure < FLAT_AMPLITUDE
    x = feats.matrix()
    prob = detector.tiles.proba(x)[:, 1].reshape(flat.shape)
    labels = np.where(flat, FLAT, np.where(prob >= 0.5, BLURRED, SHARP)).astype(np.uint8)
    return labels, np.where(flat, np.nan, prob), x


# Tiled detection (issue 37, bounded memory on 50 MP photos): detect() maps the photo in blocks.
# A photo up to 1280 px a side is one block, as it is one piece for the deblurrer
# (gir.rectifier.inference.AUTO_TILE_ABOVE; tests/rectifier/test_detect.py checks they agree).
BLOCK = 1280        # core side of each block, px (a multiple of TILE)
BLOCK_MARGIN = 64   # context each side of a block: more than any filter's reach (4 sigma = 32)


def blur_map_in_blocks(grey: np.ndarray, detector: Detector, block: int = BLOCK,
                       margin: int = BLOCK_MARGIN):
    """_blur_map computed block by block: memory is bounded by the block, not the photo.

    Each block is mapped with `margin` px of context and keeps only its own tiles; blocks
    follow the tile grid, and the ragged edge joins the last block as it joins the last tile.
    A photo that fits in one block gets exactly _blur_map; a larger one gets its noise level
    estimated per block (about the size of the photos the detector is fitted on).
    """
    h, w = grey.shape
    ny, nx = max(h // TILE, 1), max(w // TILE, 1)
    bt, mt = block // TILE, -(-margin // TILE)          # block and margin, in tiles
    if ny <= bt and nx <= bt:
        return _blur_map(grey, detector)
    edge_y = [i * TILE for i in range(ny)] + [h]
    edge_x = [j * TILE for j in range(nx)] + [w]
    labels, prob, x = np.empty((ny, nx), np.uint8), np.empty((ny, nx)), None
    for y0 in range(0, ny, bt):
        y1, cy0, cy1 = min(y0 + bt, ny), max(y0 - mt, 0), min(y0 + bt + mt, ny)
        for x0 in range(0, nx, bt):
            x1, cx0, cx1 = min(x0 + bt, nx), max(x0 - mt, 0), min(x0 + bt + mt, nx)
            lab, p, f = _blur_map(grey[edge_y[cy0]:edge_y[cy1], edge_x[cx0]:edge_x[cx1]],
                                  detector)
            core = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
            if x is None:
                x = np.empty((ny, nx, f.shape[-1]), f.dtype)
            labels[y0:y1, x0:x1], prob[y0:y1, x0:x1] = lab[core], p[core]
            x[y0:y1, x0:x1] = f.reshape(lab.shape + (-1,))[core]
    return labels, prob, x.reshape(ny * nx, -1)


IMAGE_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def image_features(labels: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Whole-photo evidence from the map: quantiles and mean of the textured tiles' blur
    log-odds and the blurred share (nothing about the photo's size: photos of any size)."""
    textured = labels != FLAT
    p = np.clip(prob[textured], 1e-4, 1 - 1e-4)
    if p.size == 0:
        return np.zeros(len(IMAGE_QUANTILES) + 2, np.float32)
    # Each tile's log-odds averaged with its textured neighbours': a lone odd tile (a clipped
    # highlight, a JPEG block) counts less than a coherent region (a subject in focus).
    grid = np.where(textured, np.log(np.clip(prob, 1e-4, 1 - 1e-4) / (1 - np.clip(
        prob, 1e-4, 1 - 1e-4))), 0.0)
    sums, counts = box3(grid, "constant"), box3(textured.astype(float), "constant")
    logit = (sums / np.maximum(counts, 1e-9))[textured]
    return np.concatenate([np.quantile(logit, IMAGE_QUANTILES), [
        logit.mean(), (p >= 0.5).mean()]]).astype(np.float32)


def image_score(labels: np.ndarray, prob: np.ndarray, detector: Detector) -> float:
    """P(the photo is blurred); without an image model, the blurred share of textured tiles."""
    if not (labels != FLAT).any():
        return 0.0
    if detector.image is None:
        return float((labels == BLURRED).sum() / (labels != FLAT).sum())
    return float(detector.image.proba(image_features(labels, prob)[None])[0, 1])


MAX_TYPE_TILES = 160   # spectra averaged for the type: enough, and bounded on large photos


def type_features(grey: np.ndarray, tiles: np.ndarray, tile_x: np.ndarray) -> np.ndarray | None:
    """spectrum_features over (at most MAX_TYPE_TILES, evenly spread) tiles, plus the mean
    tile features there (edge widths per direction, anisotropy); None without tiles."""
    ty, tx = np.nonzero(tiles)
    if len(ty) > MAX_TYPE_TILES:
        keep = np.zeros_like(tiles)
        pick = np.linspace(0, len(ty) - 1, MAX_TYPE_TILES).astype(int)
        keep[ty[pick], tx[pick]] = True
        tiles = keep
    spec = spectrum_features(grey, tiles)
    if spec is None:
        return None
    return np.concatenate([spec, tile_x[tiles.reshape(-1)].mean(0)]).astype(np.float32)


def classify_type(grey: np.ndarray, labels: np.ndarray, detector: Detector,
                  tile_x: np.ndarray | None = None) -> tuple[str | None, dict]:
    """Most likely blur kind over the blurred tiles (over all textured tiles if none is)."""
    if tile_x is None:
        tile_x = tile_features(grey).matrix()
    tiles = labels == BLURRED
    feats = type_features(grey, tiles if tiles.any() else labels != FLAT, tile_x)
    if feats is None:
        return None, {}
    p = detector.kinds.proba(feats[None])[0]
    scores = {str(k): float(v) for k, v in zip(detector.kinds.classes, p)}
    return max(scores, key=scores.get), scores


def _reason(blurred: bool, score: float, threshold: float, rate: float, fraction: float,
            n_textured: int) -> str:
    """The decision in words, for the report and the web page."""
    if n_textured == 0:
        return "sharp: no textured region to judge (flat everywhere)"
    where = f"{fraction:.0%} of textured tiles look blurred"
    if blurred:
        return (f"blurred: blur score {score:.2f} >= threshold {threshold:.2f}; {where}")
    return (f"sharp: blur score {score:.2f} < threshold {threshold:.2f} (the threshold calls "
            f"{rate:.0%} of sharp photos blurred); {where}")


def detect(rgb: np.ndarray, detector: Detector) -> Detection:
    """Blur map, decision (at detector.false_alarm_rate) and blur type for one uint8 image."""
    grey = to_grey(rgb)
    labels, prob, tile_x = blur_map_in_blocks(grey, detector)
    textured = labels != FLAT
    n_textured = int(textured.sum())
    fraction = float((labels == BLURRED).sum() / n_textured) if n_textured else 0.0
    score = image_score(labels, prob, detector)
    threshold = detector.threshold()
    blurred = n_textured > 0 and score >= threshold
    if blurred:
        kind, scores = classify_type(grey, labels, detector, tile_x)
    else:   # the type of a blur that is not there is not reported
        kind, scores = None, {}
    confidence = score if blurred else 1.0 - score
    return Detection(blurred=bool(blurred), blurred_fraction=fraction,
                     flat_fraction=float(1 - n_textured / labels.size), blur_type=kind,
                     confidence=float(confidence), type_scores=scores, tile=TILE,
                     labels=labels, blur_prob=prob, blur_score=score, threshold=threshold,
                     false_alarm_rate=detector.false_alarm_rate,
                     reason=_reason(bool(blurred), score, threshold, detector.false_alarm_rate,
                                    fraction, n_textured))


def overlay(rgb: np.ndarray, det: Detection, alpha: float = 0.45) -> np.ndarray:
    """The image with blurred tiles tinted red, sharp green, flat grey (uint8 RGB)."""
    colours = np.array([[40, 200, 60], [230, 40, 40], [128, 128, 128]], np.float32)
    h, w = rgb.shape[:2]
    ys, xs = tile_index(h, w, det.labels.shape, det.tile)
    tint = colours[det.labels[ys][:, xs]]
    base = rgb[..., :3].astype(np.float32)
    out = base * (1 - alpha) + tint * alpha
    flat = (det.labels[ys][:, xs] == FLAT)[..., None]
    out = np.where(flat, base * 0.8 + tint * 0.2, out)
    return np.clip(out, 0, 255).astype(np.uint8)

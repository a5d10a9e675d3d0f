"""`gir detect`: where is an image blurred, and is the blur motion, defocus or Gaussian?

Three steps, all on the grey image:

1. **Flat tiles.** Each TILE x TILE tile gets band energies from a difference-of-Gaussians
   pyramid (octaves 0-1, 1-2, 2-4, 4-8 px), with the sensor-noise share removed (noise is
   estimated once per image, Immerkaer's method). A tile whose structure energy is below
   FLAT_AMPLITUDE is *flat* (sky, walls): neither sharp nor blurred, because blur cannot be
   seen where there is nothing to blur.
2. **Blur map.** Natural images have about equal energy per octave; blur removes the fine
   octaves first. The octave energy ratios (log), their 3x3-tile neighbourhood means and the
   noise level feed a logistic regression that says blurred / sharp per non-flat tile.
3. **Blur type.** Over the blurred tiles, the averaged power spectrum of the image gradient
   estimates |K(w)|^2 of the blur kernel (a gradient image is roughly white). Motion makes it
   anisotropic (gradient-direction anisotropy too), a defocus disk gives it zero rings, a
   Gaussian decays smoothly. Radial and angular profiles of it feed a second classifier.

Both classifiers are fitted deterministically on synthetic composites (gir.rectifier.detect_fit) built
from photos that the held-out evaluation never uses. The pipeline's `detector` stage fits,
scores, tracks and registers them (gir.steps.detector, MLflow model ``gir-detector``);
gir.tracking.resolve says which fit a command uses. Without any pipeline run, the detector is
fitted on first use and cached as JSON in ``$GIR_CACHE`` (default ``~/.cache/gir``) keyed by a
hash of its code (gir.rectifier.detect_fit.cached_fit); nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gir.rectifier.blur_features import TILE, spectrum_features, tile_features, tile_index, to_grey


DETECTOR_VERSION = "1"
FLAT_AMPLITUDE = 0.012     # tiles with less structure than this (grey 0-1) are flat
BLURRED_FRACTION = 0.5     # an image is blurred when this share of its textured tiles is
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
class Detector:
    tiles: Linear          # sharp (0) / blurred (1) per non-flat tile
    kinds: Linear          # motion / defocus / gaussian from spectrum_features
    version: str = DETECTOR_VERSION
    fitted_on: dict = field(default_factory=dict)


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
        return Detector(Linear(**raw["tiles"]), Linear(**raw["kinds"]), raw["version"],
                        raw.get("fitted_on", {}))
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
    confidence: float              # P(blur_type) if blurred, else the share of sharp tiles
    type_scores: dict
    tile: int
    labels: np.ndarray             # (ny, nx) SHARP / BLURRED / FLAT
    blur_prob: np.ndarray          # (ny, nx) P(blurred), NaN on flat tiles

    def report(self) -> dict:
        return {"blurred": self.blurred, "blurred_fraction": round(self.blurred_fraction, 4),
                "flat_fraction": round(self.flat_fraction, 4), "blur_type": self.blur_type,
                "confidence": round(self.confidence, 4),
                "type_scores": {k: round(v, 4) for k, v in self.type_scores.items()},
                "tile": self.tile, "map_shape": list(self.labels.shape),
                "map": ["".join("sbf"[v] for v in row) for row in self.labels]}


def blur_map(grey: np.ndarray, detector: Detector) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile labels (SHARP / BLURRED / FLAT) and P(blurred)."""
    feats = tile_features(grey)
    flat = feats.structure < FLAT_AMPLITUDE
    prob = detector.tiles.proba(feats.matrix())[:, 1].reshape(flat.shape)
    labels = np.where(flat, FLAT, np.where(prob >= 0.5, BLURRED, SHARP)).astype(np.uint8)
    return labels, np.where(flat, np.nan, prob)


def classify_type(grey: np.ndarray, labels: np.ndarray,
                  detector: Detector) -> tuple[str | None, dict]:
    """Most likely blur kind over the blurred tiles (over all textured tiles if none is)."""
    tiles = labels == BLURRED
    feats = spectrum_features(grey, tiles if tiles.any() else labels != FLAT)
    if feats is None:
        return None, {}
    p = detector.kinds.proba(feats[None])[0]
    scores = {str(k): float(v) for k, v in zip(detector.kinds.classes, p)}
    return max(scores, key=scores.get), scores


def detect(rgb: np.ndarray, detector: Detector) -> Detection:
    """Blur map, decision and blur type for one (H, W, 3) uint8 image."""
    grey = to_grey(rgb)
    labels, prob = blur_map(grey, detector)
    textured = labels != FLAT
    n_textured = int(textured.sum())
    fraction = float((labels == BLURRED).sum() / n_textured) if n_textured else 0.0
    blurred = n_textured > 0 and fraction >= BLURRED_FRACTION
    if blurred:
        kind, scores = classify_type(grey, labels, detector)
        confidence = scores.get(kind, 0.0)
    else:   # the type of a blur that is not there is not reported
        kind, scores, confidence = None, {}, 1.0 - fraction
    return Detection(blurred=bool(blurred), blurred_fraction=fraction,
                     flat_fraction=float(1 - n_textured / labels.size), blur_type=kind,
                     confidence=float(confidence), type_scores=scores, tile=TILE,
                     labels=labels, blur_prob=prob)


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

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
from scipy import ndimage


DETECTOR_VERSION = "1"
TILE = 32                  # blur-map tile side, px
SPEC_WIN = 64              # window for the type spectrum, px
FLAT_AMPLITUDE = 0.012     # tiles with less structure than this (grey 0-1) are flat
BLURRED_FRACTION = 0.5     # an image is blurred when this share of its textured tiles is
SHARP, BLURRED, FLAT = 0, 1, 2
LABELS = ("sharp", "blurred", "flat")
_SIGMAS = (1.0, 2.0, 4.0, 8.0)


# ----------------------------------------------------------------------------- features

def to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (or grey) -> float32 grey in [0, 1]."""
    g = rgb.astype(np.float32)
    if g.ndim == 3:
        g = g[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return g / 255.0


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer (1996) fast estimate of white-noise sigma from a 3x3 Laplacian difference."""
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    c = ndimage.convolve(grey, k, mode="reflect")[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(c).mean() / 6.0)


def _band_noise_gain() -> np.ndarray:
    """Energy each DoG band passes from unit white noise (to subtract the noise share)."""
    d = np.zeros((65, 65), np.float32)
    d[32, 32] = 1
    levels = [d] + [ndimage.gaussian_filter(d, s) for s in _SIGMAS]
    return np.array([((a - b) ** 2).sum() for a, b in zip(levels, levels[1:])], np.float32)


_NOISE_GAIN = _band_noise_gain()


def block_mean(a: np.ndarray, tile: int = TILE) -> np.ndarray:
    """Mean over non-overlapping tile x tile blocks (the ragged edge joins the last block)."""
    h, w = a.shape[:2]
    ny, nx = max(h // tile, 1), max(w // tile, 1)
    ey, ex = np.linspace(0, h, ny + 1).astype(int), np.linspace(0, w, nx + 1).astype(int)
    ey[1:-1], ex[1:-1] = np.arange(1, ny) * tile, np.arange(1, nx) * tile
    rows = np.add.reduceat(a.astype(np.float64), ey[:-1], axis=0)
    sums = np.add.reduceat(rows, ex[:-1], axis=1)
    counts = np.diff(ey)[:, None] * np.diff(ex)[None, :]
    return (sums / counts.reshape(counts.shape + (1,) * (a.ndim - 2))).astype(np.float32)


def tile_index(h: int, w: int, shape: tuple[int, int], tile: int = TILE):
    """For each pixel row / column, the tile it belongs to (consistent with block_mean)."""
    ny, nx = shape
    return np.minimum(np.arange(h) // tile, ny - 1), np.minimum(np.arange(w) // tile, nx - 1)


_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))   # finite differences along 0, 90, 45, 135 deg


def directional_energy(img: np.ndarray, tile: int = TILE) -> np.ndarray:
    """(ny, nx, 4) mean squared finite difference along each of four directions."""
    out = []
    for dy, dx in _DIRECTIONS:
        shifted = np.roll(img, (-dy, -dx), axis=(0, 1))
        d = (shifted - img) / np.hypot(dy, dx)
        d[-1:] = d[-2:-1] if dy else d[-1:]
        out.append(block_mean(d**2, tile))
    return np.stack(out, -1)


@dataclass
class TileFeatures:
    """Per-tile band energies (noise removed), directional sharpness and the noise sigma."""

    bands: np.ndarray      # (ny, nx, 4): energy in octaves 0-1, 1-2, 2-4, 4-8 px
    directional: np.ndarray  # (ny, nx, 4): log(gradient energy / after a 2 px blur), sorted
    noise: float

    structure: np.ndarray  # (ny, nx): what a plane (smooth shading) + noise leaves unexplained

    def matrix(self) -> np.ndarray:
        """(ny * nx, F) classifier input: log octave ratios, direction ratios, context, noise."""
        e = np.log(self.bands + 1e-7)
        ratios = np.stack([e[..., 0] - e[..., 1], e[..., 1] - e[..., 2], e[..., 2] - e[..., 3],
                           e[..., 0] - e[..., 2]], -1)
        own = np.concatenate([ratios, self.directional], -1)
        local = ndimage.uniform_filter(own, size=(3, 3, 1), mode="nearest")
        level = np.log(self.structure + 1e-4)[..., None]
        noise = np.full(level.shape, np.log(self.noise + 1e-4), np.float32)
        x = np.concatenate([own, local, level, noise], -1)
        return x.reshape(-1, x.shape[-1])


def tile_features(grey: np.ndarray, tile: int = TILE) -> TileFeatures:
    sigma = noise_sigma(grey)
    levels = [grey] + [ndimage.gaussian_filter(grey, s, mode="reflect") for s in _SIGMAS]
    bands = np.stack([block_mean((a - b) ** 2, tile) for a, b in zip(levels, levels[1:])], -1)
    bands = np.clip(bands - sigma**2 * _NOISE_GAIN, 0, None)
    # Blur along any one direction (motion) shows as a direction whose fine gradients are gone.
    fine = np.clip(directional_energy(grey, tile) - 2 * sigma**2, 0, None)
    coarse = directional_energy(levels[2], tile)
    ratio = np.log((fine + 1e-7) / (coarse + 1e-7))
    # A direction with no coarse gradient either (along a straight edge) says nothing: neutral.
    informative = coarse >= 0.25 * coarse.max(-1, keepdims=True)
    ratio = np.where(informative, ratio, np.where(informative, ratio, -np.inf).max(-1,
                                                                                  keepdims=True))
    directional = np.sort(ratio, -1)
    return TileFeatures(bands, directional, sigma, plane_residual(grey, sigma, tile))


def plane_residual(grey: np.ndarray, noise: float, tile: int = TILE) -> np.ndarray:
    """Per tile, the std of grey minus its least-squares plane, with the noise share removed.

    Looks only inside the tile, so a flat wall next to a busy edge stays flat.
    """
    h, w = grey.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    yy, xx = (yy % tile) / tile - 0.5, (xx % tile) / tile - 0.5
    basis = [np.ones_like(yy), yy, xx]
    gram = np.stack([np.stack([block_mean(a * b, tile) for b in basis], -1) for a in basis], -2)
    rhs = np.stack([block_mean(a * grey, tile) for a in basis], -1)
    coef = np.linalg.solve(gram.astype(np.float64) + 1e-9 * np.eye(3), rhs[..., None])[..., 0]
    var = block_mean(grey.astype(np.float64) ** 2, tile) - (coef * rhs).sum(-1)
    return np.sqrt(np.clip(var - noise**2, 0, None)).astype(np.float32)


def spectrum_features(grey: np.ndarray, blurred: np.ndarray, tile: int = TILE) -> np.ndarray | None:
    """Type features from the gradient power spectrum averaged over blurred windows.

    Returns None when there are no blurred tiles to look at.
    """
    ty, tx = np.nonzero(blurred)
    if len(ty) == 0:
        return None
    win = SPEC_WIN
    h, w = grey.shape
    hann = np.outer(np.hanning(win), np.hanning(win)).astype(np.float32)
    power = np.zeros((win, win), np.float64)
    tensor = np.zeros((2, 2), np.float64)
    used = 0
    for y, x in zip(ty, tx):
        cy, cx = y * tile + tile // 2, x * tile + tile // 2
        y0, x0 = int(np.clip(cy - win // 2, 0, h - win)), int(np.clip(cx - win // 2, 0, w - win))
        patch = grey[y0:y0 + win, x0:x0 + win]
        if patch.shape != (win, win):
            continue
        gy, gx = np.gradient(patch)
        p = np.abs(np.fft.fft2(gx * hann)) ** 2 + np.abs(np.fft.fft2(gy * hann)) ** 2
        total = p.sum()
        if total <= 0:
            continue
        power += p / total
        jt = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
        tensor += jt / max(np.trace(jt), 1e-12)
        used += 1
    if used == 0:
        return None
    power = np.fft.fftshift(power / used)
    fy, fx = np.meshgrid(np.arange(win) - win // 2, np.arange(win) - win // 2, indexing="ij")
    radius = np.hypot(fy, fx) / (win // 2)              # 1 = Nyquist
    angle = np.mod(np.arctan2(fy, fx), np.pi)
    logp = np.log(power + 1e-9)
    nbins = 16
    rbin = np.minimum((radius * nbins).astype(int), nbins)
    radial = np.array([logp[rbin == i].mean() for i in range(nbins)])
    radial = radial - radial.max()
    # Angular profile in the mid band, where motion attenuates one direction and not the other.
    sectors = 12
    abin = np.minimum((angle / np.pi * sectors).astype(int), sectors - 1)
    ring = (radius > 0.15) & (radius < 0.8)
    angular = np.array([power[ring & (abin == i)].mean() for i in range(sectors)])
    angular = np.log(angular / angular.max() + 1e-9)
    eig = np.linalg.eigvalsh(tensor / used)
    spatial_aniso = 1.0 - eig[0] / max(eig[1], 1e-12)
    curvature = np.diff(radial, 2)
    return np.concatenate([radial, np.sort(angular), [angular.min(), spatial_aniso,
                                                      curvature.max(), curvature.min(),
                                                      np.log(used)]]).astype(np.float32)


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

"""Fitting and scoring the blur detector on synthetic photos blurred as a camera blurs them.

Every synthetic image is rendered as physics says (gir.data.blur's pieces): the sRGB crop is
linearised, blurred in linear light, given shot and read noise there, taken back through the
tone curve, quantised to 8 bits and often JPEG-compressed. The blur *families* drawn:

- ``motion``: irregular camera-motion random walks (gir.data.blur.motion_kernel), extents
  drawn log-uniformly from 3 to 24 px, so mild motion (3-8 px) is a large share;
- ``linear``: straight motion streaks of 3-20 px at any angle;
- ``shake``: the local kernel of a camera rotating along a smooth path (gir.data.blur's shake
  path, seen at one point of the frame), 3-30 px;
- ``defocus``: polygonal apertures (5-9 blades) or disks of radius 1.5-6 px, half of them
  varying with depth (two radii blended across the frame by a smooth random field);
- ``gaussian``: sigma 1-3 px;
- for the photo probability's calibration only, mild blur of every kind (MILD_FAMILIES):
  ``mild_motion`` random walks of 1.5-4 px, ``mild_shake`` 1.5-4 px, ``mild_defocus`` radius
  0.75-1.5 px, ``mild_gaussian`` sigma 0.5-1 px.

A *composite* blurs only a region (a moving subject: an ellipse, or one side of a line), puts
a flat, slightly shaded patch in, and knows every pixel's truth; a *whole* image is all blurred
(or, for the identity family ``sharp``, only noised and compressed). The tile network is fitted
on composites of FIT_IMAGES; the blur type on whole blurred images of FIT_IMAGES; the photo-level
probability and the operating-point thresholds on whole images of CALIBRATION_IMAGES, which the
tile network never saw, Platt-scaled on leave-one-photo-out scores; the blur type's
regularisation is chosen by leave-one-photo-out accuracy on FIT_IMAGES. All photos are the
scikit-image sample photos the deblurrer's sample source uses; the independent benchmark
(gir.rectifier.detect_eval.benchmark_items) uses none of them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# gir.data.blur (scipy.signal, ~0.5 s) is imported where a fit needs it: `gir detect` imports
# this module for cached_fit only.
from gir.rectifier.blur_features import TILE, block_mean, tile_features, to_grey
from gir.rectifier.detect import (
    BLURRED,
    DETECTOR_VERSION,
    FLAT,
    FLAT_AMPLITUDE,
    MLP,
    SHARP,
    Detector,
    Linear,
    _blur_map,
    image_features,
    type_features,
)

FIT_IMAGES = ("chelsea", "coffee", "rocket", "brick", "gravel", "camera", "motorcycle_right")
CALIBRATION_IMAGES = ("astronaut", "motorcycle_left", "grass", "immunohistochemistry")
HELD_OUT_IMAGES = CALIBRATION_IMAGES   # the composites' held-out scores use them too
FAMILIES = ("motion", "linear", "shake", "defocus", "gaussian")
TYPE_OF = {"motion": "motion", "linear": "motion", "shake": "motion", "defocus": "defocus",
           "gaussian": "gaussian", "mild_motion": "motion", "mild_shake": "motion",
           "mild_defocus": "defocus", "mild_gaussian": "gaussian"}
# The photo probability is calibrated on these: mild motion (1.5-4 px) too, which a tile
# barely shows, so that a photo with little blur evidence is not called sharp too confidently.
CALIBRATION_FAMILIES = FAMILIES + ("mild_motion",)
# The confidence's Platt scaling also sees mild blur of every kind (beside as many sharp
# photos, so the prior stays one half): blur a 32-px tile barely shows is the common case on
# real photos, and without it a photo called sharp was called so too confidently (0.74
# confidence, 62% right, on the development photos of docs/detector.md).
MILD_FAMILIES = ("mild_motion", "mild_defocus", "mild_gaussian", "mild_shake")
TYPE_C = (0.1, 0.3, 1.0, 3.0)   # blur-type regularisation tried (leave-one-photo-out CV)
SIZE = 256
IGNORE = 255


@dataclass
class Composite:
    image: np.ndarray      # (SIZE, SIZE, 3) uint8
    truth: np.ndarray      # (ny, nx) tile truth: SHARP / BLURRED / FLAT / IGNORE
    kind: str              # the blur type (motion / defocus / gaussian) or "sharp"
    family: str = ""
    photo: str = ""


# ----------------------------------------------------------------------------- kernels


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A straight motion streak `length` px long at `angle` (radians), antialiased."""
    size = int(np.ceil(length)) + 3 | 1
    k = np.zeros((size, size))
    c = size // 2
    for t in np.linspace(-length / 2, length / 2, max(int(length * 8), 8)):
        x, y = c + t * np.cos(angle), c + t * np.sin(angle)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        k[y0, x0] += (1 - fx) * (1 - fy)
        k[y0, x0 + 1] += fx * (1 - fy)
        k[y0 + 1, x0] += (1 - fx) * fy
        k[y0 + 1, x0 + 1] += fx * fy
    return (k / k.sum()).astype(np.float32)


def polygon_kernel(radius: float, blades: int, rotation: float) -> np.ndarray:
    """A defocus PSF shaped like a polygonal aperture (blades sides), antialiased."""
    r = int(np.ceil(radius)) + 1
    ss = 6
    coords = (np.arange(-r * ss, (r + 1) * ss) + 0.5) / ss - 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    ang, rad = np.arctan2(yy, xx) - rotation, np.hypot(yy, xx)
    sector = np.pi / blades
    edge = radius * np.cos(sector) / np.cos(np.mod(ang, 2 * sector) - sector)
    k = (rad <= edge).astype(np.float64).reshape(2 * r + 1, ss, 2 * r + 1, ss).mean((1, 3))
    return (k / k.sum()).astype(np.float32)


def shake_kernel(extent: float, rng: np.random.Generator) -> np.ndarray:
    """The local kernel of a camera shake (gir.data.blur.shake_path: a smooth rotation path)
    at a random point of a 1024 x 768 frame: what a crop there sees, without warping frames."""
    from gir.data import blur

    spec = blur.random_blur("shake", rng, shake_extent=(extent, extent))
    homs, _, _ = blur.shake_path(spec.params, (768, 1024))
    point = np.array([rng.uniform(0, 1023), rng.uniform(0, 767), 1.0])
    q = homs @ point
    path = q[:, :2] / q[:, 2:]
    path -= path.mean(0)
    size = int(np.ceil(2 * np.abs(path).max())) + 3 | 1
    # Dense in time: interpolate between frames so the streak has no gaps.
    t = np.linspace(0, len(path) - 1, max(8 * len(path), 64))
    xs = np.interp(t, np.arange(len(path)), path[:, 0]) + size // 2
    ys = np.interp(t, np.arange(len(path)), path[:, 1]) + size // 2
    k = np.zeros((size, size))
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(k, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)), wy * wx)
    return (k / k.sum()).astype(np.float32)


def _defocus(rng: np.random.Generator, radius: float) -> np.ndarray:
    from gir.data import blur

    if rng.random() < 0.5:
        return blur.defocus_kernel(radius)
    return polygon_kernel(radius, int(rng.integers(5, 10)), rng.uniform(0, np.pi))


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in [0, 1] (depth across the frame)."""
    from scipy import ndimage

    f = ndimage.gaussian_filter(rng.normal(size=shape), max(shape) / 6)
    return np.clip((f - f.min()) / max(np.ptp(f), 1e-9), 0, 1)


def _motion_path(length: float, rng: np.random.Generator) -> np.ndarray:
    from gir.data import blur

    return blur.motion_kernel(length, rng)


# family: (kernel of (extent, rng), lowest and highest extent in px, drawn log-uniformly)
_PATH_FAMILIES = {
    "motion": (_motion_path, 3, 24),
    "mild_motion": (_motion_path, 1.5, 4),
    "linear": (lambda length, rng: line_kernel(length, rng.uniform(0, np.pi)), 3, 20),
    "shake": (shake_kernel, 3, 30),
    "mild_shake": (shake_kernel, 1.5, 4),
}


def _gaussian(sigma: float, rng: np.random.Generator) -> np.ndarray:
    from gir.data import blur

    return blur.gaussian_kernel(sigma)


# family: (kernel of (size, rng), lowest and highest size in px, drawn uniformly; extent/size)
_ROUND_FAMILIES = {
    "gaussian": (_gaussian, 1, 3, 2.5),
    "mild_gaussian": (_gaussian, 0.5, 1, 2.5),
    "mild_defocus": (lambda r, rng: _defocus(rng, r), 0.75, 1.5, 2),
}


def blur_linear(x: np.ndarray, family: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Blur a linear-light image with a fresh draw of family; returns it and what was drawn."""
    from gir.data import blur

    path = _PATH_FAMILIES.get(family)
    if path is not None:       # a path of log-uniform extent: motion, streaks, shake
        kernel, low, high = path
        length = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        return blur.convolve(x, kernel(length, rng).astype(np.float64)), {"extent": length}
    round_ = _ROUND_FAMILIES.get(family)
    if round_ is not None:     # one all-round kernel of uniform size: Gaussian, mild defocus
        kernel, low, high, reach = round_
        size = rng.uniform(low, high)
        return blur.convolve(x, kernel(size, rng).astype(np.float64)), {"extent": reach * size}
    if family == "defocus":
        r1 = rng.uniform(1.5, 6)
        y = blur.convolve(x, _defocus(rng, r1).astype(np.float64))
        if rng.random() < 0.5:     # depth-varying: a second radius elsewhere in the frame
            r2 = rng.uniform(1.5, 6)
            w = _smooth_field(x.shape[:2], rng)[..., None]
            y = w * y + (1 - w) * blur.convolve(x, _defocus(rng, r2).astype(np.float64))
            return y, {"extent": 2 * min(r1, r2)}
        return y, {"extent": 2 * r1}
    raise ValueError(f"unknown blur family {family!r}")


def camera_finish(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shot + read noise in linear light, the tone curve, 8 bits, and (often) a JPEG trip."""
    from gir.data import blur

    y = blur.sensor_noise(linear, rng.uniform(0, 0.02), rng.uniform(0, 0.004), rng)
    out = np.clip(np.round(blur.linear_to_srgb(y) * 255), 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        out = blur.jpeg_roundtrip(out, int(rng.integers(60, 96)))
    return out


# ----------------------------------------------------------------------------- images


def _crop(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop after a random downscale in [0.5, 1] (photos differ in native sharpness)."""
    from PIL import Image

    h, w = photo.shape[:2]
    scale = max(rng.uniform(0.5, 1.0), (size + 2) / min(h, w))
    side = int(np.ceil(size / scale)) + 1
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    img = Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.LANCZOS)
    return np.asarray(img)


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


def _subject_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """Where the blur is: a moving subject (an ellipse) or one side of a straight line."""
    yy, xx = np.mgrid[:size, :size] - size / 2
    if rng.random() < 0.5:
        cy, cx = rng.uniform(-0.25, 0.25, 2) * size
        ay, ax = rng.uniform(0.2, 0.4, 2) * size
        return ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1
    theta = rng.uniform(0, 2 * np.pi)
    return (xx * np.cos(theta) + yy * np.sin(theta)) >= rng.uniform(-0.25, 0.25) * size


def make_composite(photo: np.ndarray, family: str, rng: np.random.Generator,
                   size: int = SIZE, partial: bool = True) -> Composite:
    """Part sharp, part blurred (family), part flat; partial=False blurs everything (no flat).
    family "sharp" is the identity: noise and compression only."""
    from gir.data import blur

    sharp = blur.srgb_to_linear(_crop(photo, rng, size).astype(np.float64) / 255.0)
    if family == "sharp":
        blurred, truth = sharp, np.full((size, size), SHARP, np.uint8)
    elif family == "bokeh":   # a sharp photo: the subject in focus, the background not
        blurred = blur.convolve(sharp, _defocus(rng, rng.uniform(3, 10)).astype(np.float64))
        truth = np.full((size, size), SHARP, np.uint8)
        truth[~_subject_mask(size, rng)] = BLURRED
        partial = False
    else:
        blurred, _ = blur_linear(sharp, family, rng)
        truth = np.full((size, size), BLURRED, np.uint8)
        if partial:
            truth[~_subject_mask(size, rng)] = SHARP
    image = np.where((truth == SHARP)[..., None], sharp, blurred)
    if partial:
        fh, fw = rng.integers(size // 5, size // 2, 2)
        fy, fx = rng.integers(0, size - fh), rng.integers(0, size - fw)
        truth[fy:fy + fh, fx:fx + fw] = FLAT
        slope = rng.uniform(-0.1, 0.1, 2) / size
        ramp = (np.arange(fh)[:, None] * slope[0] + np.arange(fw)[None, :] * slope[1])[..., None]
        image[fy:fy + fh, fx:fx + fw] = blur.srgb_to_linear(
            np.clip(rng.uniform(0.1, 0.9, 3) + ramp, 0, 1))
    reference = np.where((truth == FLAT)[..., None], image, sharp)
    sharp_grey = to_grey(np.round(blur.linear_to_srgb(reference) * 255).astype(np.uint8))
    return Composite(camera_finish(image, rng), tile_truth(truth, sharp_grey),
                     TYPE_OF.get(family, "sharp"), family)   # sharp, bokeh: a sharp photo


def composites(names, per_image: int, seed: int, partial: bool = True,
               families=FAMILIES + ("sharp",), size: int = SIZE) -> list[Composite]:
    """per_image composites per photo, families cycling, fully determined by seed."""
    from gir.data.sources.sample import load_sample_image

    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        photo = load_sample_image(name)
        for i in range(per_image):
            out.append(make_composite(photo, families[i % len(families)], rng, size,
                                      partial=partial))
            out[-1].photo = name
    return out


# ----------------------------------------------------------------------------- fitting


def _tile_xy(comps: list[Composite]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for c in comps:
        x = tile_features(to_grey(c.image)).matrix()
        t = c.truth.reshape(-1)
        keep = (t == SHARP) | (t == BLURRED)
        xs.append(x[keep])
        ys.append(t[keep])
    return np.concatenate(xs), np.concatenate(ys)


def _kind_xy(comps: list[Composite], probe: Detector):
    """Type features over the tiles the fitted tile network calls blurred, as at inference;
    (features, types, photos)."""
    xs, ys, photos = [], [], []
    for c in comps:
        grey = to_grey(c.image)
        labels, _, tile_x = _blur_map(grey, probe)
        tiles = labels == BLURRED
        f = type_features(grey, tiles if tiles.any() else labels != FLAT, tile_x)
        if f is not None:
            xs.append(f)
            ys.append(c.kind)
            photos.append(c.photo)
    return np.stack(xs), np.array(ys), np.array(photos)


def _image_xy(comps: list[Composite], probe: Detector):
    xs, ys = [], []
    for c in comps:
        labels, prob, _ = _blur_map(to_grey(c.image), probe)
        xs.append(image_features(labels, prob))
        ys.append(int(c.kind != "sharp"))
    return np.stack(xs), np.array(ys), np.array([c.photo for c in comps])


def _out_of_fold(x: np.ndarray, y: np.ndarray, photos: np.ndarray, c: float,
                 fit_rows: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities of each row from a Linear fitted without its photo's rows (and,
    with fit_rows, on those rows only: the others are scored, never fitted on)."""
    fit_rows = np.ones(len(y), bool) if fit_rows is None else fit_rows
    out = None
    for photo in np.unique(photos):
        held = photos == photo
        train = ~held & fit_rows
        p = Linear.fit(x[train], y[train], c=c).proba(x[held])
        out = np.zeros((len(y), p.shape[1])) if out is None else out
        out[held] = p
    return out


def fit_kinds(x: np.ndarray, y: np.ndarray, photos: np.ndarray) -> Linear:
    """The blur-type classifier, its regularisation chosen by leave-one-photo-out accuracy on
    the fitting photos (never by the benchmark)."""
    classes = np.unique(y)
    if any(len(np.unique(y[photos != p])) < len(classes) for p in np.unique(photos)):
        return Linear.fit(x, y, c=TYPE_C[1])   # too few photos for folds with every type
    accuracy = [(classes[_out_of_fold(x, y, photos, c).argmax(1)] == y).mean() for c in TYPE_C]
    return Linear.fit(x, y, c=TYPE_C[int(np.argmax(accuracy))])


def platt_scaled(image: Linear, x: np.ndarray, y: np.ndarray, photos: np.ndarray,
                 c: float, fit_rows: np.ndarray) -> tuple[Linear, np.ndarray]:
    """image (fitted on the fit_rows) with a Platt scaling folded into its weights, fitted on
    the leave-one-photo-out scores of all rows (each photo scored by a model that never saw
    it), and those scores after it."""
    from sklearn.linear_model import LogisticRegression

    p = np.clip(_out_of_fold(x, y, photos, c, fit_rows)[:, 1], 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p))[:, None]
    platt = LogisticRegression(C=1e4).fit(logit, y)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    scaled = Linear(image.mean, image.scale, (a * np.asarray(image.coef)).tolist(),
                    (a * np.asarray(image.intercept) + b).tolist(), image.classes)
    return scaled, platt.predict_proba(logit)[:, 1]


def fit_image_model(probe: Detector, seed: int, per_image: int) -> tuple[Linear, list]:
    """P(photo blurred) from the tile map, and the sharp photos' scores (for thresholds), on
    whole images of CALIBRATION_IMAGES: blurred every other draw, else sharp - all in focus
    (2 of 3), or with the subject in focus and the background not (shallow depth of field is
    sharp). Platt-scaled on leave-one-photo-out scores of those and of as many again with
    MILD_FAMILIES blur (scored, not fitted on); all sharp photos' scores set the thresholds:
    the scores of photos the model did not see, as at use."""
    def paired_with_sharp(blurred: tuple) -> tuple:
        sharp = ("sharp", "sharp", "bokeh")
        return sum(((f, sharp[i % 3]) for i, f in enumerate(blurred * 3)), ())

    calib = composites(CALIBRATION_IMAGES, 4 * per_image, seed, partial=False,
                       families=paired_with_sharp(CALIBRATION_FAMILIES), size=320)
    mild = composites(CALIBRATION_IMAGES, 4 * per_image, seed + 100, partial=False,
                      families=paired_with_sharp(MILD_FAMILIES), size=320)
    x, y, photos = _image_xy(calib + mild, probe)
    fit_rows = np.arange(len(y)) < len(calib)
    image, p = platt_scaled(Linear.fit(x[fit_rows], y[fit_rows], c=0.3), x, y, photos, c=0.3,
                            fit_rows=fit_rows)
    return image, sorted(float(v) for v in p[y == 0])


def fit_detector(seed: int = 1234, per_image: int = 12) -> Detector:
    """Fit the tile network, the blur type and the calibrated photo probability (deterministic;
    a minute or two at per_image 12; tests use a small per_image to stay fast)."""
    tiles = MLP.fit(*_tile_xy(composites(FIT_IMAGES, per_image, seed)), seed=seed)
    probe = Detector(tiles, kinds=None)
    # Every family on every photo even at a tiny per_image, so every type is fitted.
    whole = composites(FIT_IMAGES, max(6 * per_image, len(FAMILIES)), seed + 1, partial=False,
                       families=FAMILIES)
    kinds = fit_kinds(*_kind_xy(whole, probe))
    image, sharp_scores = fit_image_model(probe, seed + 2, per_image)
    return Detector(tiles, kinds, image, sharp_scores,
                    fitted_on={"images": list(FIT_IMAGES),
                               "calibration_images": list(CALIBRATION_IMAGES),
                               "families": list(FAMILIES),
                               "calibration_families": list(CALIBRATION_FAMILIES),
                               "platt_also_on": list(MILD_FAMILIES), "seed": seed,
                               "per_image": per_image, "linear_light": True,
                               "code": inference_hash(), "recipe": recipe_hash()})


# ----------------------------------------------------------------------------- synthetic scores


def blur_map_scores(detector: Detector, per_image: int = 12, seed: int = 98765) -> dict:
    """Blur-map F-measure (blurred class over tiles, flat ones as negatives) and flat false
    alarms on partial composites of the calibration photos (never fitted on by the tiles)."""
    tp = fp = fn = flat_total = flat_called = 0
    for c in composites(HELD_OUT_IMAGES, per_image, seed):
        labels, _, _ = _blur_map(to_grey(c.image), detector)
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


SHIPPED_FIT = Path(__file__).with_name("detector_fit.json")   # the built-in fit, in the package


def inference_hash() -> str:
    """What a fitted detector's numbers mean: a hash of the feature and decision code. A fit
    made under another hash would read its inputs wrongly, so it is not used. The code is
    hashed as parsed (ast.dump): an edited comment or blank line keeps the fit."""
    from gir.rectifier import blur_features, detect

    return _parsed_code_hash(DETECTOR_VERSION, blur_features.__file__, detect.__file__)


def recipe_hash() -> str:
    """A hash of this fitting code, as parsed: a shipped fit made by another recipe is stale
    (still usable: inference_hash decides that), and tests/rectifier/test_detect.py asks for a
    refit."""
    return _parsed_code_hash("", __file__)


def _parsed_code_hash(salt: str, *files: str) -> str:
    """sha256 of salt and the files' code as parsed (ast.dump), so comments do not count."""
    import ast
    import hashlib

    h = hashlib.sha256(salt.encode())
    for path in files:
        h.update(ast.dump(ast.parse(Path(path).read_text())).encode())
    return h.hexdigest()[:12]


def cache_path() -> Path:
    """Cache file named after a hash of the detector's code, so an edit never reads stale fits."""
    import hashlib

    import sklearn

    from gir.data import blur

    h = hashlib.sha256(sklearn.__version__.encode())
    for module in (blur, sys.modules[__name__]):
        h.update(Path(module.__file__).read_bytes())
    h.update(inference_hash().encode())
    root = Path(os.environ.get("GIR_CACHE", Path.home() / ".cache" / "gir"))
    return root / f"detector-v{DETECTOR_VERSION}-{h.hexdigest()[:12]}.json"


def cached_fit() -> Detector:
    """The built-in fit: the one shipped in the package (fitted by `gir detect-train`'s recipe
    at the default params, see docs/detector.md), else from the cache file, else fitted now
    (minutes) and cached."""
    from gir.errors import GirError
    from gir.rectifier.detect import load_detector, save_detector

    try:
        shipped = load_detector(SHIPPED_FIT)
        if shipped.fitted_on.get("code") == inference_hash():
            return shipped
    except GirError:
        pass
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

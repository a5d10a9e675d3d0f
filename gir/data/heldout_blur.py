"""Blur generators the training synthesis never draws from: the independent benchmark's
held-out family.

Training (gir.data.blur / gir.data.psf) draws random-walk, Boracchi-Foi and linear motion,
polygonal-aperture defocus, isotropic Gaussians and spline camera shake. A model that has
only learned those shapes should lose its gain here, so the benchmark can measure how far it
generalises:

- ``motion``: physiological tremor, a sum of a few 4-12 Hz oscillations per axis plus a slow
  drift over the exposure (a different physical model of the moving camera);
- ``defocus``: a ray-traced spot diagram of a lens with Zernike-style defocus, astigmatism,
  coma and spherical aberration (rays through the pupil, displaced by the wavefront's
  gradient);
- ``gaussian``: an anisotropic Gaussian, two sigmas and an angle;
- ``shake``: the camera turns and shifts along the same tremor model instead of a spline.

Nothing in training imports this module; the benchmark (gir.data.benchmark) does.
"""

from __future__ import annotations

import numpy as np

from gir.data import blur, psf

HELDOUT_KINDS = ("motion", "defocus", "gaussian", "shake")
FULL_RANGES = {"motion": (7.0, 21.0), "defocus": (2.0, 5.0), "gaussian": (1.0, 2.5),
               "shake": (4.0, 40.0)}
MILD_RANGES = {"motion": (3.0, 7.0), "defocus": (0.8, 1.8), "gaussian": (0.5, 1.0),
               "shake": (2.0, 6.0)}


def tremor_path(rng: np.random.Generator, n: int = 400, dims: int = 2) -> tuple[np.ndarray, dict]:
    """(n, dims) positions over the exposure: per axis 2-3 sinusoids of 4-12 Hz with random
    amplitudes and phases, plus a linear drift, for an exposure of 1/30 to 1/4 s."""
    exposure = float(rng.uniform(1 / 30, 1 / 4))
    t = np.linspace(0.0, exposure, n)
    path = np.zeros((n, dims))
    freqs = []
    for d in range(dims):
        for _ in range(int(rng.integers(2, 4))):
            f = float(rng.uniform(4.0, 12.0))
            freqs.append(round(f, 2))
            path[:, d] += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
        path[:, d] += rng.normal(0, 1.0) * t / exposure  # slow drift
    return path, {"exposure_s": round(exposure, 4), "freqs_hz": freqs}


def tremor_kernel(length: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A motion kernel of `length` px extent traced by the tremor model."""
    path, drawn = tremor_path(rng)
    return psf.rasterise(path[:, 0] + 1j * path[:, 1], length), drawn


def zernike_spot_kernel(radius: float, rng: np.random.Generator,
                        rays: int = 20000) -> tuple[np.ndarray, dict]:
    """A defocus PSF as a ray-traced spot diagram: rays uniform over the pupil land at the
    gradient of W = d(u^2+v^2) + a(u^2-v^2) + c(u^2+v^2)u + s(u^2+v^2)^2 (rotated by a random
    angle), scaled so the pure-defocus spot has the given radius."""
    a, c, s = (float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.25, 0.25)),
               float(rng.uniform(-0.3, 0.3)))
    theta = float(rng.uniform(0, 2 * np.pi))
    r, phi = np.sqrt(rng.random(rays)), rng.uniform(0, 2 * np.pi, rays)
    u, v = r * np.cos(phi), r * np.sin(phi)
    rho2 = u**2 + v**2
    gx = 2 * u + 2 * a * u + c * (3 * u**2 + v**2) + 4 * s * rho2 * u  # dW/du with d = 1
    gy = 2 * v - 2 * a * v + c * 2 * u * v + 4 * s * rho2 * v
    x = (gx * np.cos(theta) - gy * np.sin(theta)) * radius / 2
    y = (gx * np.sin(theta) + gy * np.cos(theta)) * radius / 2
    half = int(np.ceil(max(np.abs(x).max(), np.abs(y).max()))) + 1
    ss = 4
    hist, _, _ = np.histogram2d(y, x, bins=2 * half * ss + ss,
                                range=[[-half - 0.5, half + 0.5]] * 2)
    n = 2 * half + 1
    k = hist.reshape(n, ss, n, ss).sum(axis=(1, 3))
    return psf.normalise(k), {"astigmatism": round(a, 4), "coma": round(c, 4),
                              "spherical": round(s, 4), "angle": round(theta, 4)}


def anisotropic_gaussian(sigma: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A Gaussian with sigmas sigma and sigma * ratio (ratio 0.25-0.8) at a random angle."""
    ratio, angle = float(rng.uniform(0.25, 0.8)), float(rng.uniform(0, np.pi))
    r = max(int(np.ceil(3.5 * sigma)), 1)
    yy, xx = np.mgrid[-r: r + 1, -r: r + 1].astype(np.float64)
    a = xx * np.cos(angle) + yy * np.sin(angle)
    b = -xx * np.sin(angle) + yy * np.cos(angle)
    k = np.exp(-0.5 * ((a / sigma) ** 2 + (b / max(sigma * ratio, 0.2)) ** 2))
    return psf.normalise(k), {"ratio": round(ratio, 4), "angle": round(angle, 4)}


def tremor_shake_homographies(params: dict, shape: tuple[int, int]) -> np.ndarray:
    """Homographies of a camera that turns (yaw, pitch, roll) and shifts along the tremor
    model, scaled so the largest probe-point span is params['extent'] px."""
    h, w = shape
    prng = np.random.default_rng(int(params["seed"]))
    path, _ = tremor_path(prng, n=int(np.clip(params["extent"] * 2, 16, 64)), dims=6)
    focal_px = params["focal_mm"] / 36.0 * max(h, w)
    weights = np.array([1.0, 1.0, 0.3, 0.2, 0.2, 0.0]) / np.array(
        [focal_px, focal_px, 0.5 * np.hypot(h, w), 1.0, 1.0, 1.0])
    poses = (path - path.mean(axis=0)) * weights
    points = blur._probe_points(h, w)
    for _ in range(4):
        span = blur._extent(blur._trajectories(blur.pose_homographies(shape, focal_px, poses),
                                               points))
        poses = poses * (params["extent"] / max(span, 1e-9))
    return blur.pose_homographies(shape, focal_px, poses)


def heldout_blur(kind: str, rng: np.random.Generator, mild: bool = False) -> blur.BlurSpec:
    """One degradation of a held-out family (no sensor degradations: the benchmark adds its
    own). Unknown kinds are a ValueError naming the known ones."""
    if kind not in HELDOUT_KINDS:
        raise ValueError(f"unknown held-out blur kind {kind!r} "
                         f"(expected one of {', '.join(HELDOUT_KINDS)})")
    size = float(rng.uniform(*(MILD_RANGES if mild else FULL_RANGES)[kind]))
    if kind == "shake":
        params = {"family": "tremor_shake", "extent": round(size, 3),
                  "focal_mm": round(float(rng.uniform(24, 85)), 2),
                  "seed": int(rng.integers(2**31))}
        return blur.BlurSpec("shake", None, params)
    draw = {"motion": tremor_kernel, "defocus": zernike_spot_kernel,
            "gaussian": anisotropic_gaussian}[kind]
    kernel, drawn = draw(size, rng)
    family = {"motion": "tremor", "defocus": "zernike_spot", "gaussian": "anisotropic"}[kind]
    key = {"motion": "length", "defocus": "radius", "gaussian": "sigma"}[kind]
    return blur.BlurSpec(kind, kernel, {"family": family, key: round(size, 3), **drawn})


def render_camera(sharp: np.ndarray, spec: blur.BlurSpec, degradations: dict,
                   rng: np.random.Generator) -> np.ndarray:
    """A spec (training or held-out family) rendered as a camera would: linear light, the blur, shot + read noise,
    tone curve, 8 bits, then JPEG (degradations: shot_noise, read_noise, jpeg_quality)."""
    x = blur.srgb_to_linear(sharp.astype(np.float64) / 255.0)
    if spec.kind == "shake" and spec.params.get("family") == "tremor_shake":
        y = blur.warp_average(x, tremor_shake_homographies(spec.params, x.shape[:2]))
    else:
        y = blur.render_blur(x, spec)
    y = blur.sensor_noise(y, degradations["shot_noise"], degradations["read_noise"], rng)
    out = np.clip(np.round(blur.linear_to_srgb(y) * 255.0), 0, 255).astype(np.uint8)
    return blur.jpeg_roundtrip(out, degradations["jpeg_quality"])

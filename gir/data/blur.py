"""Synthetic blur: camera-shake trajectories, defocus disks and Gaussians, plus sensor noise.

Used by every source that starts from sharp photos (sample, folder, unsplash) and by the
detector's synthetic test sets. Kernels are explicit arrays, so classical non-blind references
(Wiener, Richardson-Lucy) can be handed the true kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, signal

BLUR_KINDS = ("motion", "defocus", "gaussian")


@dataclass
class BlurSpec:
    """One synthetic degradation: its kernel and the parameters that made it."""

    kind: str
    kernel: np.ndarray
    params: dict = field(default_factory=dict)
    noise_sigma: float = 0.0


def _normalise(k: np.ndarray) -> np.ndarray:
    k = np.clip(k, 0, None)
    k = _crop_to_support(k)
    return (k / k.sum()).astype(np.float32)


def _crop_to_support(k: np.ndarray) -> np.ndarray:
    """Trim empty borders and make the kernel odd-sized and centred on its centre of mass."""
    ys, xs = np.nonzero(k > k.max() * 1e-4)
    k = k[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    cy, cx = ndimage.center_of_mass(k)
    h, w = k.shape
    half = int(np.ceil(max(cy, h - 1 - cy, cx, w - 1 - cx)))
    out = np.zeros((2 * half + 1, 2 * half + 1), np.float64)
    oy, ox = half - int(round(cy)), half - int(round(cx))
    out[oy: oy + h, ox: ox + w] = k
    return out


def motion_kernel(length: float, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """A random camera-shake trajectory of about `length` pixels, rasterised with subpixel weights.

    A random walk with inertia (after Boracchi & Foi, 2012): mostly a smooth sweep in one
    direction, sometimes curved or jerky, as hand-held shake is.
    """
    size = size or int(np.ceil(length)) * 2 + 3
    n = max(int(length * 4), 16)
    angle = rng.uniform(0, 2 * np.pi)
    velocity = np.exp(1j * angle)
    pos = np.zeros(n, complex)
    jerk = rng.uniform(0.0, 0.3)
    for i in range(1, n):
        velocity += rng.normal(0, 0.25) * np.exp(1j * (angle + np.pi / 2)) * jerk
        velocity += rng.normal(0, 0.08) + 1j * rng.normal(0, 0.08)
        velocity /= abs(velocity)
        pos[i] = pos[i - 1] + velocity
    # Scale the path to the requested extent.
    extent = max(np.ptp(pos.real), np.ptp(pos.imag), 1e-6)
    pos = (pos - pos.mean()) * (length / extent)
    k = np.zeros((size, size), np.float64)
    c = size // 2
    for p in pos:
        x, y = p.real + c, p.imag + c
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                yy, xx = y0 + dy, x0 + dx
                if 0 <= yy < size and 0 <= xx < size:
                    k[yy, xx] += wy * wx
    return _normalise(k)


def defocus_kernel(radius: float) -> np.ndarray:
    """An antialiased disk (out-of-focus point spread function) of the given radius in pixels."""
    r = int(np.ceil(radius)) + 1
    ss = 8  # supersampling for smooth edges
    coords = (np.arange(-r * ss, (r + 1) * ss) + 0.5) / ss - 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    k = disk.reshape(2 * r + 1, ss, 2 * r + 1, ss).mean(axis=(1, 3))
    return _normalise(k)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """An isotropic Gaussian of the given standard deviation, truncated at 3.5 sigma."""
    r = max(int(np.ceil(3.5 * sigma)), 1)
    x = np.arange(-r, r + 1)
    g = np.exp(-(x**2) / (2 * sigma**2))
    return _normalise(np.outer(g, g))


def random_blur(
    kind: str,
    rng: np.random.Generator,
    motion_length: tuple[float, float] = (7, 21),
    defocus_radius: tuple[float, float] = (2, 5),
    gaussian_sigma: tuple[float, float] = (1, 2.5),
    noise_sigma: tuple[float, float] = (0, 0.01),
) -> BlurSpec:
    """Draw one degradation of the given kind with parameters from the given ranges."""
    noise = float(rng.uniform(*noise_sigma))
    if kind == "motion":
        length = float(rng.uniform(*motion_length))
        return BlurSpec(kind, motion_kernel(length, rng), {"length": round(length, 3)}, noise)
    if kind == "defocus":
        radius = float(rng.uniform(*defocus_radius))
        return BlurSpec(kind, defocus_kernel(radius), {"radius": round(radius, 3)}, noise)
    if kind == "gaussian":
        sigma = float(rng.uniform(*gaussian_sigma))
        return BlurSpec(kind, gaussian_kernel(sigma), {"sigma": round(sigma, 3)}, noise)
    raise ValueError(f"unknown blur kind {kind!r} (expected one of {', '.join(BLUR_KINDS)})")


def synth_blur(kind: str, rng: np.random.Generator, synth) -> BlurSpec:
    """random_blur with the ranges of the ``data.synth`` params (a SynthConfig): ingest and
    training's fresh blurs draw from the same distribution through this one call."""
    return random_blur(kind, rng, tuple(synth.motion_length), tuple(synth.defocus_radius),
                       tuple(synth.gaussian_sigma), tuple(synth.noise_sigma))


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve each channel of a float image with kernel, reflecting at the borders."""
    pad = kernel.shape[0] // 2
    img = image if image.ndim == 3 else image[..., None]
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.stack(
        [signal.fftconvolve(padded[..., c], kernel, mode="valid") for c in range(img.shape[2])],
        axis=-1,
    )
    return out if image.ndim == 3 else out[..., 0]


def degrade(sharp: np.ndarray, spec: BlurSpec, rng: np.random.Generator) -> np.ndarray:
    """Blur a uint8 image with spec's kernel, add Gaussian noise, and quantise back to 8 bits."""
    x = sharp.astype(np.float64) / 255.0
    y = convolve(x, spec.kernel.astype(np.float64))
    if spec.noise_sigma > 0:
        y = y + rng.normal(0, spec.noise_sigma, y.shape)
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)

"""Point spread functions the training synthesis draws from: motion-kernel families and
real aperture shapes.

Motion blur is the path of the camera during the exposure, rasterised with subpixel weights.
Hand-held shake is not one kind of path, so four families are drawn (``data.synth.
motion_families``): a smooth random walk with inertia, a jittery one with uneven speed, the
trajectories of Boracchi & Foi (2012) with their impulsive jerks, and a straight line. Defocus
is the aperture's shape: a polygon of a few blades (or round) whose brightness varies with the
radius, as a little spherical aberration makes it. Every function takes the rng it draws from
and returns what it drew, so the manifest can record it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def normalise(k: np.ndarray) -> np.ndarray:
    """Non-negative, odd-sized, centred on its centre of mass, summing to 1."""
    k = np.clip(k, 0, None)
    ys, xs = np.nonzero(k > k.max() * 1e-4)
    k = k[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    cy, cx = ndimage.center_of_mass(k)
    h, w = k.shape
    half = int(np.ceil(max(cy, h - 1 - cy, cx, w - 1 - cx)))
    out = np.zeros((2 * half + 1, 2 * half + 1), np.float64)
    oy, ox = half - int(round(cy)), half - int(round(cx))
    out[oy: oy + h, ox: ox + w] = k
    return (out / out.sum()).astype(np.float32)


def rasterise(pos: np.ndarray, length: float, weights: np.ndarray | None = None) -> np.ndarray:
    """A kernel from a path (complex positions): scaled so its largest span (x or y) is
    `length` px, each sample splatted bilinearly with its weight (the time spent there)."""
    extent = max(np.ptp(pos.real), np.ptp(pos.imag), 1e-6)
    pos = (pos - (pos.real.min() + pos.real.max()) / 2 - 1j * (pos.imag.min() + pos.imag.max())
           / 2) * (length / extent)
    size = int(np.ceil(length)) * 2 + 5
    c = size // 2
    x, y = pos.real + c, pos.imag + c
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    w = np.ones(len(pos)) if weights is None else np.asarray(weights, float)
    k = np.zeros((size, size), np.float64)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(k, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)),
                      w * wy * wx)
    return normalise(k)


def walk_path(length: float, rng: np.random.Generator, jerk: float, wobble: float) -> np.ndarray:
    """A random walk with inertia: unit steps whose direction turns by `jerk` (sideways
    pushes) and `wobble` (isotropic noise) each step."""
    n = max(int(length * 4), 16)
    angle = rng.uniform(0, 2 * np.pi)
    velocity = np.exp(1j * angle)
    pos = np.zeros(n, complex)
    side = rng.normal(0, 0.25, n) * jerk
    noise = rng.normal(0, wobble, (n, 2))
    for i in range(1, n):
        velocity += side[i] * np.exp(1j * (angle + np.pi / 2)) + noise[i, 0] + 1j * noise[i, 1]
        velocity /= abs(velocity)
        pos[i] = pos[i - 1] + velocity
    return pos


def smooth_walk(length: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A smooth sweep, gently curved: the most common hand-held blur."""
    jerk = float(rng.uniform(0.0, 0.3))
    return rasterise(walk_path(length, rng, jerk, 0.08), length), {"jerk": round(jerk, 4)}


def jittery_walk(length: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A restless path whose speed varies, so the kernel has bright knots where the camera
    lingered."""
    jerk, wobble = float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.15, 0.4))
    pos = walk_path(length, rng, jerk, wobble)
    dwell = np.exp(ndimage.gaussian_filter1d(rng.normal(0, 1.0, len(pos)), 3) * 2.0)
    return rasterise(pos, length, dwell), {"jerk": round(jerk, 4), "wobble": round(wobble, 4)}


def boracchi_foi(length: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A trajectory after Boracchi & Foi (2012): Gaussian shake with a centripetal pull,
    `anxiety` scaling both, and impulsive jerks that reverse the motion now and then."""
    n, anxiety = 512, float(rng.uniform(0.005, 0.1))
    centripetal, big_shakes = 0.7 * rng.random(), 0.2
    step = 1.0 / (n - 1)
    v = np.exp(1j * rng.uniform(0, 2 * np.pi)) * step
    x = np.zeros(n, complex)
    jerks = 0
    for t in range(n - 1):
        nxt = 0.0
        if rng.random() < big_shakes * anxiety:
            nxt = 2 * v * np.exp(1j * (np.pi + (rng.random() - 0.5)))
            jerks += 1
        dv = nxt + anxiety * ((rng.normal() + 1j * rng.normal()) - centripetal * x[t]) * step
        v = v + dv
        v = v / max(abs(v), 1e-12) * step
        x[t + 1] = x[t] + v
    return rasterise(x, length), {"anxiety": round(anxiety, 5),
                                  "centripetal": round(float(centripetal), 4), "jerks": jerks}


def linear_motion(length: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A straight sweep at a random angle (a pan, or a subject crossing the frame)."""
    angle = float(rng.uniform(0, np.pi))
    pos = np.linspace(-0.5, 0.5, max(int(length * 6), 8)) * np.exp(1j * angle)
    if abs(np.cos(angle)) < 1e-9 or abs(np.sin(angle)) < 1e-9:
        pos = pos + 1e-9 * (1 + 1j)  # keep both spans non-zero for the scaling
    return rasterise(pos, length), {"angle_deg": round(float(np.degrees(angle)), 2)}


MOTION_FAMILIES = {
    "smooth_walk": smooth_walk,
    "jittery_walk": jittery_walk,
    "boracchi_foi": boracchi_foi,
    "linear": linear_motion,
}


def aperture_kernel(radius: float, blades: int = 0, rotation: float = 0.0,
                    spherical: float = 0.0, ss: int = 8) -> np.ndarray:
    """An out-of-focus PSF: the aperture (round when blades is 0, else a regular polygon of
    that many blades, turned by rotation radians) of the area of a disk of `radius` px.

    spherical in [-1, 1] tilts brightness from centre to rim, 1 + s (2 rho^2 - 1): a positive
    value gives the bright-ringed bokeh of one side of focus, a negative one the soft centre
    of the other."""
    r = int(np.ceil(radius * 1.2)) + 1
    coords = (np.arange(-r * ss, (r + 1) * ss) + 0.5) / ss - 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    rho, theta = np.hypot(xx, yy), np.arctan2(yy, xx)
    if blades >= 3:
        sector = 2 * np.pi / blades
        circum = radius / np.sqrt(blades / (2 * np.pi) * np.sin(sector))  # same area as disk
        edge = circum * np.cos(np.pi / blades) / np.cos(
            np.mod(theta - rotation, sector) - np.pi / blades)
    else:
        edge = np.full_like(rho, radius)
    inside = rho <= edge
    rel = np.where(inside, rho / np.maximum(edge, 1e-9), 0.0)
    k = inside * np.clip(1.0 + spherical * (2 * rel**2 - 1), 0.05, None)
    n = 2 * r + 1
    return normalise(k.reshape(n, ss, n, ss).mean(axis=(1, 3)))

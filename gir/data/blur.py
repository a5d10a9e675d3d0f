"""Synthetic blur: camera-shake trajectories, defocus disks and Gaussians, plus sensor noise.

Used by every source that starts from sharp photos (sample, folder, unsplash) and by the
detector's synthetic test sets. Kernels are explicit arrays, so classical non-blind references
(Wiener, Richardson-Lucy) can be handed the true kernel.

Every kind is rendered as a camera records it (``data.synth.linear_light``, on by default): the
sRGB photo is linearised, blurred in linear light, given shot and read noise there, returned
through the tone curve and quantised, then JPEG round-tripped. ``synth_blur`` first draws a
severity from ``data.synth.shares``: a full blur, a mild one (``mild_*`` ranges), or an identity
pair (kind ``sharp``: the photo paired with itself, so a deblurrer learns to leave sharp photos
alone). Motion kernels come from several families and defocus from real aperture shapes
(gir.data.psf); a share of defocus varies with a depth ramp across the frame.

The `shake` kind has no kernel: the camera rotates (yaw, pitch, roll) and moves along a smooth
random path during the exposure, and the photo is the average of the warped frames in linear
light, so the blur differs across the frame as it does in hand-held photos. Realistic
degradations apply to every kind when ``data.synth`` asks for them: highlights above the
sensor's full scale that clip into streaks, shot plus read noise in linear light, and a JPEG
round trip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from gir.data import psf

BLUR_KINDS = ("motion", "defocus", "gaussian")  # kinds with one kernel for the whole image
SYNTH_KINDS = BLUR_KINDS + ("shake",)            # every kind data.synth can draw
SHARP_KIND = "sharp"                             # an identity pair: the photo with itself
SEVERITIES = ("full", "mild", "sharp")           # the keys of data.synth.shares
# Bumped when the same params render different pairs (2: sharp_target; 3: linear light for
# every kind, severities, motion families, aperture shapes, depth-varying defocus).
SYNTH_VERSION = 3


@dataclass
class BlurSpec:
    """One synthetic degradation: its kernel (None for shake) and the parameters that made it.

    ``degradations`` holds what was drawn beyond the blur (shot_noise, read_noise,
    highlight_gain/share, jpeg_quality, linear_light); empty means today's plain degradation.
    """

    kind: str
    kernel: np.ndarray | None
    params: dict = field(default_factory=dict)
    noise_sigma: float = 0.0
    degradations: dict = field(default_factory=dict)

    @property
    def margin(self) -> int:
        """How far (px) the blur reaches: a crop needs this much context on each side."""
        if self.kind == SHARP_KIND:
            return 0
        if self.kind == "shake":
            return int(np.ceil(self.params["extent"])) + 2
        if self.kernel is None:  # depth-varying defocus: the largest aperture's reach
            return int(np.ceil(self.params["radius_max"] * 1.2)) + 2
        return self.kernel.shape[0] // 2


_normalise = psf.normalise  # trimmed, odd-sized, centred on the centre of mass, sum 1


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


# --------------------------------------------------------------------------- camera shake

SHAKE_DOF = ("yaw", "pitch", "roll", "shift_x", "shift_y", "zoom")
_FILM_WIDTH_MM = 36.0  # focal lengths are 35 mm-equivalent: f_px = f_mm / 36 * longest side
_MAX_STEP_PX = 1.0     # frames are dense enough that no point moves further between two


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted (x in [0, 1])."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(y: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] to sRGB."""
    y = np.clip(y, 0.0, 1.0)
    return np.where(y <= 0.0031308, y * 12.92, 1.055 * np.power(y, 1 / 2.4) - 0.055)


def _probe_points(h: int, w: int) -> np.ndarray:
    """Corners, edge midpoints and centre (x, y): where the extent of a shake is measured."""
    xs, ys = (0.0, (w - 1) / 2, w - 1.0), (0.0, (h - 1) / 2, h - 1.0)
    return np.array([(x, y) for y in ys for x in xs])


def pose_homographies(shape: tuple[int, int], focal_px: float, poses: np.ndarray) -> np.ndarray:
    """One homography per frame, mapping the sharp photo's pixels to where a frame sees them.

    poses is (frames, 6): yaw, pitch, roll (radians), shift_x, shift_y (px) and zoom (relative
    scale change). H = S K R K^-1 with K a pinhole of focal_px centred on the image, R the
    camera rotation and S the in-plane shift plus zoom about the centre.
    """
    h, w = shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    k = np.array([[focal_px, 0, cx], [0, focal_px, cy], [0, 0, 1.0]])
    k_inv = np.linalg.inv(k)
    out = np.empty((len(poses), 3, 3))
    for i, (yaw, pitch, roll, sx, sy, zoom) in enumerate(poses):
        cyw, syw, cp, sp, cr, sr = (np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch),
                                    np.cos(roll), np.sin(roll))
        r_yaw = np.array([[cyw, 0, syw], [0, 1, 0], [-syw, 0, cyw]])
        r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
        s = 1.0 + zoom
        shift = np.array([[s, 0, cx - s * cx + sx], [0, s, cy - s * cy + sy], [0, 0, 1.0]])
        out[i] = shift @ k @ (r_roll @ r_yaw @ r_pitch) @ k_inv
    return out


def _trajectories(homs: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(frames, points, 2): where each point lands in each frame."""
    ph = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    q = np.einsum("fij,pj->fpi", homs, ph)
    return q[..., :2] / q[..., 2:]


def _extent(traj: np.ndarray) -> float:
    """Largest span (max of x and y ranges) of any probe point's path, as motion_length."""
    return float(np.max(np.maximum(np.ptp(traj[..., 0], axis=0), np.ptp(traj[..., 1], axis=0))))


def _path_length(traj: np.ndarray) -> float:
    """Longest distance travelled by any probe point."""
    return float(np.max(np.linalg.norm(np.diff(traj, axis=0), axis=-1).sum(axis=0)))


def shake_path(params: dict, shape: tuple[int, int]) -> tuple[np.ndarray, float, dict]:
    """The camera path of a shake spec at an image size: (homographies, focal_px, realised).

    The path is a cubic spline through a few random control poses (from params['seed']),
    centred on its mean pose (so the blurred photo stays aligned with the sharp one) and
    scaled so the largest span of any corner, edge midpoint or centre is params['extent'] px.
    The frame count follows from the path length, so frames are at most ~1 px apart.
    """
    from scipy.interpolate import CubicSpline

    h, w = shape
    prng = np.random.default_rng(int(params["seed"]))
    controls = int(prng.integers(3, 6))
    focal_px = params["focal_mm"] / _FILM_WIDTH_MM * max(h, w)
    radius = 0.5 * np.hypot(h, w)
    # Per degree of freedom, its share of the shake in pixels of displacement, then converted
    # to its own unit: hand-held shake is mostly yaw and pitch, some roll, a little shift/zoom.
    weights = prng.uniform([0.3, 0.3, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.8, 0.4, 0.4, 0.2])
    to_unit = np.array([1 / focal_px, 1 / focal_px, 1 / radius, 1.0, 1.0, 1 / radius])
    knots = prng.normal(size=(controls, 6)) * weights * to_unit
    fine_t = np.linspace(0, 1, 257)
    fine = CubicSpline(np.linspace(0, 1, controls), knots, bc_type="natural")(fine_t)
    fine -= fine.mean(axis=0)
    points = _probe_points(h, w)
    scale = 1.0
    for _ in range(4):  # the projection is nearly linear in small poses: converge in a few steps
        scale *= params["extent"] / max(_extent(_trajectories(
            pose_homographies(shape, focal_px, fine * scale), points)), 1e-9)
    fine *= scale
    length = _path_length(_trajectories(pose_homographies(shape, focal_px, fine), points))
    frames = int(np.clip(np.ceil(length / _MAX_STEP_PX) + 1, 8, 64))
    t = np.linspace(0, 1, frames)
    poses = np.stack([np.interp(t, fine_t, fine[:, j]) for j in range(6)], axis=1)
    poses -= poses.mean(axis=0)
    homs = pose_homographies(shape, focal_px, poses)
    realised = {
        "frames": frames, "controls": controls,
        "yaw_deg": round(float(np.degrees(np.ptp(poses[:, 0]))), 4),
        "pitch_deg": round(float(np.degrees(np.ptp(poses[:, 1]))), 4),
        "roll_deg": round(float(np.degrees(np.ptp(poses[:, 2]))), 4),
        "shift_px": round(float(max(np.ptp(poses[:, 3]), np.ptp(poses[:, 4]))), 4),
        "zoom": round(float(np.ptp(poses[:, 5])), 6),
        "extent_px": round(_extent(_trajectories(homs, points)), 3),
    }
    return homs, focal_px, realised


def _sampling_grid(inv: "torch.Tensor", h: int, w: int, step: int = 8) -> "torch.Tensor":
    """grid_sample's (frames, h, w, 2) grid for inverse homographies: exact on a coarse lattice
    every `step` px, bilinear in between (a homography is smooth: the error is far below
    0.01 px at these small rotations, and the full-size division is the slow part)."""
    import torch
    import torch.nn.functional as F

    gh, gw = -(-(h - 1) // step) + 1, -(-(w - 1) // step) + 1
    ys = torch.linspace(0, h - 1, gh, dtype=torch.float64)[:, None]
    xs = torch.linspace(0, w - 1, gw, dtype=torch.float64)[None, :]
    m = inv[:, :, :, None, None]
    den = m[:, 2, 0] * xs + m[:, 2, 1] * ys + m[:, 2, 2]
    gx = (m[:, 0, 0] * xs + m[:, 0, 1] * ys + m[:, 0, 2]) / den * (2 / max(w - 1, 1)) - 1
    gy = (m[:, 1, 0] * xs + m[:, 1, 1] * ys + m[:, 1, 2]) / den * (2 / max(h - 1, 1)) - 1
    coarse = torch.stack([gx, gy], 1).float()
    return F.interpolate(coarse, size=(h, w), mode="bilinear",
                         align_corners=True).permute(0, 2, 3, 1)


def warp_average(image: np.ndarray, homs: np.ndarray, chunk: int = 8) -> np.ndarray:
    """Mean of image warped by each homography (bilinear, reflected at the borders).

    Frame f at pixel x shows the scene point H_f^-1 x. torch's grid_sample does the warps;
    the frames are summed one by one in a fixed order, so the result does not depend on the
    number of threads.
    """
    import torch
    import torch.nn.functional as F

    h, w = image.shape[:2]
    img = image if image.ndim == 3 else image[..., None]
    src = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), np.float32))[None]
    inv = torch.from_numpy(np.linalg.inv(homs))
    acc = torch.zeros(src.shape[1:], dtype=torch.float32)
    with torch.no_grad():
        for start in range(0, len(inv), chunk):
            grid = _sampling_grid(inv[start: start + chunk], h, w)
            frames = F.grid_sample(src.expand(len(grid), -1, -1, -1), grid, mode="bilinear",
                                   padding_mode="reflection", align_corners=True)
            for f in frames:
                acc += f
    out = (acc / len(inv)).permute(1, 2, 0).numpy().astype(np.float64)
    return out if image.ndim == 3 else out[..., 0]


def shake_blur(linear: np.ndarray, spec: BlurSpec,
               frame: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Render a shake spec on a linear-light image; the realised path is added to spec.params.

    ``frame`` (photo height, width, y0, x0) says the image is a region of a larger photo at
    (y0, x0): the camera path is that of the whole photo, seen through the region, so a
    training crop gets the blur its place in the photo would have had.
    """
    h, w = linear.shape[:2]
    full_h, full_w, y0, x0 = frame or (h, w, 0, 0)
    homs, _, realised = shake_path(spec.params, (full_h, full_w))
    if (y0, x0) != (0, 0):
        to_full = np.array([[1.0, 0, x0], [0, 1, y0], [0, 0, 1]])
        to_region = np.array([[1.0, 0, -x0], [0, 1, -y0], [0, 0, 1]])
        homs = to_region @ homs @ to_full
    spec.params.update(realised)
    return warp_average(linear, homs)


def params_json(spec: BlurSpec) -> str:
    """The manifest's blur_params: what drew the blur plus the degradations, as sorted JSON."""
    params = dict(spec.params)
    if spec.degradations:
        params["degradations"] = spec.degradations
    return json.dumps(params, sort_keys=True)


# --------------------------------------------------------------------------- drawing blurs


def random_blur(
    kind: str,
    rng: np.random.Generator,
    motion_length: tuple[float, float] = (7, 21),
    defocus_radius: tuple[float, float] = (2, 5),
    gaussian_sigma: tuple[float, float] = (1, 2.5),
    noise_sigma: tuple[float, float] = (0, 0.01),
    shake_extent: tuple[float, float] = (4, 40),
    shake_focal_mm: tuple[float, float] = (24, 85),
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
    if kind == "shake":
        extent = float(rng.uniform(*shake_extent))
        focal = float(rng.uniform(*shake_focal_mm))
        seed = int(rng.integers(2**31))
        return BlurSpec(kind, None, {"extent": round(extent, 3), "focal_mm": round(focal, 2),
                                     "seed": seed}, noise)
    raise ValueError(f"unknown blur kind {kind!r} (expected one of {', '.join(SYNTH_KINDS)})")


def _draw(rng: np.random.Generator, bounds) -> float | None:
    """A value from [low, high]; None (and no draw) when the range is [0, 0], i.e. off."""
    low, high = bounds
    return None if high <= 0 else float(rng.uniform(low, high))


def _chance(rng: np.random.Generator, p: float) -> bool:
    """True with probability p; no draw when p is 0, so switched-off features change nothing."""
    return p > 0 and bool(rng.random() < p)


def draw_degradations(rng: np.random.Generator, synth) -> dict:
    """The realistic degradations of one pair, drawn from data.synth's ranges (only those on)."""
    out: dict = {}
    if synth.linear_light:
        out["linear_light"] = True
    if _chance(rng, synth.highlight_probability):
        out["highlight_gain"] = round(float(rng.uniform(*synth.highlight_gain)), 3)
        out["highlight_share"] = round(float(rng.uniform(*synth.highlight_share)), 5)
    for key in ("shot_noise", "read_noise"):
        value = _draw(rng, getattr(synth, key))
        if value is not None:
            out[key] = round(value, 6)
    if _chance(rng, synth.jpeg_probability):
        low, high = synth.jpeg_quality
        out["jpeg_quality"] = int(rng.integers(low, high + 1))
    return out


def draw_severity(rng: np.random.Generator, shares: dict, allow_sharp: bool = True) -> str:
    """full, mild or sharp with the probabilities of data.synth.shares (sharp left out, and
    the rest renormalised, when allow_sharp is False)."""
    names = [k for k in SEVERITIES if k != SHARP_KIND or allow_sharp]
    p = np.array([float(shares.get(k, 0.0)) for k in names])
    if p.sum() <= 0:
        return "full"
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _draw_defocus(rng: np.random.Generator, synth, radius: float, depth: bool) -> BlurSpec:
    """A polygonal (or round) aperture with a little spherical aberration; with depth, the
    radius ramps across the frame from a far to a near value."""
    low, high = synth.defocus_blades
    blades = 0 if _chance(rng, synth.defocus_round_probability) else \
        int(rng.integers(low, high + 1))
    rotation = float(rng.uniform(0, 2 * np.pi))
    spherical = float(rng.uniform(*synth.defocus_spherical)) * float(rng.choice([-1.0, 1.0]))
    params = {"radius": round(radius, 3), "blades": blades, "rotation": round(rotation, 4),
              "spherical": round(spherical, 4)}
    if not depth:
        return BlurSpec("defocus", psf.aperture_kernel(radius, blades, rotation, spherical),
                        params)
    near = float(rng.uniform(0.0, 0.5)) * radius  # a plane in focus somewhere near the edge
    params.update(radius_near=round(near, 3), depth_angle=round(float(rng.uniform(0, 2 * np.pi)),
                  4), radius_max=round(max(radius, near), 3))
    return BlurSpec("defocus", None, params)


def _draw_kind(kind: str, rng: np.random.Generator, synth, mild: bool) -> BlurSpec:
    """One blur of a kind, from data.synth's full or mild ranges."""
    def pick(name: str) -> tuple:
        return tuple(getattr(synth, ("mild_" if mild else "") + name))

    if kind == "motion":
        family = str(rng.choice(synth.motion_families))
        length = float(rng.uniform(*pick("motion_length")))
        kernel, drawn = psf.MOTION_FAMILIES[family](length, rng)
        return BlurSpec(kind, kernel, {"length": round(length, 3), "family": family, **drawn})
    if kind == "defocus":
        radius = float(rng.uniform(*pick("defocus_radius")))
        depth = not mild and _chance(rng, synth.defocus_depth_probability)
        return _draw_defocus(rng, synth, radius, depth)
    if kind == "gaussian":
        sigma = float(rng.uniform(*pick("gaussian_sigma")))
        return BlurSpec(kind, gaussian_kernel(sigma), {"sigma": round(sigma, 3)})
    if kind == "shake":
        extent = float(rng.uniform(*pick("shake_extent")))
        focal = float(rng.uniform(*synth.shake_focal_mm))
        return BlurSpec(kind, None, {"extent": round(extent, 3), "focal_mm": round(focal, 2),
                                     "seed": int(rng.integers(2**31))})
    raise ValueError(f"unknown blur kind {kind!r} (expected one of {', '.join(SYNTH_KINDS)})")


def synth_blur(kind: str, rng: np.random.Generator, synth, severity: str | None = None,
               allow_sharp: bool = True) -> BlurSpec:
    """One degradation drawn as data.synth (a SynthConfig) says: ingest, training's fresh
    blurs and the benchmark's training-family rows all draw here.

    The severity (full / mild / sharp) is drawn from synth.shares unless given; a sharp draw
    is an identity pair of kind ``sharp`` whatever `kind` asked for (recorded as
    params["requested"]). Every drawn value lands in spec.params / spec.degradations."""
    severity = severity or draw_severity(rng, synth.shares, allow_sharp)
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r} (expected one of "
                         f"{', '.join(SEVERITIES)})")
    if severity == SHARP_KIND:
        return BlurSpec(SHARP_KIND, None, {"severity": SHARP_KIND, "requested": kind})
    noise = float(rng.uniform(*synth.noise_sigma))
    spec = _draw_kind(kind, rng, synth, mild=severity == "mild")
    spec.noise_sigma = noise
    spec.params["severity"] = severity
    spec.degradations = draw_degradations(rng, synth)
    return spec


# --------------------------------------------------------------------------- rendering


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


def boost_highlights(x: np.ndarray, gain: float, share: float) -> np.ndarray:
    """The brightest `share` of pixels, among those already bright, times `gain`: light above
    full scale, which the blur spreads and the sensor then clips, so point lights turn into
    saturated streaks. Ranked, not thresholded, so a flat photo is not boosted wholesale."""
    lum = x @ np.array([0.2126, 0.7152, 0.0722]) if x.ndim == 3 else x
    flat = lum.ravel()
    k = max(1, int(round(share * flat.size)))
    top = np.argpartition(flat, -k)[-k:]
    top = top[flat[top] > 0.25]  # dark pixels are not light sources
    out = x.copy()
    out.reshape(flat.size, -1)[top] *= gain
    return out


def sensor_noise(y: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Signal-dependent noise in linear light: std sqrt(shot^2 * y + read^2), so `shot` is the
    photon noise at full scale and `read` the floor that dominates in the shadows."""
    var = shot**2 * np.clip(y, 0, None) + read**2
    return y + rng.standard_normal(y.shape) * np.sqrt(var)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at quality and decode again, as a shared or phone photo would be."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB" if image.ndim == 3 else "L"))


def _in_linear_light(spec: BlurSpec) -> bool:
    """Shake, and any spec drawn with linear_light, is rendered in linear light."""
    return spec.kind == "shake" or spec.degradations.get("linear_light", False)


def depth_defocus(x: np.ndarray, spec: BlurSpec,
                  frame: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Defocus whose radius ramps along params["depth_angle"] across the whole photo, from
    params["radius_near"] to params["radius"]: the image blurred at a few radii, blended by
    where each pixel sits on the ramp (``frame`` places a region inside its photo)."""
    p = spec.params
    h, w = x.shape[:2]
    full_h, full_w, y0, x0 = frame or (h, w, 0, 0)
    yy, xx = np.mgrid[y0: y0 + h, x0: x0 + w].astype(np.float64)
    d = np.cos(p["depth_angle"]) * xx + np.sin(p["depth_angle"]) * yy
    corners = [np.cos(p["depth_angle"]) * cx + np.sin(p["depth_angle"]) * cy
               for cx in (0, full_w - 1) for cy in (0, full_h - 1)]
    t = (d - min(corners)) / max(max(corners) - min(corners), 1e-9)
    radii = np.linspace(p["radius_near"], p["radius"], 4)
    pos = t * (len(radii) - 1)
    out = np.zeros_like(x)
    for i, r in enumerate(radii):
        weight = np.clip(1.0 - np.abs(pos - i), 0.0, 1.0)
        if not weight.any():
            continue
        if r < 0.3:
            layer = x
        else:
            kernel = psf.aperture_kernel(r, p["blades"], p["rotation"], p["spherical"])
            layer = convolve(x, kernel.astype(np.float64))
        out += layer * (weight[..., None] if x.ndim == 3 else weight)
    return out


def render_blur(x: np.ndarray, spec: BlurSpec,
                frame: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The blur alone, on a float image: shake, depth-varying defocus, or one kernel."""
    if spec.kind == "shake":
        return shake_blur(x, spec, frame)
    if spec.kernel is None:
        return depth_defocus(x, spec, frame)
    return convolve(x, spec.kernel.astype(np.float64))


def sharp_target(sharp: np.ndarray, spec: BlurSpec) -> np.ndarray:
    """What a sharp exposure of the scene that degrade() blurs records: the photo itself or,
    when spec boosts highlights above full scale, the photo with those highlights clipped there.

    The boosted light is part of the scene, so the sharp side of the pair must see it too:
    paired with the unboosted photo, a saturated streak would teach the model to darken clipped
    light, whose true brightness no deblurrer can know. Deterministic (no rng), so the same
    region gives the same target as degrade() boosted."""
    d = spec.degradations
    if "highlight_gain" not in d:
        return sharp
    x = sharp.astype(np.float64) / 255.0
    linear = _in_linear_light(spec)
    if linear:
        x = srgb_to_linear(x)
    x = np.clip(boost_highlights(x, d["highlight_gain"], d["highlight_share"]), 0.0, 1.0)
    if linear:
        x = linear_to_srgb(x)
    target = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    return sharp if np.array_equal(target, sharp) else target  # a dark photo has no lamp


def degrade(sharp: np.ndarray, spec: BlurSpec, rng: np.random.Generator,
            frame: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Blur a uint8 image as spec says and quantise back to 8 bits.

    Plain specs (no degradations, a kernel kind) blur in sRGB, add Gaussian noise and quantise,
    as before. Shake, and any spec with linear_light, works in linear light; highlights are
    boosted before the blur and clipped after it, sensor noise comes before the clip, JPEG last.
    ``frame`` places a region inside its photo (see shake_blur). Pair the result with
    sharp_target(sharp, spec), not with sharp: boosted highlights are clipped there too.
    """
    if spec.kind == SHARP_KIND:
        return sharp.copy()  # an identity pair: the photo as it is
    d = spec.degradations
    x = sharp.astype(np.float64) / 255.0
    linear = _in_linear_light(spec)
    if linear:
        x = srgb_to_linear(x)
    if "highlight_gain" in d:
        x = boost_highlights(x, d["highlight_gain"], d["highlight_share"])
    y = render_blur(x, spec, frame)
    if d.get("shot_noise") or d.get("read_noise"):
        y = sensor_noise(y, d.get("shot_noise", 0.0), d.get("read_noise", 0.0), rng)
    if linear:
        y = linear_to_srgb(y)  # clips at full scale: boosted highlights saturate
    if spec.noise_sigma > 0:
        y = y + rng.normal(0, spec.noise_sigma, y.shape)
    out = np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)
    if d.get("jpeg_quality"):
        out = jpeg_roundtrip(out, d["jpeg_quality"])
    return out

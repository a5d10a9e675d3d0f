"""What the blur detector looks at: per-tile band energies and the blur-kernel spectrum.

Pure numpy feature extraction, no fitted state (the filters are written in numpy and equal
scipy.ndimage's to float rounding: importing scipy.ndimage alone costs `gir detect` ~0.4 s): gir.rectifier.detect turns these features
into a blur map and a blur type with its two classifiers, gir.rectifier.detect_fit fits them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TILE = 32                  # blur-map tile side, px
SPEC_WIN = 64              # window for the type spectrum, px
_SIGMAS = (1.0, 2.0, 4.0, 8.0)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (or grey) -> float32 grey in [0, 1]."""
    g = rgb.astype(np.float32)
    if g.ndim == 3:
        g = g[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return g / 255.0


# ----------------------------------------------------------------------------- filters

def _gaussian_taps(sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter's 1-D kernel (truncated at 4 sigma), normalised."""
    r = int(4.0 * sigma + 0.5)
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return w / w.sum()


def _circular_response(taps: np.ndarray, n: int, half: bool) -> np.ndarray:
    """The (real: the kernel is symmetric) frequency response of taps centred on index 0."""
    k, r = np.zeros(n), len(taps) // 2
    k[: r + 1], k[n - r:] = taps[r:], taps[:r]
    return (np.fft.rfft(k) if half else np.fft.fft(k)).real


def gaussian_blurs(img: np.ndarray, sigmas) -> list[np.ndarray]:
    """img blurred by a Gaussian of each sigma with mirrored borders, as
    scipy.ndimage.gaussian_filter(mode="reflect") gives it, through one FFT of the padded image:
    numpy only, so that `gir detect` does not pay scipy.ndimage's import (~0.4 s)."""
    pad = max(int(4.0 * s + 0.5) for s in sigmas)
    h, w = img.shape
    padded = np.pad(img, pad, mode="symmetric")
    spectrum = np.fft.rfft2(padded)
    out = []
    for s in sigmas:
        taps = _gaussian_taps(s)
        response = (_circular_response(taps, padded.shape[0], False)[:, None]
                    * _circular_response(taps, padded.shape[1], True)[None, :])
        blurred = np.fft.irfft2(spectrum * response.astype(img.dtype), s=padded.shape)
        out.append(blurred[pad:pad + h, pad:pad + w].astype(img.dtype))
    return out


def _pair(a: np.ndarray, k: int, dy: int, dx: int):
    """a and a shifted k px along (dy >= 0, dx), cropped to where both exist."""
    h, w = a.shape
    if dx >= 0:
        return a[:h - k * dy, :w - k * dx], a[k * dy:, k * dx:]
    return a[:h - k * dy, -k * dx:], a[k * dy:, :w + k * dx]


def line_range(img: np.ndarray, dy: int, dx: int, reach: int) -> np.ndarray:
    """max - min over the 2 reach + 1 pixels of the line along (dy >= 0, dx) through each
    pixel, borders mirrored (scipy.ndimage's maximum/minimum filters on a line footprint),
    by doubling windows: a few array passes, not one per pixel of the line."""
    padded = np.pad(img, ((reach * dy,) * 2, (reach * abs(dx),) * 2), mode="symmetric")
    hi, lo, length, size = padded, padded, 1, 2 * reach + 1
    while length < size:
        k = min(length, size - length)
        hi, lo = np.maximum(*_pair(hi, k, dy, dx)), np.minimum(*_pair(lo, k, dy, dx))
        length += k
    return hi - lo


def box3(a: np.ndarray, mode: str) -> np.ndarray:
    """Mean over each 3x3 neighbourhood of the first two axes (scipy.ndimage.uniform_filter
    size 3, mode "nearest" or "constant")."""
    width = ((1, 1), (1, 1)) + ((0, 0),) * (a.ndim - 2)
    p = np.pad(a, width, mode="edge" if mode == "nearest" else "constant")
    h, w = a.shape[:2]
    return sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


# ----------------------------------------------------------------------------- features


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer (1996) fast estimate of white-noise sigma from a 3x3 Laplacian difference."""
    g = grey
    c = (g[:-2, :-2] + g[:-2, 2:] + g[2:, :-2] + g[2:, 2:] + 4 * g[1:-1, 1:-1]
         - 2 * (g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]))   # [[1,-2,1],[-2,4,-2],..]
    if c.size == 0:   # under 3 px in a dimension: no interior to measure, call it noiseless
        return 0.0
    return float(np.sqrt(np.pi / 2) * np.abs(c).mean() / 6.0)


def _band_noise_gain() -> np.ndarray:
    """Energy each DoG band passes from unit white noise (to subtract the noise share)."""
    d = np.zeros((65, 65), np.float32)
    d[32, 32] = 1
    levels = [d] + gaussian_blurs(d, _SIGMAS)
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
        if dy and d.shape[0] > 1:   # the wrapped last row; a 1 px high image has no other
            d[-1:] = d[-2:-1]
        out.append(block_mean(d**2, tile))
    return np.stack(out, -1)


_WIDTH_REACH = 5           # px each side over which an edge's contrast is measured


def edge_widths(grey: np.ndarray, noise: float, tile: int = TILE) -> np.ndarray:
    """(ny, nx, 4) log local kernel width along 0, 90, 45 and 135 deg, sorted.

    Along each direction, an edge's width is its contrast (the range over +-_WIDTH_REACH px)
    over its slope; averaged with slope^2 weights it is sum(C |D|) / sum(D^2): 1 px for a
    sharp step, about the blur's extent for a blurred one. Motion widens one direction only.
    """
    out = []
    for dy, dx in _DIRECTIONS:
        d = (np.roll(grey, (-dy, -dx), axis=(0, 1)) - grey) / np.hypot(dy, dx)
        if dy and d.shape[0] > 1:   # the wrapped last row; a 1 px high image has no other
            d[-1:] = d[-2:-1]
        c = line_range(grey, dy, dx, _WIDTH_REACH)
        num = block_mean(c * np.abs(d), tile)
        den = np.clip(block_mean(d * d, tile) - 2 * noise**2, 1e-7, None)
        out.append(np.log(np.clip(num / den, 0.5, 4 * _WIDTH_REACH)))
    return np.sort(np.stack(out, -1), -1)


def tensor_anisotropy(grey: np.ndarray, tile: int = TILE) -> np.ndarray:
    """(ny, nx) 1 - small/large eigenvalue of the tile's gradient structure tensor."""
    gy, gx = np.gradient(grey)
    a, b, c = block_mean(gx * gx, tile), block_mean(gx * gy, tile), block_mean(gy * gy, tile)
    half_trace, root = (a + c) / 2, np.sqrt(((a - c) / 2) ** 2 + b * b)
    return (1 - (half_trace - root) / np.maximum(half_trace + root, 1e-9)).astype(np.float32)


@dataclass
class TileFeatures:
    """Per-tile band energies (noise removed), directional sharpness and the noise sigma."""

    bands: np.ndarray      # (ny, nx, 4): energy in octaves 0-1, 1-2, 2-4, 4-8 px
    directional: np.ndarray  # (ny, nx, 4): log(gradient energy / after a 2 px blur), sorted
    noise: float

    structure: np.ndarray  # (ny, nx): what a plane (smooth shading) + noise leaves unexplained
    widths: np.ndarray | None = None      # (ny, nx, 4): edge_widths, sorted
    anisotropy: np.ndarray | None = None  # (ny, nx): tensor_anisotropy

    def matrix(self) -> np.ndarray:
        """(ny * nx, F) classifier input: log octave ratios, direction ratios, edge widths,
        anisotropy, their 3x3-tile context, structure level and noise."""
        e = np.log(self.bands + 1e-7)
        ratios = np.stack([e[..., 0] - e[..., 1], e[..., 1] - e[..., 2], e[..., 2] - e[..., 3],
                           e[..., 0] - e[..., 2]], -1)
        own = np.concatenate([ratios, self.directional], -1)
        if self.widths is not None:
            extra = [self.widths, self.widths[..., 3:] - self.widths[..., :1],
                     self.anisotropy[..., None]]
            own = np.concatenate([own] + extra, -1)
        local = box3(own, "nearest")
        level = np.log(self.structure + 1e-4)[..., None]
        noise = np.full(level.shape, np.log(self.noise + 1e-4), np.float32)
        x = np.concatenate([own, local, level, noise], -1)
        return x.reshape(-1, x.shape[-1])


MIN_SIDE = 3   # px: the features need a pixel on each side of one (a 1 px line has no blur)


def check_size(grey: np.ndarray) -> None:
    """A clear BadImageError for an image too thin to have blur features (64x1, 1x1)."""
    if min(grey.shape[:2]) < MIN_SIDE:
        from gir.errors import BadImageError

        h, w = grey.shape[:2]
        raise BadImageError(f"too small for blur detection: {w}x{h} px (at least {MIN_SIDE} "
                            "px on each side)")


def tile_features(grey: np.ndarray, tile: int = TILE) -> TileFeatures:
    check_size(grey)
    sigma = noise_sigma(grey)
    levels = [grey] + gaussian_blurs(grey, _SIGMAS)
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
    return TileFeatures(bands, directional, sigma, plane_residual(grey, sigma, tile),
                        edge_widths(grey, sigma, tile), tensor_anisotropy(grey, tile))


def plane_residual(grey: np.ndarray, noise: float, tile: int = TILE) -> np.ndarray:
    """Per tile, the std of grey minus its least-squares plane, with the noise share removed.

    Looks only inside the tile, so a flat wall next to a busy edge stays flat.
    """
    h, w = grey.shape
    yy = np.broadcast_to(((np.arange(h, dtype=np.float32) % tile) / tile - 0.5)[:, None], (h, w))
    xx = np.broadcast_to(((np.arange(w, dtype=np.float32) % tile) / tile - 0.5)[None, :], (h, w))
    basis = [np.ones((h, w), np.float32), yy, xx]
    # The Gram matrix is symmetric: six block means, not nine.
    sym = {(i, j): block_mean(basis[i] * basis[j], tile) for i in range(3) for j in range(i, 3)}
    gram = np.stack([np.stack([sym[min(i, j), max(i, j)] for j in range(3)], -1)
                     for i in range(3)], -2)
    rhs = np.stack([block_mean(a * grey, tile) for a in basis], -1)
    coef = np.linalg.solve(gram.astype(np.float64) + 1e-9 * np.eye(3), rhs[..., None])[..., 0]
    var = block_mean(grey * grey, tile).astype(np.float64) - (coef * rhs).sum(-1)
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

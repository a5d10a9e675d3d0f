"""Scoring a deblurrer: PSNR/SSIM against the sharp image, and the classical references.

Every method is scored on the same pairs: the model, the blurred input itself (the bar to
clear), and classical references (unsharp mask; Wiener / Richardson-Lucy with the true kernel
where the pair is synthetic). Used by the evaluate and register steps and by `gir bench`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from gir.data.dataset import Pair

Method = Callable[[np.ndarray, Pair], np.ndarray | None]
PRETRAINED = "pretrained"  # the model shipped with gir, scored beside a new one (evaluate)


def psnr(ref: np.ndarray, out: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(ref, out, data_range=255))


def ssim(ref: np.ndarray, out: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(ref, out, channel_axis=-1, data_range=255))


def blurred_reference(blur: np.ndarray, pair: Pair) -> np.ndarray:
    return blur


def unsharp_reference(blur: np.ndarray, pair: Pair, radius: float = 2.0,
                      amount: float = 1.0) -> np.ndarray:
    """Unsharp mask, filtered per channel (skimage's channel_axis path misbehaves on RGB)."""
    from skimage.filters import unsharp_mask

    x = blur.astype(np.float64) / 255.0
    out = np.stack([unsharp_mask(x[..., c], radius=radius, amount=amount)
                    for c in range(3)], axis=-1)
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def _true_kernel(pair: Pair) -> np.ndarray | None:
    """The pair's true blur kernel (synthetic pairs only), normalised to sum 1."""
    if pair.kernel is not None:
        k = pair.kernel.astype(np.float64)
    elif pair.kernel_path:
        k = np.load(pair.kernel_path).astype(np.float64)
    else:
        return None  # real blur, or shake (no single kernel)
    return k / max(k.sum(), 1e-12)


def _deconvolve(blur: np.ndarray, kernel: np.ndarray, fn) -> np.ndarray:
    """Apply fn(channel, kernel) per channel on a padded image, then crop the padding.

    FFT deconvolution assumes circular blur; a real image's borders break that and the error
    rings over the whole image (a motion-blurred photo lost ~10 dB to it in our check). So the
    image is reflect-padded and the padding replaced by its circular blur with the same kernel:
    the padded image is then consistent with the circular model everywhere but the seam.
    """
    from scipy import ndimage

    pad = 2 * kernel.shape[0]
    x = blur.astype(np.float64) / 255.0
    out = []
    for c in range(3):
        ch = np.pad(x[..., c], pad, mode="reflect")
        edge = ndimage.convolve(ch, kernel, mode="wrap")
        edge[pad:-pad, pad:-pad] = ch[pad:-pad, pad:-pad]
        out.append(fn(edge, kernel)[pad:-pad, pad:-pad])
    return np.clip(np.round(np.stack(out, axis=-1) * 255), 0, 255).astype(np.uint8)


def wiener_reference(blur: np.ndarray, pair: Pair, balance: float = 0.003) -> np.ndarray | None:
    """Non-blind Wiener deconvolution handed the TRUE kernel (an upper bound for a classical
    method); balance trades noise for sharpness (chosen on the val split of the sample data)."""
    from skimage.restoration import wiener

    kernel = _true_kernel(pair)
    if kernel is None:
        return None
    return _deconvolve(blur, kernel, lambda ch, k: wiener(ch, k, balance, clip=False))


def richardson_lucy_reference(blur: np.ndarray, pair: Pair, num_iter: int = 30) -> np.ndarray | None:
    """Richardson-Lucy deconvolution with the TRUE kernel (num_iter chosen on the val split)."""
    from skimage.restoration import richardson_lucy

    kernel = _true_kernel(pair)
    if kernel is None:
        return None
    return _deconvolve(blur, kernel,
                       lambda ch, k: richardson_lucy(ch, k, num_iter=num_iter, clip=False))


REFERENCES: dict[str, Method] = {
    "blurred": blurred_reference,
    "unsharp": unsharp_reference,
    "wiener": wiener_reference,
    "richardson_lucy": richardson_lucy_reference,
}


def score(methods: dict[str, Method], pairs: list[Pair], progress: bool = False) -> list[dict]:
    """One row per (pair, method) with PSNR/SSIM against the sharp image; None = not applicable."""
    from tqdm import tqdm

    rows = []
    for pair in tqdm(pairs, desc="evaluate", unit="img", disable=not progress):
        for name, method in methods.items():
            out = method(pair.blur, pair)
            if out is None:
                continue
            rows.append({"pair_id": pair.pair_id, "blur_kind": pair.blur_kind, "method": name,
                         "psnr": psnr(pair.sharp, out), "ssim": ssim(pair.sharp, out)})
    return rows


def summarise(rows: list[dict]) -> dict:
    """Mean PSNR/SSIM per method, overall and per blur kind."""
    out: dict = {"methods": {}, "per_kind": {}}
    methods = sorted({r["method"] for r in rows})
    kinds = sorted({r["blur_kind"] for r in rows})
    for m in methods:
        sel = [r for r in rows if r["method"] == m]
        out["methods"][m] = {"psnr": round(float(np.mean([r["psnr"] for r in sel])), 4),
                             "ssim": round(float(np.mean([r["ssim"] for r in sel])), 4),
                             "n": len(sel)}
        for k in kinds:
            selk = [r for r in sel if r["blur_kind"] == k]
            if selk:
                out["per_kind"].setdefault(k, {})[m] = {
                    "psnr": round(float(np.mean([r["psnr"] for r in selk])), 4),
                    "ssim": round(float(np.mean([r["ssim"] for r in selk])), 4),
                    "n": len(selk)}
    return out


def model_method(deblurrer) -> Method:
    return lambda blur, pair: deblurrer(blur)

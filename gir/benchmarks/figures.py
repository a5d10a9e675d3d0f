"""The README's before/after figures, made from a model reference (maintainers' tool).

`python -m gir.benchmarks.figures --model REF --out docs/` writes:
- clock_motion.png: scikit-image's real camera-shake photo, before | after, plus 2x zooms;
- shake_pair.png: a held-out photo (scikit-learn's china.jpg) with synthetic camera shake:
  sharp | shaken | deblurred, with each one's PSNR against the sharp photo.
Nothing here is used by the pipeline; the numbers in the captions are measured when drawn.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gir.data.imageio import encode_png, write_bytes_atomic

LABEL_H = 22


def _labelled(rgb: np.ndarray, text: str) -> Image.Image:
    """The image with a caption band above it."""
    img = Image.fromarray(rgb)
    out = Image.new("RGB", (img.width, img.height + LABEL_H), "white")
    out.paste(img, (0, LABEL_H))
    ImageDraw.Draw(out).text((6, 5), text, fill="black")
    return out


def _row(panels: list[tuple[np.ndarray, str]], gap: int = 6) -> np.ndarray:
    imgs = [_labelled(rgb, text) for rgb, text in panels]
    w = sum(i.width for i in imgs) + gap * (len(imgs) - 1)
    out = Image.new("RGB", (w, max(i.height for i in imgs)), "white")
    x = 0
    for i in imgs:
        out.paste(i, (x, 0))
        x += i.width + gap
    return np.asarray(out)


def _stack(rows: list[np.ndarray], gap: int = 6) -> np.ndarray:
    w = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, gap), (0, w - r.shape[1]), (0, 0)), constant_values=255)
              for r in rows]
    return np.concatenate(padded)[:-gap]


def _zoom(rgb: np.ndarray, box: tuple[int, int, int, int], factor: int = 2) -> np.ndarray:
    y, x, h, w = box
    crop = Image.fromarray(rgb[y:y + h, x:x + w])
    return np.asarray(crop.resize((w * factor, h * factor), Image.NEAREST))


def clock_figure(deblurrer) -> np.ndarray:
    """clock_motion.png (real shake) before | after, and the same 2x zoom of each."""
    import skimage.data

    grey = skimage.data.data_dir
    clock = np.asarray(Image.open(Path(grey) / "clock_motion.png").convert("RGB"))
    fixed = deblurrer(clock)
    box = (clock.shape[0] // 3, clock.shape[1] // 3, clock.shape[0] // 3, clock.shape[1] // 3)
    return _stack([_row([(clock, "clock_motion.png (real camera shake)"),
                         (fixed, "GIR")]),
                   _row([(_zoom(clock, box), "before, 2x"), (_zoom(fixed, box), "after, 2x")])])


def shake_figure(deblurrer, seed: int = 7) -> np.ndarray:
    """A held-out photo with synthetic camera shake: sharp | shaken | deblurred, PSNR each."""
    from sklearn.datasets import load_sample_image

    from gir.data import blur
    from gir.rectifier.scoring import psnr

    sharp = load_sample_image("china.jpg")
    spec = blur.BlurSpec("shake", None, {"extent": 20.0, "focal_mm": 35.0, "seed": seed},
                         degradations={"shot_noise": 0.004, "read_noise": 0.001})
    shaken = blur.degrade(sharp, spec, np.random.default_rng(seed))
    fixed = deblurrer(shaken)
    return _row([(sharp, "sharp (held out)"),
                 (shaken, f"camera shake, {psnr(sharp, shaken):.2f} dB"),
                 (fixed, f"GIR, {psnr(sharp, fixed):.2f} dB")])


def main(argv: list[str] | None = None) -> int:
    from gir.tracking.resolve import resolve_deblurrer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model reference (default: the model chain)")
    ap.add_argument("--out", default="docs")
    args = ap.parse_args(argv)
    deblurrer = resolve_deblurrer(args.model, device="cpu")
    out = Path(args.out)
    write_bytes_atomic(out / "clock_motion.png", encode_png(clock_figure(deblurrer)))
    write_bytes_atomic(out / "shake_pair.png", encode_png(shake_figure(deblurrer)))
    print(f"wrote {out}/clock_motion.png and {out}/shake_pair.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

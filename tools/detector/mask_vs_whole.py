"""Does deblurring only where the blur map says blurred (a soft mask) beat deblurring the whole
photo? PSNR to the sharp photo per benchmark row (docs/detector.md, "Masking").

    .venv/bin/python tools/detector/mask_vs_whole.py [PHOTO_DIR]   # default: its folder
"""
import json
import sys

import numpy as np
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio as psnr

from gir.config import Params
from gir.data import benchmark
from gir.rectifier.detect import detect
from gir.tracking.resolve import resolve_deblurrer, resolve_detector

photo_dir = sys.argv[1] if len(sys.argv) > 1 else None
photos = benchmark.load_photos(photo_dir, 512)
pairs = benchmark.benchmark_pairs(photos, Params().data.synth, per_kind=1)
det, model = resolve_detector(), resolve_deblurrer(None, "cpu")
rows = {}
for p in pairs:
    d = detect(p.blur, det)
    prob = np.nan_to_num(d.blur_prob, nan=0.0)
    h, w = p.blur.shape[:2]
    ys = np.minimum(np.arange(h) // d.tile, prob.shape[0] - 1)
    xs = np.minimum(np.arange(w) // d.tile, prob.shape[1] - 1)
    m = ndimage.gaussian_filter(prob[ys][:, xs], d.tile / 2)[..., None]
    out = model(p.blur).astype(np.float64)
    blend = m * out + (1 - m) * p.blur
    row = p.row["group"] if p.blur_kind == "sharp" else p.row["group"] + "/" + p.row["kind"]
    r = rows.setdefault(row, {"input": [], "deblur_all": [], "masked": [], "decided": []})
    r["input"].append(psnr(p.sharp, p.blur, data_range=255))
    r["deblur_all"].append(psnr(p.sharp.astype(float), out, data_range=255))
    r["masked"].append(psnr(p.sharp.astype(float), blend, data_range=255))
    r["decided"].append(psnr(p.sharp.astype(float), out if d.blurred else p.blur.astype(float), data_range=255))
summary = {k: {m: round(float(np.mean([min(x, 60) for x in v[m]])), 2) for m in v} | {"n": len(v["input"])} for k, v in rows.items()}
print(json.dumps(summary, indent=1))

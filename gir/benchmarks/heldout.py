"""Held-out benchmark: photos no training step saw, blurred afresh with every kind.

The photos ship inside scikit-image, scikit-learn and matplotlib and are kept out of every
training set: the sample source uses other scikit-image photos (checked against
``data.sample.images``), the pretraining corpus is Debian wallpapers. Each photo gets
``per_kind`` fresh blurs of every ``data.synth`` kind, with its degradations, from a fixed seed,
so every model and reference is scored on the same pairs. The models are compared with the
blurred input, unsharp masking, and Wiener / Richardson-Lucy handed the true kernel (the kernel
kinds only: shake has no single kernel).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from gir.config import Params
from gir.data import blur
from gir.data.dataset import Pair
from gir.data.imageio import write_text_atomic
from gir.data.sources.synthetic import cap_size, image_rng
from gir.errors import GirError

# name -> (package, file inside its sample-data folder)
HELDOUT_PHOTOS = {
    "china": ("sklearn", "china.jpg"),
    "flower": ("sklearn", "flower.jpg"),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
    "camera": ("skimage", "camera.png"),
    "moon": ("skimage", "moon.png"),
}
KERNEL_KINDS = ("motion", "defocus", "gaussian")


def _data_dir(package: str) -> Path:
    if package == "sklearn":
        import sklearn

        return Path(sklearn.__file__).parent / "datasets" / "images"
    if package == "matplotlib":
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data"
    import skimage.data

    return Path(skimage.data.data_dir)


def heldout_photo(name: str, max_side: int) -> np.ndarray:
    """One held-out photo as RGB uint8, longest side capped (grey photos get three channels)."""
    package, file = HELDOUT_PHOTOS[name]
    path = _data_dir(package) / file
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise GirError(f"held-out photo {name} ({path}): {exc}") from None
    return cap_size(rgb, max_side)


def heldout_pairs(params: Params, photos: list[str] | None = None, per_kind: int = 2,
                  max_side: int = 512, seed: int = 2026) -> list[Pair]:
    """The benchmark's pairs: every photo x every data.synth kind x per_kind fresh blurs."""
    photos = photos or list(HELDOUT_PHOTOS)
    unknown = [p for p in photos if p not in HELDOUT_PHOTOS]
    if unknown:
        raise GirError(f"held-out: unknown photo {unknown[0]!r} (known: {', '.join(HELDOUT_PHOTOS)})")
    trained_on = set(params.data.sample.images) & set(photos)
    if trained_on:
        raise GirError(f"held-out: {sorted(trained_on)[0]} is in data.sample.images, "
                       f"so the sample pipeline trains on it")
    synth = params.data.synth
    pairs = []
    for name in photos:
        sharp = heldout_photo(name, max_side)
        rng = image_rng(seed, name)
        for kind in synth.kinds:
            for i in range(per_kind):
                spec = blur.synth_blur(kind, rng, synth, severity="full")
                blurred = blur.degrade(sharp, spec, rng)
                pairs.append(Pair(f"{name}-{kind}-{i}", kind, blurred,
                                  blur.sharp_target(sharp, spec),
                                  {"blur_params": blur.params_json(spec)}, kernel=spec.kernel))
    return pairs


def gains(summary: dict, baseline: str = "blurred") -> dict:
    """PSNR gain (dB) of every method over the blurred input: per kind, and the mean over the
    kernel kinds (motion, defocus, gaussian) present."""
    per_kind = summary["per_kind"]
    out: dict = {}
    for method in summary["methods"]:
        row = {k: round(v[method]["psnr"] - v[baseline]["psnr"], 3)
               for k, v in per_kind.items() if method in v and baseline in v}
        kernel = [row[k] for k in KERNEL_KINDS if k in row]
        if kernel:
            row["kernel_kinds"] = round(float(np.mean(kernel)), 3)
        out[method] = row
    return out


def to_markdown(result: dict) -> str:
    """Methods x kinds: PSNR (gain over blurred) and SSIM."""
    per_kind, gain = result["per_kind"], result["gain_db"]
    kinds = list(per_kind)
    lines = ["| method | " + " | ".join(f"{k} PSNR (gain) / SSIM" for k in kinds)
             + " | mean gain, motion/defocus/gaussian |",
             "|---" * (len(kinds) + 2) + "|"]
    for method in result["methods"]:
        cells = []
        for k in kinds:
            m = per_kind[k].get(method)
            cells.append("n/a" if m is None else
                         f"{m['psnr']:.2f} ({gain[method].get(k, 0):+.2f}) / {m['ssim']:.3f}")
        kk = gain[method].get("kernel_kinds")
        lines.append(f"| {method} | " + " | ".join(cells)
                     + f" | {'n/a' if kk is None else f'{kk:+.2f}'} |")
    n = result["pairs"]
    lines.append("")
    lines.append(f"{n} pairs: {len(result['photos'])} held-out photos ({', '.join(result['photos'])})"
                 f" x {len(kinds)} kinds x {result['per_kind_draws']} fresh blurs; "
                 f"longest side {result['max_side']} px, seed {result['seed']}.")
    return "\n".join(lines)


def heldout_bench(params: Params, models: list[str], out_dir: str | Path,
                  references: list[str] | None = None, per_kind: int = 2, max_side: int = 512,
                  seed: int = 2026, device: str = "cpu", ensemble: int = 1) -> dict:
    """Score NAME=REF models (each also self-ensembled when ensemble > 1) and the references
    on the held-out pairs; write heldout.md/json."""
    from gir.benchmarks.models import model_methods
    from gir.rectifier.scoring import REFERENCES, score, summarise

    references = list(REFERENCES) if references is None else references
    unknown = [r for r in references if r not in REFERENCES]
    if unknown:
        raise GirError(f"--references: unknown {unknown[0]!r} (known: {', '.join(REFERENCES)})")
    named = {}
    for spec in models or ["gir"]:  # NAME=REF, or REF named after itself; "gir": the chain
        name, sep, where = spec.partition("=")
        named[name] = where if sep else (None if spec == "gir" else spec)
    methods = model_methods(named, device, ensemble)
    methods.update({r: REFERENCES[r] for r in references})
    pairs = heldout_pairs(params, per_kind=per_kind, max_side=max_side, seed=seed)
    summary = summarise(score(methods, pairs, progress=True))
    result = {"photos": list(HELDOUT_PHOTOS), "pairs": len(pairs), "per_kind_draws": per_kind,
              "max_side": max_side, "seed": seed, "models": models or ["gir"], **summary,
              "gain_db": {}}
    result["gain_db"] = gains(summary)
    result["markdown"] = to_markdown(result)
    out = Path(out_dir)
    write_text_atomic(out / "heldout.json", json.dumps(result, indent=2, sort_keys=True))
    write_text_atomic(out / "heldout.md", result["markdown"] + "\n")
    return result

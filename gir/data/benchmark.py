"""The independent benchmark's photos and pairs: photos no training step, sample or corpus
uses, blurred by the training families and by a held-out family training never draws from.

Photos: `benchmarks/manifest.csv` names openly licensed photos inside Debian packages the
project uses nowhere else (rebuilt byte for byte by ``gir corpus build --manifest
benchmarks/manifest.csv --out data/benchmark``); a committed subset of small crops
(gir/data/benchmark_photos, with its attribution) lets CI and a fresh clone run it offline.

Groups of pairs, each rendered the same way (linear light, shot + read noise, tone curve,
JPEG at 85-95) so that they differ only in the blur:

- ``train/<kind>``: the training synthesis (gir.data.blur.synth_blur, full severity);
- ``heldout/<kind>``: the held-out family (gir.data.heldout_blur), same size ranges;
- ``mild/motion`` and ``mild_heldout/motion``: motion of 1-6 px (training) and 3-7 px tremor;
- ``sharp``: the photo itself, to measure what a deblurrer does to a sharp photo.

API (stable; the detector's benchmark builds on it): ``load_photos``, ``benchmark_pairs``,
``sharp_pairs``, ``GROUPS``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from gir.data import blur, heldout_blur
from gir.data.dataset import Pair
from gir.data.sources.synthetic import cap_size, image_rng
from gir.errors import GirError

BENCH_MANIFEST = Path("benchmarks/manifest.csv")
FULL_PHOTO_DIR = Path("data/benchmark")          # gir corpus build --manifest ... --out here
CI_PHOTO_DIR = Path(__file__).parent / "benchmark_photos"
# Reserved for evaluation outside the project: never trained on, never benchmarked here.
RESERVED_PACKAGES = ("tuxpaint-data", "scribus-template", "puzzle-jigsaw")
GROUPS = ("train", "heldout", "mild", "mild_heldout", "sharp")
SHOT_NOISE, READ_NOISE, JPEG_QUALITY = (0.002, 0.01), (0.0005, 0.002), (85, 95)


def photo_dir_for(photo_dir: str | Path | None) -> Path:
    """The folder to read: the one given, else data/benchmark when built, else the CI subset."""
    if photo_dir:
        return Path(photo_dir)
    return FULL_PHOTO_DIR if (FULL_PHOTO_DIR / "corpus.csv").is_file() else CI_PHOTO_DIR


def _listing(folder: Path) -> list[dict]:
    """The folder's photo list: corpus.csv (a built benchmark) or photos.csv (the subset)."""
    for name in ("corpus.csv", "photos.csv"):
        if (folder / name).is_file():
            with open(folder / name, newline="", encoding="utf-8") as fh:
                return list(csv.DictReader(fh))
    raise GirError(f"benchmark photos: {folder} has no corpus.csv or photos.csv (build it with "
                   f"gir corpus build --manifest {BENCH_MANIFEST} --out {folder})")


def load_photos(photo_dir: str | Path | None = None, max_side: int = 512,
                names: list[str] | None = None) -> dict[str, np.ndarray]:
    """name -> RGB uint8 photo (longest side capped), refusing reserved packages; a listed
    photo that is missing or unreadable is one clear GirError."""
    folder = photo_dir_for(photo_dir)
    rows = _listing(folder)
    known = {r["name"]: r for r in rows}
    unknown = [n for n in (names or []) if n not in known]
    if unknown:
        raise GirError(f"benchmark photos: unknown photo {unknown[0]!r} in {folder} "
                       f"(known: {', '.join(known)})")
    photos = {}
    for name in names or list(known):
        row = known[name]
        if row.get("package") in RESERVED_PACKAGES:
            raise GirError(f"benchmark photos: {name} comes from {row['package']}, which is "
                           f"reserved for evaluation outside the project")
        path = folder / row["path"]
        try:
            with Image.open(path) as im:
                photos[name] = cap_size(np.asarray(im.convert("RGB")), max_side)
        except (OSError, ValueError) as exc:
            raise GirError(f"benchmark photo {name} ({path}): {exc}") from None
    return photos


def camera_degradations(rng: np.random.Generator) -> dict:
    """The benchmark's own sensor recipe, the same for every group."""
    return {"linear_light": True,
            "shot_noise": round(float(rng.uniform(*SHOT_NOISE)), 6),
            "read_noise": round(float(rng.uniform(*READ_NOISE)), 6),
            "jpeg_quality": int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))}


def _group_spec(group: str, kind: str, rng: np.random.Generator, synth) -> blur.BlurSpec:
    if group == "train":
        return blur.synth_blur(kind, rng, synth, severity="full")
    if group == "mild":
        return blur.synth_blur(kind, rng, synth, severity="mild")
    return heldout_blur.heldout_blur(kind, rng, mild=group == "mild_heldout")


def group_kinds(group: str, kinds: list[str]) -> list[str]:
    """The kinds a group renders: every data.synth kind, motion only for the mild groups."""
    if group.startswith("mild"):
        return ["motion"]
    return [] if group == "sharp" else list(kinds)


def benchmark_pairs(photos: dict[str, np.ndarray], synth, per_kind: int = 2, seed: int = 2026,
                    groups: tuple[str, ...] = GROUPS) -> list[Pair]:
    """Every photo x group x kind x per_kind fresh blurs, as Pairs whose blur_kind is
    "<group>/<kind>" (the sharp group: "sharp", one pair per photo, blur == sharp). Each
    pair's row holds group, kind and blur_params (every drawn value)."""
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise GirError(f"benchmark: unknown group {bad[0]!r} (known: {', '.join(GROUPS)})")
    pairs = []
    for name, sharp in photos.items():
        rng = image_rng(seed, name)
        for group in groups:
            if group == "sharp":
                pairs.append(Pair(f"{name}-sharp", "sharp", sharp, sharp,
                                  {"group": "sharp", "kind": "sharp", "photo": name,
                                   "blur_params": "{}"}))
            for kind in group_kinds(group, synth.kinds):
                for i in range(per_kind):
                    spec = _group_spec(group, kind, rng, synth)
                    spec.degradations = camera_degradations(rng)
                    blurred = heldout_blur.render_camera(sharp, spec, spec.degradations, rng)
                    pairs.append(Pair(f"{name}-{group}-{kind}-{i}", f"{group}/{kind}", blurred,
                                      sharp, {"group": group, "kind": kind, "photo": name,
                                              "blur_params": blur.params_json(spec)},
                                      kernel=spec.kernel))
    return pairs


def photo_names(photo_dir: str | Path | None = None) -> tuple[str, ...]:
    """The names of the benchmark's photos (default: the committed subset's, the same names
    as benchmarks/manifest.csv's)."""
    return tuple(r["name"] for r in _listing(Path(photo_dir) if photo_dir else CI_PHOTO_DIR))


def sharp_pairs(pairs: list[Pair]) -> list[Pair]:
    """The identity pairs of a benchmark (scored by PSNR to the input and tone shift)."""
    return [p for p in pairs if p.blur_kind == "sharp"]

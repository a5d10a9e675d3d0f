"""The GoPro deblurring dataset (Nah et al., CVPR 2017) laid out as GOPRO_Large.

``<root>/train|test/<sequence>/{blur,blur_gamma,sharp}/<frame>.png``: real camera-shake blur
averaged from high-speed frames. The official train/test split is kept, each sequence is one
scene, and the files stay where they are: the manifest points at them (relative to the
dataset dir). A frame without its twin still gets a row, so the gate reports it.
"""

from __future__ import annotations

import os
from pathlib import Path

from gir.config import Params
from gir.errors import GirError
from gir.data.imageio import IMAGE_SUFFIXES

ATTRIBUTION = "Nah, Kim, Lee: Deep Multi-scale CNN for Dynamic Scene Deblurring (CVPR 2017)"
LICENSE = "CC BY 4.0"
URL = "https://seungjunnah.github.io/Datasets/gopro"


def _frames(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name: p for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")}


def ingest_gopro(params: Params, out_dir: Path) -> list[dict]:
    """One row per frame name found in the chosen blur folder or in sharp/."""
    cfg = params.data.gopro
    root = Path(cfg.root)
    splits = [s for s in ("train", "test") if (root / s).is_dir()]
    if not splits:
        raise GirError(f"data.gopro.root: {root} has no train/ or test/ folder "
                       "(expected the GOPRO_Large layout)")
    base = Path(out_dir).resolve()
    rows = []
    for split in splits:
        for seq in sorted(p for p in (root / split).iterdir() if p.is_dir()):
            blurs, sharps = _frames(seq / cfg.blur_variant), _frames(seq / "sharp")
            names = sorted(set(blurs) | set(sharps))
            if cfg.max_pairs_per_sequence:
                names = names[: cfg.max_pairs_per_sequence]
            for name in names:
                rows.append({
                    "pair_id": f"{split}-{seq.name}-{Path(name).stem}",
                    "scene": seq.name,
                    "source": "gopro",
                    "blur_path": _rel(blurs.get(name), base),
                    "sharp_path": _rel(sharps.get(name), base),
                    "blur_kind": "real",
                    "attribution": ATTRIBUTION,
                    "license": LICENSE,
                    "source_url": URL,
                    "split": split,
                })
    return rows


def _rel(path: Path | None, base: Path) -> str:
    """The file's path relative to the dataset dir (portable), or '' when there is none."""
    return os.path.relpath(path.resolve(), base) if path else ""

"""The GoPro deblurring dataset (Nah et al., CVPR 2017) laid out as GOPRO_Large.

``<root>/train|test/<sequence>/{blur,blur_gamma,sharp}/<frame>.png``, a local folder or an
``s3://bucket/prefix`` (data.gopro.endpoint_url for MinIO and the like): real camera-shake blur
averaged from high-speed frames. The official train/test split is kept, each sequence is one
scene, and the files stay where they are: the manifest points at them (relative to the
dataset dir). A frame without its twin still gets a row, so the gate reports it.
"""

from __future__ import annotations

import os
from pathlib import Path

from gir.config import Params
from gir.data.imageio import IMAGE_SUFFIXES, is_remote
from gir.errors import GirError

ATTRIBUTION = "Nah, Kim, Lee: Deep Multi-scale CNN for Dynamic Scene Deblurring (CVPR 2017)"
LICENSE = "CC BY 4.0"
URL = "https://seungjunnah.github.io/Datasets/gopro"


def _tree(root: str, endpoint_url: str = "") -> dict[tuple[str, str, str], dict[str, str]]:
    """{(split, sequence, folder): {frame name: path or URL}} of a local or s3:// GoPro root,
    from one listing (gir.data.storage): nothing is read but the names."""
    from gir.data.storage import Location, is_hidden, list_source, use_endpoint

    use_endpoint(endpoint_url or None)
    loc = Location(root)
    tree: dict[tuple[str, str, str], dict[str, str]] = {}
    for f in list_source(loc, root).files:
        parts = f.rel.split("/")
        if len(parts) != 4 or parts[0] not in ("train", "test") or is_hidden(f.rel) \
                or Path(parts[3]).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        where = f"{root.rstrip('/')}/{f.rel}" if loc.remote else str(Path(root) / f.rel)
        tree.setdefault(tuple(parts[:3]), {})[parts[3]] = where
    return tree


def ingest_gopro(params: Params, out_dir: Path) -> list[dict]:
    """One row per frame name found in the chosen blur folder or in sharp/.

    A local root's files are named relative to the dataset dir (portable); an s3:// root's by
    their URLs, which is what the manifest records and training reads.
    """
    cfg = params.data.gopro
    tree = _tree(cfg.root, cfg.endpoint_url) if is_remote(cfg.root) or Path(cfg.root).is_dir() \
        else {}
    splits = sorted({k[0] for k in tree}, key=("train", "test").index)
    if not splits:
        raise GirError(f"data.gopro.root: {cfg.root} has no train/ or test/ folder "
                       "(expected the GOPRO_Large layout)")
    base = Path(out_dir).resolve()
    rows = []
    for split in splits:
        for seq in sorted({k[1] for k in tree if k[0] == split}):
            blurs = tree.get((split, seq, cfg.blur_variant), {})
            sharps = tree.get((split, seq, "sharp"), {})
            names = sorted(set(blurs) | set(sharps))
            if cfg.max_pairs_per_sequence:
                names = names[: cfg.max_pairs_per_sequence]
            for name in names:
                rows.append({
                    "pair_id": f"{split}-{seq}-{Path(name).stem}",
                    "scene": seq,
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


def _rel(path: str | None, base: Path) -> str:
    """A local file relative to the dataset dir (portable), a URL as it is, '' for none."""
    if not path:
        return ""
    return path if is_remote(path) else os.path.relpath(Path(path).resolve(), base)

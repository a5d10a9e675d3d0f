"""Turning one sharp photo into several blurred/sharp pairs with recorded kernels."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from gir.data import blur
from gir.config import Params, SynthConfig
from gir.errors import GirError
from gir.data.facts import image_facts
from gir.data.imageio import atomic_path, decode_image, encode_png, write_bytes_atomic
from gir.data.manifest import MANIFEST_NAME, read_manifest, resolve, sha256_bytes


def image_rng(seed: int, name: str) -> np.random.Generator:
    """A generator that depends only on the seed and the photo's name (stable as sets grow)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def cap_size(arr: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (antialiased, aspect kept) so the longest side is at most max_side."""
    h, w = arr.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return arr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS))


def synthesize_pairs(
    sharp: np.ndarray,
    name: str,
    scene: str,
    source: str,
    out_dir: Path,
    synth: SynthConfig,
    seed: int,
    extra: dict | None = None,
) -> list[dict]:
    """Write sharp/<name>.png once and per_image blurred versions; return their manifest rows.

    Kinds cycle through synth.kinds so every photo contributes every kind; each pair's
    severity (full or mild) is drawn from synth.shares and kept in blur_params with every other
    drawn value. Identity pairs are left to training's fresh blurs (train.resynth), so stored
    splits stay scoreable (a pair equal to its target has infinite PSNR). A pair whose blur
    boosts highlights gets its own sharp/<pair_id>.png, the photo with them clipped at full scale
    (blur.sharp_target), so both sides of the pair show the same light.
    """
    rng = image_rng(seed, name)
    sharp_png = encode_png(sharp)
    sharp_rel = f"sharp/{name}.png"
    write_bytes_atomic(out_dir / sharp_rel, sharp_png)
    targets = {sha256_bytes(sharp_png): sharp_rel}  # one file per distinct target
    h, w = sharp.shape[:2]
    rows = []
    for i in range(synth.per_image):
        kind = synth.kinds[i % len(synth.kinds)]
        spec = blur.synth_blur(kind, rng, synth, allow_sharp=False)
        blurred = blur.degrade(sharp, spec, rng)
        pair_id = f"{name}-{i:02d}"
        target = blur.sharp_target(sharp, spec)
        target_png = sharp_png if target is sharp else encode_png(target)
        target_sha = sha256_bytes(target_png)
        if target_sha not in targets:  # highlights boosted: this pair's own target
            targets[target_sha] = f"sharp/{pair_id}.png"
            write_bytes_atomic(out_dir / targets[target_sha], target_png)
        target_rel = targets[target_sha]
        blur_png = encode_png(blurred)
        write_bytes_atomic(out_dir / f"blur/{pair_id}.png", blur_png)
        kernel_rel = ""  # shake varies across the frame: no single kernel to keep
        if spec.kernel is not None:
            kernel_rel = f"kernels/{pair_id}.npy"
            with atomic_path(out_dir / kernel_rel) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, spec.kernel)
        rows.append({
            "pair_id": pair_id,
            "scene": scene,
            "source": source,
            "blur_path": f"blur/{pair_id}.png",
            "sharp_path": target_rel,
            "blur_sha256": sha256_bytes(blur_png),
            "sharp_sha256": target_sha,
            "width": w,
            "height": h,
            "mode": "RGB",
            "bit_depth": 8,
            "format": "PNG",
            "blur_kind": kind,
            "blur_params": blur.params_json(spec),
            "noise_sigma": round(spec.noise_sigma, 5),
            "kernel_path": kernel_rel,
            **(extra or {}),
        })
    return rows


# --------------------------------------------------------------------------- user photos


def recipe(params: Params, max_side: int) -> str:
    """Hash of every setting that shapes a synthetic pair: change one and pairs are remade."""
    payload = json.dumps([params.seed, max_side, vars(params.data.synth), blur.SYNTH_VERSION],
                         sort_keys=True)
    return sha256_bytes(payload.encode())[:12]


def safe_name(rel: str) -> str:
    """A photo's path inside its folder as a flat, unique file name ('a/b.jpg' -> 'a_b_jpg')."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", rel).strip("_")


def previous_rows(out_dir: Path) -> dict[tuple[str, str, str], list[dict]]:
    """Rows of the last ingest into out_dir, by (origin_path, origin_sha256, recipe)."""
    if not (out_dir / MANIFEST_NAME).exists():
        return {}
    df = read_manifest(out_dir)
    if "origin_sha256" not in df.columns:
        return {}
    found: dict[tuple[str, str, str], list[dict]] = {}
    for row in df.to_dict("records"):
        if row["origin_sha256"]:
            found.setdefault((row["origin_path"], row["origin_sha256"], row["recipe"]),
                             []).append(row)
    return found


def _outputs_exist(rows: list[dict], out_dir: Path) -> bool:
    paths = [r[k] for r in rows for k in ("blur_path", "sharp_path", "kernel_path") if r[k]]
    return all(Path(resolve(out_dir, p)).exists() for p in paths)


def pairs_from_photo(
    data: bytes, origin: str, name: str, scene: str, source: str, out_dir: Path,
    params: Params, max_side: int, previous: dict, extra: dict | None = None,
    label: str = "",
) -> list[dict]:
    """Pairs for one user photo (bytes already read): reused if unchanged, else synthesised.

    A photo that cannot be used becomes one row with its facts and no blurred twin, so the
    quality gate reports it with the reason instead of it vanishing. `label` names the photo
    in messages (default: origin, which is relative to out_dir for local files).
    """
    sha, how = sha256_bytes(data), recipe(params, max_side)
    old = previous.get((origin, sha, how))
    if old and _outputs_exist(old, out_dir):
        return old
    common = {"scene": scene, "source": source, "origin_path": origin, "origin_sha256": sha,
              "recipe": how, **(extra or {})}
    try:
        rgb, info = decode_image(data, label or origin, params.data.max_pixels)
    except GirError:
        facts = image_facts(data, label or origin, params.data.max_pixels)
        return [{**common, "pair_id": name, "blur_path": "", "sharp_path": origin,
                 "sharp_sha256": sha, **{f"sharp_{k}": v for k, v in facts.items()
                                         if k != "sha256"},
                 "blur_decodable": False, "blur_error": ""}]
    found = {"mode": info.mode, "bit_depth": info.bit_depth, "format": info.format,
             "notes": "; ".join(info.notes)}
    return synthesize_pairs(cap_size(rgb, max_side), name, scene, source, out_dir,
                            params.data.synth, params.seed, extra={**common, **found})

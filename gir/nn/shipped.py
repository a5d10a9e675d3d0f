"""The pretrained deblurrer shipped inside the package (package data, with its model card).

``gir/nn/shipped/`` holds generator.json + generator.pt (the EMA weights), generator.onnx (the
same weights as an ONNX graph: what CPU inference runs), MODEL_CARD.md and SHA256SUMS. It is the
last link of the default model chain (after the registry champion) and what
``train.init: pretrained`` warm-starts from. Its bytes are checked against SHA256SUMS
before use, so an altered or truncated file is refused with one line, never loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gir.errors import GirError

SHIPPED_DIR = Path(__file__).with_name("shipped")
SUMS_FILE = "SHA256SUMS"
CARD_FILE = "MODEL_CARD.md"
WEIGHTS, SPEC = "generator.pt", "generator.json"
ONNX = "generator.onnx"   # gir.rectifier.onnx_runtime.ONNX_FILE


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_model_dir(root: Path | None = None) -> Path | None:
    """The shipped model's folder, checked against SHA256SUMS; None if this install has none."""
    root = root or SHIPPED_DIR
    if not (root / WEIGHTS).is_file():
        return None
    try:
        sums = dict(line.split()[::-1] for line in (root / SUMS_FILE).read_text().splitlines()
                    if line.strip())
    except (OSError, ValueError):
        raise GirError(f"shipped model {root}: {SUMS_FILE} missing or unreadable") from None
    # The ONNX graph of the same weights (gir ship exports it) is optional, but checked too.
    onnx = (ONNX,) if ONNX in sums or (root / ONNX).exists() else ()
    for name in (WEIGHTS, SPEC, *onnx):
        if name not in sums:
            raise GirError(f"shipped model {root}: {SUMS_FILE} does not list {name}")
        if not (root / name).is_file() or file_sha256(root / name) != sums[name]:
            raise GirError(f"shipped model {root}: {name} does not match its sha256 "
                           f"(altered or truncated); reinstall gir")
    return root



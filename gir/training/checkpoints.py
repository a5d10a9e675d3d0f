"""Checkpoints that a rerun resumes: what must match (the fingerprint), atomic save, load.

A checkpoint records a fingerprint of the params, the data version and the code. Running the
same stage again (``dvc repro``, a KFP retry) resumes from it when the fingerprint matches and
starts afresh otherwise; either way it says which in one line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch

from gir.config import Params, to_dict
from gir.data.imageio import atomic_path
from gir.errors import GirError

CHECKPOINT = "checkpoint.pt"
# The code a checkpoint depends on: a change here makes an old checkpoint stale.
CODE_PATHS = ("nn", "data/dataset.py", "data/blur.py", "training/trainer.py",
              "training/distributed.py", "training/loop.py", "steps/train.py",
              "rectifier/inference.py", "config/schema.py")
STALE_WHY = {"params": "different params", "data": "another data version", "code": "other code"}


def code_version() -> str:
    """A short hash of the source files that decide what training computes."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for rel in CODE_PATHS:
        path = root / rel
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def fingerprint(params: Params, data_ver: str) -> dict:
    """What must match for a checkpoint to be resumed: params, data version and code."""
    from gir.tracking.runs import params_hash

    return {"params": params_hash(params), "data": data_ver, "code": code_version()}


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint whole."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, params: Params, fp: dict, resume: bool | None,
                    say: Callable[[str], None] = print) -> dict | None:
    """The checkpoint to resume, or None to start afresh (saying which, in one line).

    resume None (the default): resume when the fingerprint matches, else start afresh;
    True: a mismatch is an error; False: always start afresh.
    """
    if resume is False or not path.exists():
        if resume is not False:
            say("train: starting afresh (no checkpoint)")
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a truncated file from an old non-atomic writer
        if resume:
            raise GirError(f"{path}: unreadable checkpoint ({type(exc).__name__})") from None
        say(f"train: starting afresh ({path} is unreadable)")
        return None
    stale = stale_parts(ckpt, params, fp)
    if stale:
        reason = ", ".join(STALE_WHY[k] for k in stale)
        if resume:
            raise GirError(f"{path}: checkpoint was made with {reason}; "
                           "remove it or train without --resume")
        say(f"train: starting afresh (the checkpoint at step {ckpt.get('step')} was made with "
            f"{reason})")
        return None
    say(f"train: resuming from step {ckpt['step']} of {path} (same params {fp['params']}, "
        f"data {fp['data']}, code {fp['code']}), MLflow run {ckpt['run_id']}")
    return ckpt


def stale_parts(ckpt: dict, params: Params, fp: dict) -> list[str]:
    """Which of params, data and code differ between a checkpoint and this run."""
    have = ckpt.get("fingerprint") or {}
    stale = [k for k in ("params", "data", "code") if have.get(k) != fp[k]]
    if ckpt.get("params") != to_dict(params) and "params" not in stale:
        stale.insert(0, "params")
    return stale

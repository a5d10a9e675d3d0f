"""Step 5, train: the conditional GAN (generator + PatchGAN, content + adversarial losses).

Random aligned crops with flips/rotations, decoded lazily by the loader's workers; the model,
optimisers, schedule and EMA (gir.training.trainer); atomic checkpoints every
``train.checkpoint_every`` steps that a rerun resumes, bit-for-bit on CPU
(gir.training.checkpoints); torchrun for several processes (gir.training.distributed); the loop
(gir.training.loop) reports to a tracker (gir.training.trackers): MLflow by default, nothing,
or a JSON record. The run id is written next to the model for evaluate and register.

Crash-safe: running the same stage again (``dvc repro``, a KFP retry) resumes a checkpoint
whose params, data version and code match, in the same MLflow run, and starts afresh
otherwise. SIGTERM and Ctrl-C write a last checkpoint and end the run as KILLED; MLflow runs
whose process died without a word are marked KILLED when the next training starts.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gir.config import Params
from gir.data.dataset import CropDataset, load_split
from gir.data.manifest import data_version, read_manifest
from gir.rectifier.inference import save_generator
from gir.training.checkpoints import (  # noqa: F401
    CHECKPOINT,
    code_version,
    fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from gir.training.distributed import Dist, check_batch_splits, distributed, rank_loader
from gir.training.loop import Interrupted, Loop, StopRequest, validate_model, write_log  # noqa: F401
from gir.training.trackers import MlflowTracker, RecordTracker, Tracker  # noqa: F401
from gir.training.trainer import EMA, Trainer, lr_lambda, seed_everything, warm_start  # noqa: F401

if TYPE_CHECKING:   # the tracking modules load when a run starts
    from gir.tracking.runs import RunMeta

log = logging.getLogger("gir")


@dataclass
class TrainResult:
    run_id: str
    steps: int
    val_psnr: float


def train(
    params: Params,
    data_dir: str | Path,
    split_manifest: str | Path,
    model_dir: str | Path,
    report_dir: str | Path,
    checkpoint_dir: str | Path = "checkpoints",
    engine: str = "cli",
    resume: bool | None = None,
    stop_after: int = 0,
    tracker: Tracker | None = None,
    meta: RunMeta | None = None,
) -> TrainResult:
    """Train, checkpoint, report to the tracker; write the EMA generator to model_dir.

    resume: None resumes a matching checkpoint (else starts afresh), True insists on
    resuming, False starts afresh. stop_after > 0 ends the loop early after that many steps
    (tests use it to simulate a killed run without signals). tracker: where the run's record
    goes (default: MLflow, params.mlflow). meta: who launched the run (KFP run, sweep), for
    its tags (default: what a launching process left in the environment).
    """
    check_batch_splits(params.train.batch_size)
    with distributed(params.train.device) as (dist, device), torch.enable_grad():
        # enable_grad: robust to callers that switched autograd off globally
        if not dist.main:
            tracker = Tracker()
        elif tracker is None:
            tracker = MlflowTracker(params.mlflow, _say)
        return _train(params, dist, device, tracker, Path(data_dir), Path(split_manifest),
                      Path(model_dir), Path(report_dir), Path(checkpoint_dir), engine, resume,
                      stop_after, meta)


def _train(params, dist: Dist, device, tracker: Tracker, data_dir, split_manifest, model_dir,
           report_dir, checkpoint_dir, engine, resume, stop_after, meta=None) -> TrainResult:
    from gir.tracking.runs import process_tags, run_name, run_tags, write_run_file
    from gir.tracking.warmstart import resolve_init

    t = params.train
    seed_everything(params.seed)
    train_pairs = load_split(data_dir, split_manifest, "train", cache_mb=t.cache_mb)
    val_pairs = load_split(data_dir, split_manifest, "val", max_images=4) if dist.main else []
    dataset = CropDataset(train_pairs, t.crop, t.steps * t.batch_size, params.seed,
                          t.resynth, params.data.synth, t.resynth_weights)
    data_ver = data_version(read_manifest(split_manifest))
    fp = fingerprint(params, data_ver)
    ckpt_path = checkpoint_dir / CHECKPOINT
    say = _say if dist.main else (lambda msg: None)
    ckpt = load_checkpoint(ckpt_path, params, fp, resume, say)
    init = None if ckpt else resolve_init(t.init)   # a resumed run has its weights already
    trainer = Trainer(params, device, dist, init)
    if ckpt:
        trainer.load_state(ckpt)
    start = trainer.step
    loader = rank_loader(dataset, start, params, dist, device)
    # The curve so far travels in the checkpoint: dvc repro deletes log.csv before a rerun.
    loop = Loop(trainer, tracker, val_pairs, report_dir, ckpt_path, fp,
                [r for r in ckpt.get("log_rows", []) if r["step"] <= start] if ckpt else [],
                list(ckpt.get("window", [])) if ckpt else [], stop_after)
    with tracker.run(ckpt["run_id"] if ckpt else None, run_name(params, engine)) as run_id, \
            StopRequest() as stop:
        if dist.main and not ckpt:
            tags = {**run_tags(engine, data_ver, "train", meta), "train_pairs": len(train_pairs),
                    "world_size": dist.world, "gir.fingerprint": json.dumps(fp, sort_keys=True),
                    "gir.params_hash": fp["params"]}
            if init:
                tags.update({"init_source": init["source"], "init_sha256": init["sha256"]})
            tracker.describe(params, tags, split_manifest)
        if dist.main:
            tracker.set_tags({**process_tags(),
                              **({"gir.resumed_from_step": str(start)} if ckpt else {})})
            if run_id:
                write_run_file(model_dir, run_id, tracker.experiment_id)
        loop.run(loader, stop)
        if dist.main:
            _finish(loop, tracker, params, model_dir, report_dir)
    return TrainResult(run_id, trainer.step, loop.val_psnr)


def _finish(loop: Loop, tracker: Tracker, params: Params, model_dir: Path,
            report_dir: Path) -> None:
    """The curve, and once every step is done the EMA generator and the run's artifacts."""
    log_path = report_dir / "log.csv"
    write_log(log_path, loop.log_rows)
    if loop.trainer.step >= params.train.steps:
        m = params.model
        save_generator(model_dir, loop.trainer.ema.model, m.generator, m.generator_args)
        tracker.log_artifact(log_path, "train")
        if (report_dir / "samples.png").exists():
            tracker.log_artifact(report_dir / "samples.png", "train")
        tracker.log_metrics({"train_steps": loop.trainer.step}, 0)


def _say(msg: str) -> None:
    log.info(msg)

"""Step 5, train: the conditional GAN (generator + PatchGAN, content + adversarial losses).

Random aligned crops with flips/rotations; AdamW with warmup + cosine decay; gradient
clipping; an EMA of the generator's weights (what is evaluated and registered); bf16 autocast
on CUDA; atomic checkpoints every ``train.checkpoint_every`` steps that ``--resume`` continues
from, bit-for-bit on CPU. Losses, learning rate, throughput and before/after figures go to
MLflow; the run id is written next to the model for evaluate and register.

Crash-safe: a checkpoint records a fingerprint of the params, the data version and the code.
Running the same stage again (``dvc repro``, a KFP retry) resumes from it when the fingerprint
matches, in the same MLflow run, and starts afresh otherwise; either way it says which in one
line. SIGTERM and Ctrl-C write a last checkpoint and end the MLflow run as KILLED; runs whose
process died without a word are marked KILLED when the next training starts.

Multi-GPU / multi-node: launch the same command under ``torchrun`` (gloo on CPU, nccl on CUDA).
``train.batch_size`` is the global batch; each rank takes its slice of every global batch, so a
2-process run sees exactly the crops of a 1-process one. Rank 0 alone logs, validates,
checkpoints and writes the model.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from gir.nn import losses
from gir.config import Params, to_dict
from gir.data.dataset import CropDataset, load_split, to_tensor, to_uint8
from gir.errors import GirError
from gir.data.imageio import atomic_path, encode_png, write_bytes_atomic, write_text_atomic
from gir.rectifier.inference import resolve_device, save_generator
from gir.data.manifest import data_version, read_manifest
from gir.nn import build_discriminator, build_generator

CHECKPOINT = "checkpoint.pt"
LOG_FIELDS = ["step", "loss_g", "loss_content", "loss_fft", "loss_adv", "loss_d", "lr",
              "images_per_s"]


@dataclass
class Dist:
    """Where this process sits in a torchrun job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    """Join the torchrun process group if WORLD_SIZE > 1; pick this rank's device."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return Dist(), device
    dist = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist, device


class Interrupted(GirError):
    """SIGTERM / Ctrl-C: a last checkpoint was written, the MLflow run ended as KILLED."""

    def __init__(self, signum: int, step: int, ckpt: Path):
        import signal

        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; "
                         f"checkpoint {ckpt} (run the stage again to resume)")
        self.exit_code = 128 + signum


class StopRequest:
    """Turns SIGTERM / SIGINT into a flag the loop checks between steps (state stays whole)."""

    def __init__(self):
        self.signum = 0
        self._old: dict = {}

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)


# The code a checkpoint depends on: a change here makes an old checkpoint stale.
CODE_PATHS = ("nn", "data/dataset.py", "data/blur.py", "steps/train.py",
              "rectifier/inference.py", "config/schema.py")


def code_version() -> str:
    """A short hash of the source files that decide what training computes."""
    import hashlib

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


@dataclass
class TrainResult:
    run_id: str
    steps: int
    val_psnr: float


class EMA:
    """Exponential moving average of a model's weights, with a warm-up so early steps count."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(p.detach(), alpha=1 - d)
            else:
                e.copy_(p)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_lambda(steps: int, warmup: int):
    """Linear warm-up then cosine decay to 1% of the peak."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return f


def sample_grid(blurred: np.ndarray, restored: np.ndarray, sharp: np.ndarray,
                size: int = 256) -> np.ndarray:
    """blurred | restored | sharp side by side, centre-cropped to size for legibility."""
    h, w = blurred.shape[:2]
    s = min(size, h, w)
    y, x = (h - s) // 2, (w - s) // 2
    crops = [a[y: y + s, x: x + s] for a in (blurred, restored, sharp)]
    gap = np.full((s, 4, 3), 255, np.uint8)
    return np.concatenate([crops[0], gap, crops[1], gap, crops[2]], axis=1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(a, b, data_range=255))


class Trainer:
    """Holds models, optimisers and state for one training run."""

    def __init__(self, params: Params, device: torch.device, dist: Dist | None = None,
                 init: dict | None = None):
        self.params, self.device = params, device
        self.dist = dist or Dist()
        t, m = params.train, params.model
        self.g = build_generator(m.generator, m.generator_args)
        if init is not None:
            warm_start(self.g, init, m)
        self.g = self.g.to(device)
        self.adv_kind = t.loss.adversarial
        self.use_gan = self.adv_kind != "none" and t.loss.adversarial_weight > 0
        self.d = build_discriminator(m.discriminator, m.discriminator_args).to(device) \
            if self.use_gan else None
        if t.channels_last:
            self.g = self.g.to(memory_format=torch.channels_last)
        self.ema = EMA(self.g, t.ema_decay)
        self.opt_g = torch.optim.AdamW(self.g.parameters(), lr=t.lr, betas=(0.9, 0.99),
                                       weight_decay=t.weight_decay)
        warmup = max(1, min(100, t.steps // 10))
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lr_lambda(t.steps, warmup))
        self.opt_d = torch.optim.AdamW(self.d.parameters(), lr=t.lr_d, betas=(0.5, 0.999)) \
            if self.d is not None else None
        self.adv = losses.Adversarial(self.adv_kind, t.loss.gp_weight) if self.use_gan else None
        self.content = losses.CONTENT_LOSSES[t.loss.content]
        self.perceptual = (losses.PerceptualLoss(t.loss.perceptual_weights_file).to(device)
                           if t.loss.perceptual_weight > 0 else None)
        net = self.g
        if self.dist.world > 1:
            # DDP for the generator; the discriminator's gradients are averaged by hand after
            # its backward (its loss calls it several times and, for WGAN-GP, differentiates
            # through its gradient, which DDP's reducer does not support).
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(
                self.g, device_ids=[device.index] if device.type == "cuda" else None)
        self.forward = torch.compile(net) if t.compile else net
        self.amp = t.amp and device.type == "cuda"
        self.step = 0

    def state(self, run_id: str, fp: dict | None = None, log_rows: list | None = None) -> dict:
        return {
            "step": self.step, "run_id": run_id, "fingerprint": fp, "log_rows": log_rows or [],
            "g": self.g.state_dict(),
            "ema": self.ema.model.state_dict(), "ema_updates": self.ema.updates,
            "opt_g": self.opt_g.state_dict(), "sched_g": self.sched_g.state_dict(),
            "d": self.d.state_dict() if self.d else None,
            "opt_d": self.opt_d.state_dict() if self.opt_d else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "params": to_dict(self.params),
        }

    def load_state(self, ckpt: dict) -> None:
        self.g.load_state_dict(ckpt["g"])
        self.ema.model.load_state_dict(ckpt["ema"])
        self.ema.updates = ckpt["ema_updates"]
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.sched_g.load_state_dict(ckpt["sched_g"])
        if self.d is not None:
            self.d.load_state_dict(ckpt["d"])
            self.opt_d.load_state_dict(ckpt["opt_d"])
        torch.set_rng_state(ckpt["torch_rng"])
        if ckpt.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        self.step = ckpt["step"]

    def train_step(self, blurred: torch.Tensor, sharp: torch.Tensor) -> dict[str, float]:
        """One generator update (and one discriminator update once the GAN is on)."""
        t = self.params.train
        self.step += 1
        gan_on = self.use_gan and self.step > t.adversarial_start
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            fake = self.forward(blurred)
            l_content = self.content(fake.float(), sharp)
            l_fft = losses.fft_loss(fake, sharp) if t.loss.fft_weight > 0 else torch.zeros(())
            loss = t.loss.content_weight * l_content + t.loss.fft_weight * l_fft
            if self.perceptual is not None:
                loss = loss + t.loss.perceptual_weight * self.perceptual(fake.float(), sharp)
            l_adv = torch.zeros(())
            if gan_on:
                self.d.requires_grad_(False)
                l_adv = self.adv.generator(self.d(blurred, fake))
                loss = loss + t.loss.adversarial_weight * l_adv
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        loss = loss.detach()
        l_adv, l_content, l_fft = l_adv.detach(), l_content.detach(), l_fft.detach()
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.g.parameters(), t.grad_clip)
        self.opt_g.step()
        self.sched_g.step()
        self.ema.update(self.g)
        l_d = torch.zeros(())
        if gan_on:
            self.d.requires_grad_(True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                l_d = self.adv.discriminator(self.d, blurred, sharp, fake.detach())
            self.opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            l_d = l_d.detach()
            self._average_grads(self.d)
            self.opt_d.step()
        values = torch.stack([v.float().to(loss.device) for v in (loss, l_content, l_fft, l_adv, l_d)])
        if self.dist.world > 1:  # report the global batch's losses, as one process would
            torch.distributed.all_reduce(values)
            values /= self.dist.world
        out = dict(zip(("loss_g", "loss_content", "loss_fft", "loss_adv", "loss_d"),
                       values.tolist()))
        return {**out, "lr": self.opt_g.param_groups[0]["lr"]}

    def _average_grads(self, model: torch.nn.Module) -> None:
        if self.dist.world > 1:
            for p in model.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= self.dist.world


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path, params: Params, fp: dict, resume: bool | None,
                     say=print) -> dict | None:
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
    have = ckpt.get("fingerprint") or {}
    stale = [k for k in ("params", "data", "code") if have.get(k) != fp[k]]
    if ckpt.get("params") != to_dict(params) and "params" not in stale:
        stale.insert(0, "params")
    if stale:
        what = {"params": "different params", "data": "another data version",
                "code": "other code"}
        reason = ", ".join(what[k] for k in stale)
        if resume:
            raise GirError(f"{path}: checkpoint was made with {reason}; "
                           "remove it or train without --resume")
        say(f"train: starting afresh (the checkpoint at step {ckpt.get('step')} was made with "
            f"{reason})")
        return None
    say(f"train: resuming from step {ckpt['step']} of {path} (same params {fp['params']}, "
        f"data {fp['data']}, code {fp['code']}), MLflow run {ckpt['run_id']}")
    return ckpt


@torch.inference_mode()
def validate_model(model: torch.nn.Module, pairs, device) -> tuple[float, np.ndarray | None]:
    """Mean PSNR of model on whole validation images, and a figure of the first one."""
    if not pairs:
        return float("nan"), None
    scores, grid = [], None
    for p in pairs:
        out = to_uint8(model(to_tensor(p.blur).unsqueeze(0).to(device))[0])
        scores.append(psnr(p.sharp, out))
        if grid is None:
            grid = sample_grid(p.blur, out, p.sharp)
    return float(np.mean(scores)), grid


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
) -> TrainResult:
    """Train, checkpoint, log to MLflow; write the EMA generator to model_dir.

    resume: None resumes a matching checkpoint (else starts afresh), True insists on
    resuming, False starts afresh. stop_after > 0 ends the loop early after that many steps
    (tests use it to simulate a killed run without signals).
    """
    t = params.train
    model_dir, report_dir, checkpoint_dir = Path(model_dir), Path(report_dir), Path(checkpoint_dir)
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if t.batch_size % world:
        raise GirError(f"train.batch_size: {t.batch_size} (the global batch) does not split "
                       f"over {world} processes")
    dist, device = setup_distributed(t.device)
    try:
        with torch.enable_grad():  # robust to callers that switched autograd off globally
            return _train(params, dist, device, data_dir, split_manifest, model_dir,
                          report_dir, checkpoint_dir, engine, resume, stop_after)
    finally:
        if dist.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _rank_loader(dataset, start: int, params: Params, dist: Dist, device) -> DataLoader:
    """This rank's slice of every global batch from step `start` on, prefetched by workers."""
    t = params.train
    per_rank = t.batch_size // dist.world
    indices = [s * t.batch_size + dist.rank * per_rank + i
               for s in range(start, t.steps) for i in range(per_rank)]
    return DataLoader(
        Subset(dataset, indices), batch_size=per_rank, shuffle=False,
        num_workers=t.num_workers, pin_memory=device.type == "cuda",
        prefetch_factor=4 if t.num_workers else None, persistent_workers=t.num_workers > 0,
    )


def _train(params, dist, device, data_dir, split_manifest, model_dir, report_dir,
           checkpoint_dir, engine, resume, stop_after) -> TrainResult:
    import contextlib

    from tqdm import tqdm

    from gir.tracking.resolve import resolve_init
    from gir.tracking.runs import (end_dead_runs, log_dataset, log_params, process_tags,
                                   run_name, run_tags, setup, write_run_file)

    t = params.train
    seed_everything(params.seed)
    train_pairs = load_split(data_dir, split_manifest, "train")
    val_pairs = load_split(data_dir, split_manifest, "val", max_images=4) if dist.main else []
    dataset = CropDataset(train_pairs, t.crop, t.steps * t.batch_size, params.seed,
                          t.resynth, params.data.synth, t.resynth_weights)
    data_ver = data_version(read_manifest(split_manifest))
    fp = fingerprint(params, data_ver)
    ckpt_path = checkpoint_dir / CHECKPOINT
    say = _say if dist.main else (lambda msg: None)
    ckpt = _load_checkpoint(ckpt_path, params, fp, resume, say)
    init = None if ckpt else resolve_init(t.init)   # a resumed run has its weights already
    trainer = Trainer(params, device, dist, init)
    if ckpt:
        trainer.load_state(ckpt)
    start = trainer.step
    loader = _rank_loader(dataset, start, params, dist, device)
    mlflow = setup(params.mlflow) if dist.main else None
    log_path = report_dir / "log.csv"
    # The curve so far travels in the checkpoint: dvc repro deletes log.csv before a rerun.
    log_rows: list[dict] = [r for r in ckpt.get("log_rows", []) if r["step"] <= start] \
        if ckpt else []
    val_psnr = float("nan")
    run_id = ckpt["run_id"] if ckpt else None
    if dist.main:
        exp_id = mlflow.get_experiment_by_name(params.mlflow.experiment).experiment_id
        for dead in end_dead_runs(mlflow, exp_id, "train", keep=run_id):
            say(f"train: MLflow run {dead} was left RUNNING by a dead process: marked KILLED")
        if run_id:
            try:
                mlflow.get_run(run_id)
            except Exception:  # noqa: BLE001 - the store was reset: continue in a new run
                run_id = None
    run_ctx = (mlflow.start_run(run_id=run_id,
                                run_name=None if run_id else run_name(params, engine))
               if dist.main else contextlib.nullcontext(None))
    stop = StopRequest()
    with run_ctx as run, stop:
        run_id = run.info.run_id if run else ""
        if dist.main and not ckpt:
            log_params(mlflow, params)
            mlflow.set_tags(run_tags(engine, data_ver, "train"))
            mlflow.set_tags({"train_pairs": len(train_pairs), "world_size": dist.world,
                             "gir.fingerprint": json.dumps(fp, sort_keys=True),
                             "gir.params_hash": fp["params"]})
            log_dataset(mlflow, split_manifest, "train", "training")
            if init:
                mlflow.set_tags({"init_source": init["source"], "init_sha256": init["sha256"]})
        if dist.main:
            mlflow.set_tags(process_tags())
            if ckpt:
                mlflow.set_tag("gir.resumed_from_step", str(start))
            write_run_file(model_dir, run_id, run.info.experiment_id)
        bar = tqdm(total=t.steps, initial=start, desc="train", unit="step", mininterval=2,
                   dynamic_ncols=True, disable=not dist.main)
        window: list[dict] = list(ckpt.get("window", [])) if ckpt else []
        tick = time.perf_counter()
        for blurred, sharp in loader:
            blurred = blurred.to(device, non_blocking=True)
            sharp = sharp.to(device, non_blocking=True)
            if t.channels_last:
                blurred = blurred.contiguous(memory_format=torch.channels_last)
            window.append(trainer.train_step(blurred, sharp))
            bar.update(1)
            step = trainer.step
            if dist.main and (step % t.log_every == 0 or step == t.steps):
                elapsed = time.perf_counter() - tick
                row = {"step": step, **{k: float(np.mean([w[k] for w in window]))
                                        for k in window[0]},
                       "images_per_s": len(window) * t.batch_size / max(elapsed, 1e-9)}
                if device.type == "cuda":
                    row["cuda_peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
                log_rows.append(row)
                mlflow.log_metrics({k: v for k, v in row.items() if k != "step"}, step=step)
                bar.set_postfix(loss=f"{row['loss_g']:.4f}")
                window, tick = [], time.perf_counter()
            if dist.main and (step % t.image_every == 0 or step == t.steps):
                val_psnr, grid = validate_model(trainer.ema.model, val_pairs, device)
                if not math.isnan(val_psnr):
                    mlflow.log_metric("val_psnr", val_psnr, step=step)
                if grid is not None:
                    mlflow.log_image(grid, key="val_before_after", step=step)
                    write_bytes_atomic(report_dir / "samples.png", encode_png(grid))
            stopping = bool(stop.signum) or bool(stop_after and step - start >= stop_after)
            if dist.main and (step % t.checkpoint_every == 0 or step == t.steps or stopping):
                _save_checkpoint(ckpt_path, {**trainer.state(run_id, fp, log_rows),
                                             "window": window})
                _write_log(log_path, log_rows)  # a killed run keeps its curve up to here
                mlflow.set_tag("gir.heartbeat", str(int(time.time())))
            if stopping:
                break
        bar.close()
        if stop.signum and trainer.step < t.steps:
            if dist.main:
                _write_log(log_path, log_rows)
                mlflow.end_run("KILLED")
            raise Interrupted(stop.signum, trainer.step, ckpt_path)
        if not dist.main:
            return TrainResult(run_id, trainer.step, val_psnr)
        _write_log(log_path, log_rows)
        if trainer.step >= t.steps:
            m = params.model
            save_generator(model_dir, trainer.ema.model, m.generator, m.generator_args)
            mlflow.log_artifact(str(log_path), "train")
            if (report_dir / "samples.png").exists():
                mlflow.log_artifact(str(report_dir / "samples.png"), "train")
            mlflow.log_metric("train_steps", trainer.step)
    return TrainResult(run_id, trainer.step, val_psnr)


def _say(msg: str) -> None:
    import sys

    print(msg, file=sys.stderr, flush=True)


def warm_start(generator: torch.nn.Module, init: dict, model) -> None:
    """Load train.init's weights; a different architecture is one clear error, not a crash.

    A NAFNet with extra blocks (model.generator_args middle_blocks, enc_blocks, dec_blocks) is
    grown from a smaller one: the new blocks start as the identity, the rest is loaded.
    """
    from gir.nn.nafnet import identity_blocks

    want = {"generator": model.generator, "args": dict(model.generator_args or {})}
    have = {"generator": init["spec"].get("generator"), "args": dict(init["spec"].get("args") or {})}
    mismatch = GirError(f"train.init: {init['source']} is {have['generator']} {have['args']}, but "
                        f"model.* asks for {want['generator']} {want['args']}; set the same "
                        f"model or train.init=none")
    try:
        missing, unexpected = generator.load_state_dict(init["state"], strict=False)
    except RuntimeError:
        raise mismatch from None
    grown = identity_blocks(generator, set(init["state"]))
    if unexpected or not all(any(k.startswith(b + ".") for b in grown) for k in missing):
        raise mismatch
    if missing:
        _say(f"train.init: {init['source']} grown by {len(grown)} NAFNet blocks that start as "
             f"the identity: {', '.join(grown)}")


def _write_log(path: Path, rows: list[dict]) -> None:
    """The per-step log as CSV (DVC plots it: `dvc plots show`)."""
    buf = io.StringIO()
    fields = LOG_FIELDS + sorted({k for r in rows for k in r} - set(LOG_FIELDS))
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


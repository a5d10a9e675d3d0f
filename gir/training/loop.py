"""The training loop: steps, the per-step log, validation figures, checkpoints, signals.

It takes a Trainer, a loader of this rank's batches and a tracker (trackers.py), and knows
nothing of where the data or the run's record come from. SIGTERM and Ctrl-C write a last
checkpoint and end the run as KILLED. Rank 0 alone logs, validates and checkpoints.
"""

from __future__ import annotations

import csv
import io
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gir.data.dataset import to_tensor, to_uint8
from gir.data.imageio import encode_png, write_bytes_atomic, write_text_atomic
from gir.errors import GirError
from gir.training.checkpoints import save_checkpoint
from gir.training.trackers import Tracker
from gir.training.trainer import Trainer

LOG_FIELDS = ["step", "loss_g", "loss_content", "loss_fft", "loss_adv", "loss_d", "lr",
              "images_per_s"]


class Interrupted(GirError):
    """SIGTERM / Ctrl-C: a last checkpoint was written, the run ended as KILLED."""

    def __init__(self, signum: int, step: int, ckpt: Path):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; "
                         f"checkpoint {ckpt} (run the stage again to resume)")
        self.exit_code = 128 + signum


class StopRequest:
    """Turns SIGTERM / SIGINT into a flag the loop checks between steps (state stays whole)."""

    def __init__(self):
        self.signum = 0
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


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


@torch.inference_mode()
def validate_model(model: torch.nn.Module, pairs, device) -> tuple[float, np.ndarray | None]:
    """Mean PSNR of model on whole validation images, and a figure of the first one.

    pairs: any iterable of Pair (a lazy one decodes a single image pair at a time)."""
    scores, grid = [], None
    for p in pairs:
        out = to_uint8(model(to_tensor(p.blur).unsqueeze(0).to(device))[0])
        scores.append(psnr(p.sharp, out))
        if grid is None:
            grid = sample_grid(p.blur, out, p.sharp)
    return (float(np.mean(scores)) if scores else float("nan")), grid


def write_log(path: Path, rows: list[dict]) -> None:
    """The per-step log as CSV (DVC plots it: `dvc plots show`)."""
    buf = io.StringIO()
    fields = LOG_FIELDS + sorted({k for r in rows for k in r} - set(LOG_FIELDS))
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


@dataclass
class Loop:
    """One pass over the loader from the trainer's current step to train.steps (or a stop).

    log_rows and window carry a resumed run's curve and its unfinished logging window.
    """

    trainer: Trainer
    tracker: Tracker
    val_pairs: object          # a sequence of Pair; empty off rank 0
    report_dir: Path
    ckpt_path: Path
    fingerprint: dict
    log_rows: list = field(default_factory=list)
    window: list = field(default_factory=list)
    stop_after: int = 0        # > 0: end after that many steps (tests simulate a killed run)
    val_psnr: float = float("nan")

    def run(self, loader, stop: StopRequest) -> None:
        """Train on every batch of loader; raises Interrupted after SIGTERM / Ctrl-C.

        stop: entered by the caller around the whole run, so a signal during setup counts."""
        from tqdm import tqdm

        tr, t, main = self.trainer, self.trainer.params.train, self.trainer.dist.main
        start = tr.step
        bar = tqdm(total=t.steps, initial=start, desc="train", unit="step", mininterval=2,
                   dynamic_ncols=True, disable=not main)
        tick = time.perf_counter()
        for blurred, sharp in loader:
            blurred = blurred.to(tr.device, non_blocking=True)
            sharp = sharp.to(tr.device, non_blocking=True)
            if t.channels_last:
                blurred = blurred.contiguous(memory_format=torch.channels_last)
            self.window.append(tr.train_step(blurred, sharp))
            bar.update(1)
            step = tr.step
            if main and (step % t.log_every == 0 or step == t.steps):
                self._log(step, time.perf_counter() - tick, bar)
                tick = time.perf_counter()
            if main and (step % t.image_every == 0 or step == t.steps):
                self._validate(step)
            stopping = bool(stop.signum) or bool(self.stop_after
                                                 and step - start >= self.stop_after)
            if main and (step % t.checkpoint_every == 0 or step == t.steps or stopping):
                self.checkpoint()
            if stopping:
                break
        bar.close()
        if stop.signum and tr.step < t.steps:
            if main:
                write_log(self.report_dir / "log.csv", self.log_rows)
                self.tracker.end("KILLED")
            raise Interrupted(stop.signum, tr.step, self.ckpt_path)

    def _log(self, step: int, elapsed: float, bar) -> None:
        w, device = self.window, self.trainer.device
        row = {"step": step, **{k: float(np.mean([x[k] for x in w])) for k in w[0]},
               "images_per_s": len(w) * self.trainer.params.train.batch_size / max(elapsed, 1e-9)}
        if device.type == "cuda":
            row["cuda_peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
        self.log_rows.append(row)
        self.tracker.log_metrics({k: v for k, v in row.items() if k != "step"}, step)
        bar.set_postfix(loss=f"{row['loss_g']:.4f}")
        self.window = []

    def _validate(self, step: int) -> None:
        self.val_psnr, grid = validate_model(self.trainer.ema.model, self.val_pairs,
                                             self.trainer.device)
        if not math.isnan(self.val_psnr):
            self.tracker.log_metrics({"val_psnr": self.val_psnr}, step)
        if grid is not None:
            self.tracker.log_image(grid, "val_before_after", step)
            write_bytes_atomic(self.report_dir / "samples.png", encode_png(grid))

    def checkpoint(self) -> None:
        """Checkpoint, and the curve so far (a killed run keeps it), and a heartbeat."""
        state = self.trainer.state(self.tracker.run_id, self.fingerprint, self.log_rows)
        save_checkpoint(self.ckpt_path, {**state, "window": self.window})
        write_log(self.report_dir / "log.csv", self.log_rows)
        self.tracker.set_tags({"gir.heartbeat": str(int(time.time()))})

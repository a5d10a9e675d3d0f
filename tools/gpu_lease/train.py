"""Train with gir's own training function on a GPU machine that has torch but not MLflow.

Runs gir.steps.train.train unchanged. MLflow is not installed there, so the run is reported to
gir's record tracker (gir.training.trackers.RecordTracker), which keeps it as record.json
(import_run.py turns that into an ordinary MLflow run afterwards). A short probe measures the loader's and the GPU's samples/s first, and
train.steps is set to what fits in --budget seconds, so a lease of fixed length is used to the
end with a complete cosine schedule; past --budget + 60 s the run checkpoints and stops.
Outputs: OUT/checkpoint.pt (kept up to date while training) and OUT/result.tar (model/,
train/log.csv, train/samples.png, record.json).

    PYTHONPATH=$PWD python3 tools/gpu_lease/train.py --data .lease/data --out $OUT \
        --budget 480 --batch 16 --params profiles/pretrain.yaml --set train.lr=0.0004 ...
"""
import argparse
import json
import os
import signal
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

T0 = time.time()


def probe(params, data: Path, device, workers: int) -> tuple[float, float]:
    """(loader samples/s, GPU samples/s) for this batch, crop and synthesis."""
    import torch
    from torch.utils.data import DataLoader

    from gir.data.dataset import CropDataset, load_split
    from gir.training.trainer import Trainer

    t, batch = params.train, params.train.batch_size
    pairs = load_split(data / "processed", data / "split.csv", "train")
    ds = CropDataset(pairs, t.crop, 64 * batch, params.seed + 1, t.resynth, params.data.synth,
                     t.resynth_weights)
    it = iter(DataLoader(ds, batch_size=batch, num_workers=workers,
                         prefetch_factor=4 if workers else None))
    for _ in range(8):
        next(it)
    start = time.time()
    for _ in range(40):
        blurred, sharp = next(it)
    loader = 40 * batch / (time.time() - start)
    trainer = Trainer(params, device)
    blurred, sharp = blurred.to(device), sharp.to(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(5):
        trainer.train_step(blurred, sharp)
    sync()
    start = time.time()
    for _ in range(30):
        trainer.train_step(blurred, sharp)
    sync()
    return loader, 30 * batch / (time.time() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="prepare.py's output")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=float, required=True,
                    help="seconds from start by which training should end")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=max(0, (os.cpu_count() or 2) - 2))
    ap.add_argument("--max-steps", type=int, default=0, help="cap on train.steps (0: none)")
    ap.add_argument("--params", default=None, help="params file (default params.yaml)")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE override")
    a = ap.parse_args()

    import torch

    from gir.config import load_params
    from gir.steps import train as train_step
    from gir.training.trackers import RecordTracker

    recorder = RecordTracker()

    sets = a.set + [f"train.batch_size={a.batch}", f"train.num_workers={a.workers}"]
    params = load_params(a.params, sets)
    from prepare import MARKER  # this folder is on sys.path when run as a script

    if (a.data / MARKER).exists() and params.train.resynth < 1.0:
        sys.exit("train: train.resynth must be 1.0 with prepare.py's data (its train rows "
                 "keep no stored blur)")
    device = torch.device("cuda" if torch.cuda.is_available() and params.train.device != "cpu"
                          else "cpu")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} on {name}", flush=True)
    loader, gpu = probe(params, a.data, device, a.workers)
    left = a.budget - (time.time() - T0)
    steps = max(1, int(min(loader, gpu) * 0.85 * left / a.batch))
    if a.max_steps:
        steps = min(steps, a.max_steps)
    print(f"probe: loader {loader:.0f} samples/s, {name} {gpu:.0f} samples/s, {left:.0f} s "
          f"left -> {steps} steps of batch {a.batch}", flush=True)
    recorder.record["probe"] = {"loader_samples_per_s": loader, "device_samples_per_s": gpu,
                                "steps": steps, "device": name}
    params = load_params(a.params, sets + [f"train.steps={steps}"])

    def guard():   # past the hard edge: checkpoint and stop as a SIGTERM does
        time.sleep(max(0.0, a.budget + 60 - (time.time() - T0)))
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=guard, daemon=True).start()
    work = Path(tempfile.mkdtemp(prefix="lease-run-"))   # travels back only as result.tar
    a.out.mkdir(parents=True, exist_ok=True)
    try:
        res = train_step.train(params, a.data / "processed", a.data / "split.csv",
                               work / "model", work / "train", a.out, engine="gpu-lease",
                               tracker=recorder)
        recorder.record["result"] = {"steps": res.steps, "val_psnr": res.val_psnr}
        recorder.record["status"] = recorder.record["status"] or "FINISHED"
    except train_step.Interrupted as exc:
        print(f"train: stopped at the budget's edge: {exc}", flush=True)
        recorder.record["status"] = "KILLED"
    rec = recorder.record
    rec["wall_s"] = time.time() - T0
    rec["cuda_peak_mem_gb"] = (torch.cuda.max_memory_allocated() / 2**30
                               if device.type == "cuda" else 0.0)
    (work / "record.json").write_text(json.dumps(rec, indent=1))
    with tarfile.open(a.out / "result.tar", "w") as tar:
        tar.add(work, arcname="lease-run")
    print(f"done: {rec['status']}, {rec['wall_s']:.0f} s -> {a.out / 'result.tar'}", flush=True)


if __name__ == "__main__":
    from gir.errors import GirError

    try:
        main()
    except GirError as exc:   # bad params or data: one line, as gir's own verbs do
        sys.exit(f"train: {exc}")

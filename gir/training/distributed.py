"""Multi-GPU / multi-node: join a torchrun job and give each rank its slice of every batch.

Launch the same command under ``torchrun`` (gloo on CPU, nccl on CUDA). ``train.batch_size``
is the global batch; each rank takes its slice of every global batch, so a 2-process run sees
exactly the crops of a 1-process one. Rank 0 alone logs, validates, checkpoints and writes the
model.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Subset

from gir.config import Params
from gir.errors import GirError
from gir.rectifier.inference import resolve_device


@dataclass
class Dist:
    """Where this process sits in a torchrun job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_batch_splits(batch_size: int) -> None:
    """The global batch must split evenly over the processes torchrun started."""
    world = world_size()
    if batch_size % world:
        raise GirError(f"train.batch_size: {batch_size} (the global batch) does not split "
                       f"over {world} processes")


def setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    """Join the torchrun process group if WORLD_SIZE > 1; pick this rank's device."""
    world = world_size()
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


@contextmanager
def distributed(device_name: str) -> Iterator[tuple[Dist, torch.device]]:
    """setup_distributed, and the process group torn down again however the block ends."""
    dist, device = setup_distributed(device_name)
    try:
        yield dist, device
    finally:
        if dist.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def rank_loader(dataset, start: int, params: Params, dist: Dist, device) -> DataLoader:
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


def average_grads(model: torch.nn.Module, dist: Dist) -> None:
    """All-reduce a model's gradients by hand (for the discriminator, which DDP cannot wrap)."""
    if dist.world > 1:
        for p in model.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= dist.world


def mean_over_ranks(values: torch.Tensor, dist: Dist) -> torch.Tensor:
    """The global batch's mean of per-rank values, as one process would have computed."""
    if dist.world > 1:
        torch.distributed.all_reduce(values)
        values /= dist.world
    return values

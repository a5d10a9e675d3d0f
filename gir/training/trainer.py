"""The model side of training: generator, discriminator, optimisers, schedule, EMA, one step.

AdamW with linear warm-up and cosine decay to a floor (train.betas, train.betas_d,
train.warmup, train.lr_floor); gradient clipping; an EMA of the generator's weights (what is
evaluated and registered); bf16 autocast on CUDA. Under torchrun the generator is wrapped in
DDP and the discriminator's gradients are averaged by hand.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import torch

from gir.config import Params, to_dict
from gir.errors import GirError
from gir.nn import build_discriminator, build_generator, losses
from gir.training.distributed import Dist, average_grads, mean_over_ranks

log = logging.getLogger("gir")

LOSS_KEYS = ("loss_g", "loss_content", "loss_fft", "loss_adv", "loss_d")


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


def warmup_steps(steps: int, warmup: int = 0) -> int:
    """train.warmup, or with 0 a tenth of the run, at most 100 steps (and at least 1)."""
    return warmup if warmup > 0 else max(1, min(100, steps // 10))


def lr_lambda(steps: int, warmup: int, floor: float = 0.01):
    """Linear warm-up then cosine decay to `floor` times the peak."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return f


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
        self.opt_g = torch.optim.AdamW(self.g.parameters(), lr=t.lr, betas=tuple(t.betas),
                                       weight_decay=t.weight_decay)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(
            self.opt_g, lr_lambda(t.steps, warmup_steps(t.steps, t.warmup), t.lr_floor))
        self.opt_d = torch.optim.AdamW(self.d.parameters(), lr=t.lr_d, betas=tuple(t.betas_d)) \
            if self.d is not None else None
        self.adv = losses.Adversarial(self.adv_kind, t.loss.gp_weight) if self.use_gan else None
        self.content = losses.CONTENT_LOSSES[t.loss.content]
        self.perceptual = (losses.PerceptualLoss(t.loss.perceptual_weights_file).to(device)
                           if t.loss.perceptual_weight > 0 else None)
        self.forward = self._wrap(self.g)
        self.amp = t.amp and device.type == "cuda"
        self.step = 0

    def _wrap(self, net: torch.nn.Module):
        """DDP for the generator under torchrun, torch.compile when asked. The discriminator is
        not wrapped: its loss calls it several times and, for WGAN-GP, differentiates through
        its gradient, which DDP's reducer does not support; its gradients are averaged by hand."""
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(
                net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return torch.compile(net) if self.params.train.compile else net

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
        l_d = self._discriminator_step(blurred, sharp, fake) if gan_on else torch.zeros(())
        values = torch.stack([v.float().to(loss.device)
                              for v in (loss, l_content, l_fft, l_adv, l_d)])
        values = mean_over_ranks(values, self.dist)   # the global batch's losses
        return {**dict(zip(LOSS_KEYS, values.tolist())), "lr": self.opt_g.param_groups[0]["lr"]}

    def _discriminator_step(self, blurred, sharp, fake) -> torch.Tensor:
        self.d.requires_grad_(True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            l_d = self.adv.discriminator(self.d, blurred, sharp, fake.detach())
        self.opt_d.zero_grad(set_to_none=True)
        l_d.backward()
        average_grads(self.d, self.dist)
        self.opt_d.step()
        return l_d.detach()


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
        log.info("train.init: %s grown by %d NAFNet blocks that start as the identity: %s",
                 init["source"], len(grown), ", ".join(grown))

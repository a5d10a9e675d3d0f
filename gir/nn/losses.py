"""Losses by name: content (l1, charbonnier, psnr), frequency (fft), adversarial (bce, lsgan,
wgan-gp), and a perceptual VGG loss only when the user supplies a weights file (nothing is
downloaded)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from gir.errors import GirError


def l1_loss(pred, target):
    return F.l1_loss(pred, target)


def charbonnier_loss(pred, target, eps: float = 1e-3):
    return torch.sqrt((pred - target) ** 2 + eps**2).mean()


def psnr_loss(pred, target, eps: float = 1e-8):
    """Minus the mean per-image PSNR in dB (NAFNet's loss), up to a constant: the metric the
    evaluation averages, so each image weighs as it does there, and the optimum is the mean
    (L2), not the median that L1 and Charbonnier aim at. Its gradient is a few hundred times
    Charbonnier's (200-1100x measured on pretraining crops), so pair it with a content_weight
    near 0.0025 to stay under grad_clip."""
    mse = ((pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
    return (10.0 / math.log(10.0)) * torch.log(mse + eps).mean()


CONTENT_LOSSES = {"l1": l1_loss, "charbonnier": charbonnier_loss, "psnr": psnr_loss}


def fft_loss(pred, target):
    """L1 between the real/imaginary spectra: penalises missing high frequencies (lost detail)."""
    p = torch.fft.rfft2(pred.float(), norm="ortho")
    t = torch.fft.rfft2(target.float(), norm="ortho")
    return (torch.view_as_real(p) - torch.view_as_real(t)).abs().mean()


class Adversarial:
    """Generator and discriminator objectives of one GAN flavour."""

    def __init__(self, kind: str, gp_weight: float = 10.0):
        if kind not in ("bce", "lsgan", "wgan-gp"):
            raise GirError(f"train.loss.adversarial: unknown loss {kind!r}")
        self.kind = kind
        self.gp_weight = gp_weight

    def generator(self, fake_logits):
        if self.kind == "bce":
            return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        if self.kind == "lsgan":
            return ((fake_logits - 1) ** 2).mean()
        return -fake_logits.mean()

    def discriminator(self, disc, blurred, real, fake):
        real_logits = disc(blurred, real)
        fake_logits = disc(blurred, fake)
        if self.kind == "bce":
            return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                    + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))) / 2
        if self.kind == "lsgan":
            return (((real_logits - 1) ** 2).mean() + (fake_logits**2).mean()) / 2
        return fake_logits.mean() - real_logits.mean() + self.gp_weight * gradient_penalty(
            disc, blurred, real, fake)


def gradient_penalty(disc, blurred, real, fake):
    """WGAN-GP: push the critic's gradient norm towards 1 on real/fake interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = disc(blurred, mix)
    grad, = torch.autograd.grad(out.sum(), mix, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class PerceptualLoss(nn.Module):
    """L1 between VGG19 conv features, from a local torchvision-format state_dict file."""

    LAYERS = (3, 8, 17, 26)  # relu1_2, relu2_2, relu3_4, relu4_4

    def __init__(self, weights_file: str):
        super().__init__()
        path = Path(weights_file)
        if not path.is_file():
            raise GirError(f"train.loss.perceptual_weights_file: {path} not found "
                           "(perceptual loss needs a local VGG19 weights file)")
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512]
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers)
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k.removeprefix("features."): v for k, v in state.items()
                 if k.startswith("features.") and int(k.split(".")[1]) < len(layers)}
        self.features.load_state_dict(state)
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, pred, target):
        x, y = (pred - self.mean) / self.std, (target - self.mean) / self.std
        loss = 0.0
        for i, layer in enumerate(self.features):
            x, y = layer(x), layer(y)
            if i in self.LAYERS:
                loss = loss + F.l1_loss(x, y)
            if i >= self.LAYERS[-1]:
                break
        return loss

"""Conditional PatchGAN discriminator (pix2pix): judges (blurred, candidate) pairs per patch."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm as sn

from gir.nn import register_discriminator


@register_discriminator("patchgan")
class PatchGAN(nn.Module):
    """Sees the blurred input concatenated with a candidate; outputs a map of real/fake logits."""

    def __init__(self, base: int = 32, layers: int = 3, spectral_norm: bool = True):
        super().__init__()
        wrap = sn if spectral_norm else (lambda m: m)
        norm = (lambda c: nn.Identity()) if spectral_norm else (lambda c: nn.InstanceNorm2d(c, affine=True))
        mods = [wrap(nn.Conv2d(6, base, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        c = base
        for i in range(1, layers + 1):
            nc = min(base * 2**i, base * 8)
            stride = 2 if i < layers else 1
            mods += [wrap(nn.Conv2d(c, nc, 4, stride, 1)), norm(nc), nn.LeakyReLU(0.2, True)]
            c = nc
        mods.append(wrap(nn.Conv2d(c, 1, 4, 1, 1)))
        self.net = nn.Sequential(*mods)

    def forward(self, blurred, candidate):
        return self.net(torch.cat([blurred, candidate], dim=1))

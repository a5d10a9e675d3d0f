"""Fourier U-Net: the GIR report's generator, with a frequency branch that actually learns.

The report's branch computed ``abs(ifft2(fft2(x)))``, which is ``abs(x)``: a no-op. Here each
:class:`SpectralBlock` takes ``rfft2`` of its features, mixes the real and imaginary parts with
1x1 convolutions (a learned, per-frequency-position filter shared across the spectrum, as in
FFC / DeepRFT), goes back with ``irfft2`` and adds the result as a residual. A blur is a
multiplication in the frequency domain, so undoing it there needs a global receptive field that
spatial 3x3 convolutions only reach after many layers.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F

from gir.nn import register_generator


class SpectralBlock(nn.Module):
    """Residual frequency-domain branch: conv on [Re, Im] of rfft2, then irfft2."""

    def __init__(self, c: int):
        super().__init__()
        self.mix = nn.Sequential(nn.Conv2d(2 * c, 2 * c, 1), nn.GELU(), nn.Conv2d(2 * c, 2 * c, 1))
        # Start close to (not exactly) the identity: a small last layer keeps early training
        # stable while gradients still reach every weight of the branch from step one.
        with torch.no_grad():
            self.mix[-1].weight.mul_(0.1)
            self.mix[-1].bias.zero_()

    def forward(self, x):
        h, w = x.shape[-2:]
        # FFTs do not run in bf16; keep the branch in float32 under autocast.
        with torch.autocast("cuda", enabled=False) if x.is_cuda else contextlib.nullcontext():
            spec = torch.fft.rfft2(x.float(), norm="ortho")
            y = self.mix(torch.cat([spec.real, spec.imag], dim=1))
            re, im = y.chunk(2, dim=1)
            y = torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm="ortho")
        return x + y.to(x.dtype)


class ConvBlock(nn.Module):
    """Two 3x3 convs with a residual connection; optionally followed by a spectral branch."""

    def __init__(self, c: int, spectral: bool):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(c, c, 3, padding=1))
        self.spectral = SpectralBlock(c) if spectral else nn.Identity()

    def forward(self, x):
        return self.spectral(x + self.body(x))


@register_generator("fourier_unet")
class FourierUNet(nn.Module):
    """U-Net with skips; a spectral branch in the bottleneck and, with every_level, each level.

    Predicts a residual added to the blurred input, like the other generators.
    """

    def __init__(self, width: int = 16, depth: int = 3, blocks: int = 1,
                 middle_blocks: int = 2, every_level: bool = False):
        super().__init__()
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        self.ups, self.fuses, self.decoders = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c = width
        for _ in range(depth):
            self.encoders.append(nn.Sequential(*[ConvBlock(c, every_level) for _ in range(blocks)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[ConvBlock(c, True) for _ in range(middle_blocks)])
        for _ in range(depth):
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1), nn.PixelShuffle(2)))
            c //= 2
            self.fuses.append(nn.Conv2d(2 * c, c, 1))  # concat skip, as in the U-Net
            self.decoders.append(nn.Sequential(*[ConvBlock(c, every_level) for _ in range(blocks)]))
        self.ending = nn.Conv2d(width, 3, 3, padding=1)
        self.pad_multiple = 2 ** depth

    def forward(self, inp):
        h, w = inp.shape[-2:]
        m = self.pad_multiple
        x = F.pad(inp, (0, (-w) % m, 0, (-h) % m), mode="reflect")  # unconditional: ONNX-traceable
        x = self.intro(x)
        skips = []
        for enc, down in zip(self.encoders, self.downs):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for up, fuse, dec, skip in zip(self.ups, self.fuses, self.decoders, reversed(skips)):
            x = dec(fuse(torch.cat([up(x), skip], dim=1)))
        return inp + self.ending(x)[..., :h, :w]

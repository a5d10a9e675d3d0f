"""NAFNet-style generator (Chen et al., 2022): simple gates instead of activations, layer norm,
simplified channel attention. Chosen as the default for its PSNR per GMAC on CPU and GPU."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from gir.nn import register_generator


class LayerNorm2d(nn.Module):
    """Layer norm over channels of an NCHW tensor.

    Runs the fused ``F.layer_norm`` on a channels-last view: on a channels_last tensor the
    permute is free, and this is ~3x faster on CPU than mean/var written out elementwise.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.channels = channels  # a Python int, so ONNX export sees a constant shape

    def forward(self, x):
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.channels,), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    def __init__(self, c: int, expand: int = 2):
        super().__init__()
        dw = c * expand
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, c * expand, 1)
        self.conv5 = nn.Conv2d(c * expand // 2, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        y = self.gate(self.conv2(self.conv1(self.norm1(x))))
        y = self.conv3(y * self.sca(y))
        x = x + (y if self.beta is None else y * self.beta)
        y = self.conv5(self.gate(self.conv4(self.norm2(x))))
        return x + (y if self.gamma is None else y * self.gamma)

    @torch.no_grad()
    def fold_scales(self) -> None:
        """Fold the output scales beta and gamma into conv3 and conv5 (inference only):
        conv(y) * s is the conv with its output channels scaled by s, one pass less each."""
        for conv, name in ((self.conv3, "beta"), (self.conv5, "gamma")):
            if getattr(self, name) is None:    # folded already
                continue
            scale = getattr(self, name).view(-1)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias.mul_(scale)
            setattr(self, name, None)


def shuffle_as_transposed_conv(up: nn.Sequential) -> nn.ConvTranspose2d:
    """The 1x1 conv (c -> 2c, no bias) + PixelShuffle(2) upsampler as the one 2x2 stride-2
    transposed conv it equals: output channel o at offset (a, b) is conv channel 4o + 2a + b.
    The same sums, without PixelShuffle's strided copy (~1.8x faster at the top level on CPU)."""
    conv = up[0]
    c = conv.in_channels
    out = nn.ConvTranspose2d(c, conv.out_channels // 4, 2, stride=2, bias=False)
    with torch.no_grad():
        w = conv.weight[:, :, 0, 0]                                   # (4 * c_out, c)
        out.weight.copy_(w.view(-1, 2, 2, c).permute(3, 0, 1, 2))    # (c, c_out, 2, 2)
    return out.to(device=conv.weight.device, dtype=conv.weight.dtype)


def identity_blocks(model: nn.Module, loaded: set[str]) -> list[str]:
    """The NAFBlocks of model that no key in loaded belongs to.

    A fresh NAFBlock is the identity (its output scales beta and gamma start at zero), so a
    NAFNet with more blocks than a trained one, the rest of it loaded from that one, computes
    exactly what the trained one did: training grows it from there (train.init).
    """
    names = [name for name, m in model.named_modules() if isinstance(m, NAFBlock)]
    return [n for n in names if not any(k.startswith(n + ".") for k in loaded)]


@register_generator("nafnet")
class NAFNet(nn.Module):
    """U-shaped NAFNet with a global residual: predicts the correction to the blurred input."""

    def __init__(self, width: int = 16, enc_blocks=(1, 1, 2), middle_blocks: int = 2,
                 dec_blocks=(1, 1, 1)):
        super().__init__()
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.ending = nn.Conv2d(width, 3, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        self.decoders, self.ups = nn.ModuleList(), nn.ModuleList()
        c = width
        for n in enc_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c) for _ in range(middle_blocks)])
        for n in dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(c, c * 2, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
        self.pad_multiple = 2 ** len(enc_blocks)
        # Weights channels-last too (CPU inference ~10% faster; neutral to good on CUDA).
        self.to(memory_format=torch.channels_last)

    def for_inference(self) -> "NAFNet":
        """A copy computing the same function in fewer passes over memory, for inference only
        (it cannot be trained or saved as a NAFNet): every block's beta/gamma folded into its
        convs, every upsampler one transposed conv. Outputs agree to float rounding."""
        model = copy.deepcopy(self).eval()
        for block in model.modules():
            if isinstance(block, NAFBlock):
                block.fold_scales()
        for i, up in enumerate(model.ups):
            if isinstance(up, nn.Sequential):  # not converted already
                model.ups[i] = shuffle_as_transposed_conv(up)
        return model.to(memory_format=torch.channels_last)

    def forward(self, inp):
        h, w = inp.shape[-2:]
        m = self.pad_multiple
        x = F.pad(inp, (0, (-w) % m, 0, (-h) % m), mode="reflect")  # unconditional: ONNX-traceable
        if not x.is_cuda:
            # oneDNN's depthwise and 1x1 convolutions are ~2x faster channels-last on CPU.
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.intro(x)
        skips = []
        for enc, down in zip(self.encoders, self.downs):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for dec, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = dec(up(x) + skip)
        return inp + self.ending(x)[..., :h, :w]

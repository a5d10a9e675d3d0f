"""DeblurGAN's ResNet generator (Kupyn et al., 2018): the deblur-gan report's model.

7x7 conv, two strided convs down, residual blocks at 1/4 resolution, two transposed convs up,
7x7 conv, tanh, and a global skip (the network learns the correction to the blurred input).
Instance norm as in the paper. Heavy (hundreds of GMACs at 720p with width 64): kept as the
baseline the other generators must beat per GMAC.
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from gir.nn import register_generator


class ResBlock(nn.Module):
    def __init__(self, c: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(True),
            nn.Dropout(dropout) if dropout else nn.Identity(),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


@register_generator("resnet")
class ResnetGenerator(nn.Module):
    """DeblurGAN generator: strided convs, n_blocks residual blocks, global skip."""

    def __init__(self, width: int = 64, n_blocks: int = 9, dropout: float = 0.0):
        super().__init__()
        c = width
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, c, 7), nn.InstanceNorm2d(c), nn.ReLU(True)]
        for _ in range(2):
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * c),
                       nn.ReLU(True)]
            c *= 2
        layers += [ResBlock(c, dropout) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, 3, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.pad_multiple = 4

    def forward(self, inp):
        h, w = inp.shape[-2:]
        m = self.pad_multiple
        x = F.pad(inp, (0, (-w) % m, 0, (-h) % m), mode="reflect")  # unconditional: ONNX-traceable
        # tanh output in [-1, 1] is the correction; images live in [0, 1].
        return inp + self.net(x)[..., :h, :w]

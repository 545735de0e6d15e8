"""FastNet: a small, wide convolutional network for 28x28 and 32x32 images, built to reach high accuracy in a
few epochs on a CPU (papernets' `fast-fashion-mnist` recipes).

Not a paper's network: a papernets design whose parts come from
- airbench (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", arXiv:2404.00498, and its
  released airbench94.py): no residual connections; stages that each are a ConvGroup, conv 3x3 -> 2x2
  max-pool -> BN -> GELU -> conv 3x3 -> BN -> GELU (the first convolution of a stage runs before its pooling,
  BN and GELU after it, on 4x fewer values); global max-pooling; a linear head without bias.
- VGG (Simonyan & Zisserman, arXiv:1409.1556, Sec. 2.1) and ResNet (He et al., arXiv:1512.03385, Sec. 3.3):
  only 3x3 convolutions after the stem, and the width doubles where the resolution halves.
- GELU (Hendrycks & Gimpel, arXiv:1606.08415), as airbench uses.

Table of `fastnet` (`FASTNET_CONFIGS` below; `fastnet_wide` has 1.5x the widths), on 28x28 (32x32 in brackets):

| part   | operation                              | output          | MACs (28x28) |
|--------|----------------------------------------|-----------------|--------------|
| stem   | conv 3x3, 2x2 max-pool, BN, GELU       | 32 @ 14x14 [16] | 0.23 M       |
| stage1 | ConvGroup: conv 3x3, pool, conv 3x3    | 64 @ 7x7 [8]    | 5.4 M        |
| stage2 | ConvGroup: conv 3x3, pool, conv 3x3    | 128 @ 3x3 [4]   | 4.9 M        |
| head   | global max-pool, linear (no bias)      | classes         | 0.001 M      |

Differences from airbench, each for the CPU and for 28x28 grey images (measured on Fashion-MNIST validation
accuracy, see docs/BENCHMARKS.md):
- The stem is a learned 3x3 convolution followed at once by the 2x2 max-pool, BN and GELU (the first half of a
  ConvGroup), where airbench has a 2x2 convolution initialised to whiten the patches, and no pooling:
  pooling in the stem quarters the cost of everything after it. A 2x2 stride-2 patch convolution instead was
  15% cheaper but 1.0 point less accurate after 3 epochs.
- Two ConvGroups of 64 and 128 channels instead of three of 64, 256, 256: about 10 M MACs per 28x28 image
  instead of about 0.12 G per 32x32 image (our count for airbench94's widths), so that a 2-core CPU trains it
  at thousands of images/s.
- BatchNorm keeps its learned scale and PyTorch's defaults; the logits are not scaled by 1/9.
"""

from collections import OrderedDict

import torch
from torch import nn

from papernets.models.registry import register_model


def make_stem(in_channels: int, out_channels: int) -> nn.Sequential:
    """The first half of a ConvGroup: conv 3x3 -> max-pool 2x2 -> BN -> GELU."""
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        pool=nn.MaxPool2d(2),
        bn=nn.BatchNorm2d(out_channels),
        act=nn.GELU(),
    ))


class ConvGroup(nn.Module):
    """airbench's block (arXiv:2404.00498): conv 3x3 -> max-pool 2x2 -> BN -> GELU -> conv 3x3 -> BN -> GELU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.pool(self.conv1(x))))  # (B, C_out, H / 2, W / 2)
        return self.act2(self.bn2(self.conv2(x)))


class FastNet(nn.Module):
    def __init__(self, stem_channels: int, stage_channels: tuple[int, ...], *, num_classes: int, in_channels: int):
        super().__init__()
        self.stem = make_stem(in_channels, stem_channels)
        widths = (stem_channels, *stage_channels)
        self.stages = nn.Sequential(OrderedDict(
            (f"stage{index}", ConvGroup(widths[index - 1], widths[index])) for index in range(1, len(widths))
        ))
        self.head = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveMaxPool2d(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(widths[-1], num_classes, bias=False),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


# The design as data: stem width, then the output width of each ConvGroup (each halves the resolution).
FASTNET_CONFIGS = {
    #               stem  stages
    "fastnet":      (32, (64, 128)),        # 10.6 M MACs at 28x28: the 60-second recipe
    "fastnet_wide": (48, (96, 192)),        # 23.6 M MACs at 28x28: the 5-minute recipe
}

PAPER = "papernets design after airbench (Jordan 2024, arXiv:2404.00498)"


@register_model(paper=PAPER, input_size=(1, 28, 28), num_classes=10)
def fastnet(*, num_classes: int = 10, in_channels: int = 1) -> FastNet:
    stem_channels, stage_channels = FASTNET_CONFIGS["fastnet"]
    return FastNet(stem_channels, stage_channels, num_classes=num_classes, in_channels=in_channels)


@register_model(paper=PAPER, input_size=(1, 28, 28), num_classes=10)
def fastnet_wide(*, num_classes: int = 10, in_channels: int = 1) -> FastNet:
    stem_channels, stage_channels = FASTNET_CONFIGS["fastnet_wide"]
    return FastNet(stem_channels, stage_channels, num_classes=num_classes, in_channels=in_channels)

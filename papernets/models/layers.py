"""Layers that more than one paper's model uses, and the one policy for small images.

- `ConvBlock`: convolution and ReLU, with BatchNorm between them when asked (GoogLeNet, Inception v3).
- `ConvBNActivation` and `make_divisible`: the MobileNets' convolution-BN-activation unit and channel rounding.
- `small_input_strides`: how the MobileNets keep 32 px inputs from shrinking to 1x1.
- `GlobalAveragePool`: the mean over height and width, with a backward that keeps channels_last.
- `forward_with_auxiliary_heads`: auxiliary classifiers (GoogLeNet Sec. 5, Inception v3 Sec. 4), heads on
  intermediate stages that add to the training loss only. In training mode a model returns
  `(logits, aux_logits, ...)` in stage order, in eval mode logits alone.
"""

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

GOOGLE_BATCH_NORM_EPS = 1e-3  # the epsilon of Google's TensorFlow models and torchvision's ports of them


class ConvBlock(nn.Module):
    """Convolution then ReLU; with `batch_norm`, a convolution without bias, BatchNorm, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
                 stride: int = 1, padding: int | tuple[int, int] = 0, batch_norm: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=not batch_norm)
        self.bn = nn.BatchNorm2d(out_channels, eps=GOOGLE_BATCH_NORM_EPS) if batch_norm else None
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.relu(x if self.bn is None else self.bn(x))


class GlobalAveragePool(nn.Module):
    """(B, C, H, W) -> (B, C, 1, 1), the mean over height and width, as `nn.AdaptiveAvgPool2d(1)` computes it.

    Through `avg_pool2d` because its backward hands a channels_last input a channels_last gradient, where
    AdaptiveAvgPool2d(1)'s (expand, then divide) is NCHW, and the ReLU backward that meets it beside a
    channels_last output runs about 15x slower (21 vs 1.4 ms at 256x16x28x28 bf16, 1 thread; the ResNet-20
    measurements are in docs/BENCHMARKS.md, "Training throughput", 2026-12-02)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=x.shape[-2:])


class ConvBNActivation(nn.Sequential):
    """Convolution without bias, BatchNorm, then an activation (none for a linear bottleneck)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 groups: int = 1, activation: type[nn.Module] | None = nn.ReLU6,
                 batch_norm_eps: float = 1e-5, batch_norm_momentum: float = 0.1):
        layers = OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                           groups=groups, bias=False),
            bn=nn.BatchNorm2d(out_channels, eps=batch_norm_eps, momentum=batch_norm_momentum),
        )
        if activation is not None:
            layers["act"] = activation(inplace=True)
        super().__init__(layers)


def make_divisible(channels: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of `divisor` (at least `divisor`), never more than 10% below `channels`."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def small_input_strides(stem_stride: int, row_strides: Sequence[int], small_input: bool) -> tuple[int, list[int]]:
    """(stem stride, row strides) as the table gives them, or, with `small_input` (the registry's choice for
    images below 64 px), stride 1 in the stem and in the first stride-2 row: a 32 px input then ends on 4x4
    maps rather than 1x1, the same early downsampling the ResNet CIFAR adaptation drops."""
    if not small_input:
        return stem_stride, list(row_strides)
    first_strided = list(row_strides).index(2)
    return 1, [1 if index == first_strided else stride for index, stride in enumerate(row_strides)]


def forward_with_auxiliary_heads(model: nn.Module, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """`model.stem`, then `model.stages` (each stage named in `model.aux_heads` feeds its head), then `model.head`."""
    x = model.stem(x)
    if not (model.training and model.aux_heads):
        return model.head(model.stages(x))
    aux_logits = []
    for name, stage in model.stages.named_children():
        x = stage(x)
        if name in model.aux_heads:
            aux_logits.append(model.aux_heads[name](x))
    return (model.head(x), *aux_logits)

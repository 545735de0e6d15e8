"""MobileNetV2: Inverted Residuals and Linear Bottlenecks — Sandler, Howard, Zhu, Zhmoginov, Chen, arXiv:1801.04381.

Table 2 defines the network: a 3x3 stride-2 convolution with 32 filters, seven rows of inverted residual blocks
(t = expansion factor, c = output channels, n = repeats, s = stride of the first repeat), a 1x1 convolution to
1280 channels, global average pooling and a classifier. Table 1 defines the block: 1x1 expansion to t*k channels
with ReLU6, 3x3 depthwise with ReLU6 and stride s, then a linear 1x1 projection (Sec. 3.2: no non-linearity
after the bottleneck); the shortcut joins the bottlenecks when input and output shapes agree (Sec. 3.3, Fig. 3b).
Sec. 6.1: BatchNorm after every layer. Sec. 5.1: the width multiplier applies to every layer except the last
1x1 convolution when it is below one. Layers and names match torchvision's `mobilenet_v2`, so its weights load
with `interop.load_torchvision_state_dict` and give identical outputs.

Deviations from the paper:
- Dropout 0.2 before the classifier (torchvision and the TensorFlow reference use it; the paper does not say).
- Channels are rounded to multiples of 8 (`make_divisible`), as the TensorFlow reference does; the paper does
  not say how alpha * c is rounded. With alpha = 1 every channel count is already a multiple of 8.
- `small_input=True` (the registry's choice below 64 pixels) runs the first convolution and the first stride-2
  row (c = 24) with stride 1, so that 32 px inputs end on 4x4 maps rather than 1x1.
- Initialisation as torchvision (He normal, fan-out; classifier N(0, 0.01)); the paper does not specify one.
"""

from collections import OrderedDict

import torch
from torch import nn

from papernets.errors import ModelError
from papernets.models.layers import ConvBNActivation, make_divisible, small_input_strides
from papernets.models.registry import register_model


class InvertedResidual(nn.Module):
    """Table 1: 1x1 expand (t*k, ReLU6), 3x3 depthwise (stride s, ReLU6), 1x1 linear projection to k'."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden_channels = int(round(in_channels * expansion))
        # t = 1 (first row): the expansion would be an identity-sized 1x1; it is left out, as in the reference.
        self.expand = ConvBNActivation(in_channels, hidden_channels) if expansion != 1 else nn.Identity()
        self.depthwise = ConvBNActivation(hidden_channels, hidden_channels, 3, stride, groups=hidden_channels)
        self.project = ConvBNActivation(hidden_channels, out_channels, activation=None)  # Sec. 3.2: linear
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_shortcut else out


class MobileNetV2(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int, width_multiplier: float, small_input: bool,
                 dropout: float):
        super().__init__()
        self.small_input = small_input  # torchvision's weights need the full-size strides (models/interop.py)
        if not width_multiplier > 0:
            raise ModelError(f"MobileNetV2's width_multiplier must be positive, got {width_multiplier}.")
        if not 0 <= dropout < 1:
            raise ModelError(f"MobileNetV2's dropout is a probability in [0, 1), got {dropout}.")
        stem_channels = make_divisible(STEM_CHANNELS * width_multiplier)
        # DEVIATION: small_input keeps the resolution in the stem and the first stride-2 row (module docstring).
        stem_stride, strides = small_input_strides(2, [s for *_, s in TABLE_2], small_input)
        self.stem = ConvBNActivation(in_channels, stem_channels, 3, stem_stride)
        rows = []
        in_channels = stem_channels
        for (t, c, n, _), s in zip(TABLE_2, strides):
            out_channels = make_divisible(c * width_multiplier)
            row = []
            for repeat in range(n):
                row.append(InvertedResidual(in_channels, out_channels, stride=s if repeat == 0 else 1, expansion=t))
                in_channels = out_channels
            rows.append(nn.Sequential(*row))
        self.stages = nn.Sequential(*rows)
        last_channels = make_divisible(LAST_CHANNELS * max(1.0, width_multiplier))  # Sec. 5.1
        self.head = nn.Sequential(OrderedDict(
            conv=ConvBNActivation(in_channels, last_channels),  # Table 2: conv2d 1x1, c = 1280
            pool=nn.AdaptiveAvgPool2d(1),  # Table 2: avgpool 7x7
            flatten=nn.Flatten(),
            dropout=nn.Dropout(dropout),  # DEVIATION: dropout from the reference implementations
            fc=nn.Linear(last_channels, num_classes),  # Table 2: conv2d 1x1, k (a linear map on 1x1 maps)
        ))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def torchvision_modules(self, state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
        """torchvision's `mobilenet_v2` modules and ours (same layers in the same order), for models.interop."""
        blocks = [f"stages.{row}.{repeat}" for row, stage in enumerate(self.stages) for repeat in range(len(stage))]
        return {"features.0": "stem", **{f"features.{index}": block for index, block in enumerate(blocks, start=1)},
                f"features.{len(blocks) + 1}": "head.conv", "classifier.1": "head.fc"}


# Table 2: the first layer ("conv2d, c = 32, s = 2"), the bottleneck rows, and the last 1x1 convolution.
STEM_CHANNELS = 32
TABLE_2 = (
    # t, c, n, s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
LAST_CHANNELS = 1280


@register_model(paper="Sandler et al. 2018, arXiv:1801.04381 (Table 2)", input_size=(3, 224, 224), num_classes=1000,
                torchvision_name="mobilenet_v2")
def mobilenet_v2(*, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False,
                 width_multiplier: float = 1.0, dropout: float = 0.2) -> MobileNetV2:
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, width_multiplier=width_multiplier,
                       small_input=small_input, dropout=dropout)

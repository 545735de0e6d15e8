"""MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications — Howard et al.,
arXiv:1704.04861.

Table 1 defines the network: a full 3x3 convolution, then 13 depthwise separable convolutions (Sec. 3.1, Fig. 3:
3x3 depthwise conv, BN, ReLU, 1x1 pointwise conv, BN, ReLU), global average pooling and a fully connected
layer. Sec. 3.3: the width multiplier alpha thins every layer to alpha * M input and alpha * N output channels;
the resolution multiplier is simply the input size, since the network ends in global average pooling.

Deviations from the paper:
- `small_input=True` (the registry's choice below 64 pixels) runs the first convolution and the first stride-2
  depthwise layer with stride 1, so that 32 px inputs end on 4x4 maps rather than 1x1 (the same early
  downsampling that the ResNet CIFAR adaptation drops).
- Table 1's last "Conv dw / s2" row is read as stride 1: its input and output are both 7x7 in the table, and
  the paper's parameter and mult-add counts (Table 7) hold only with stride 1. This is not a change of design.
- Channels are `int(alpha * channels)`, never fewer than 8 (the paper does not say how to round; this is the
  TensorFlow reference's rule and reproduces Table 6's counts).
"""

from collections import OrderedDict

import torch
from torch import nn

from papernets.errors import ModelError
from papernets.models.layers import ConvBNActivation, small_input_strides
from papernets.models.registry import register_model


class DepthwiseSeparableConv(nn.Module):
    """Fig. 3 right: 3x3 depthwise conv, BN, ReLU, then 1x1 pointwise conv, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.depthwise = ConvBNActivation(in_channels, in_channels, 3, stride, groups=in_channels, activation=nn.ReLU)
        self.pointwise = ConvBNActivation(in_channels, out_channels, 1, 1, activation=nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int, width_multiplier: float, small_input: bool):
        super().__init__()
        if not width_multiplier > 0:
            raise ModelError(f"MobileNet's width_multiplier must be positive (Sec. 3.3: alpha in (0, 1]), "
                             f"got {width_multiplier}.")

        def thin(channels: int) -> int:  # Sec. 3.3: alpha * M channels
            return max(8, int(channels * width_multiplier))

        # DEVIATION: small_input keeps the resolution in the stem and the first stride-2 layer (module docstring).
        stem_stride, strides = small_input_strides(2, [s for s, _ in DEPTHWISE_SEPARABLE_LAYERS], small_input)
        self.stem = ConvBNActivation(in_channels, thin(STEM_FILTERS), 3, stem_stride, activation=nn.ReLU)
        layers = []
        in_channels = thin(STEM_FILTERS)
        for (_, filters), stride in zip(DEPTHWISE_SEPARABLE_LAYERS, strides):
            layers.append(DepthwiseSeparableConv(in_channels, thin(filters), stride))
            in_channels = thin(filters)
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1),  # Table 1: "Avg Pool / s1, Pool 7x7" at 224 px
            flatten=nn.Flatten(),
            fc=nn.Linear(in_channels, num_classes),  # Table 1: "FC / s1, 1024 x 1000"
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


# Table 1: "Conv / s2, 3x3x3x32", then each "Conv dw / s" row with the "Conv / s1, 1x1" row that follows it.
STEM_FILTERS = 32
DEPTHWISE_SEPARABLE_LAYERS = (
    # s  filters of the 1x1 conv   (Input Size of the dw row at 224 px)
    (1, 64),     # 112x112x32
    (2, 128),    # 112x112x64
    (1, 128),    # 56x56x128
    (2, 256),    # 56x56x128
    (1, 256),    # 28x28x256
    (2, 512),    # 28x28x256
    (1, 512),    # 14x14x512  (5x)
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (2, 1024),   # 14x14x512
    (1, 1024),   # 7x7x1024   (Table 1 prints s2 here; its 7x7 output needs s1)
)


@register_model(paper="Howard et al. 2017, arXiv:1704.04861 (Table 1)", input_size=(3, 224, 224), num_classes=1000)
def mobilenet_v1(*, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False,
                 width_multiplier: float = 1.0) -> MobileNetV1:
    return MobileNetV1(num_classes=num_classes, in_channels=in_channels, width_multiplier=width_multiplier,
                       small_input=small_input)

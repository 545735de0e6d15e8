"""Searching for MobileNetV3 — Howard, Sandler, Chu, Chen, Chen, Tan, Wang, Zhu, Pang, Vasudevan, Le, Adam,
arXiv:1905.02244.

Table 1 (MobileNetV3-Large) and Table 2 (MobileNetV3-Small) define the networks: a 3x3 stride-2 convolution with
16 filters and h-swish, rows of "bneck" blocks, a 1x1 convolution, global average pooling and two 1x1
convolutions without BatchNorm ("NBN"; on a 1x1 map they are fully connected layers, written as such here).
The bneck block is MobileNetV2's inverted residual (1x1 expansion to "exp size", depthwise k x k, linear 1x1
projection, shortcut when the shapes agree) with an optional squeeze-and-excite module after the depthwise
convolution (Sec. 5.3: hard-sigmoid gate, squeeze to 1/4 of the expansion channels). Sec. 5.2:
h-swish(x) = x * ReLU6(x + 3) / 6. Sec. 6.1: BatchNorm with average decay 0.99 (momentum 0.01), dropout 0.8 keep
probability (0.2 here). Layers and names match torchvision's `mobilenet_v3_large` / `mobilenet_v3_small`, so their
weights load with `interop.load_torchvision_state_dict` and give identical outputs.

Deviations from the paper:
- The squeeze-and-excite width is 1/4 of the expansion channels rounded to a multiple of 8 (e.g. 72 / 4 = 18
  becomes 24), as torchvision and the TensorFlow reference do; the paper says 1/4 without rounding.
- MobileNetV3-Small: Table 2 marks its last 1x1 convolution (576 channels) with SE; torchvision and the
  TensorFlow reference have no SE there, and neither does this file, so that their weights load.
- BatchNorm epsilon 0.001 (TensorFlow's default, which torchvision keeps); the paper does not give one.
- `small_input=True` (the registry's choice below 64 pixels) runs the first convolution and the first stride-2
  bneck with stride 1, so that 32 px inputs end on 4x4 maps rather than 1x1.
- Channels with `width_multiplier` are rounded to multiples of 8 (`make_divisible`), as the reference does.
- Initialisation as torchvision (He normal, fan-out; linear layers N(0, 0.01)); the paper does not give one.
"""

from collections import OrderedDict
from functools import partial

import torch
from torch import nn

from papernets.errors import ModelError
from papernets.models.layers import ConvBNActivation, make_divisible, small_input_strides
from papernets.models.registry import register_model

# Sec. 6.1: "batch-normalization layers with average decay of 0.99"; epsilon from the TensorFlow reference.
BatchNormConv = partial(ConvBNActivation, batch_norm_eps=0.001, batch_norm_momentum=0.01)
ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}  # Tables 1 and 2, column "NL"


class SqueezeExcitation(nn.Module):
    """Sec. 5.3, Fig. 4: global pool, 1x1 conv to 1/4 of the channels, ReLU, 1x1 conv back, hard-sigmoid gate."""

    def __init__(self, channels: int):
        super().__init__()
        squeeze_channels = make_divisible(channels // 4)  # DEVIATION: rounded to a multiple of 8, as the reference
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))  # (B, C, 1, 1)
        return x * scale


class InvertedResidual(nn.Module):
    """Fig. 4: 1x1 expand, k x k depthwise, optional SE, linear 1x1 projection, shortcut when shapes agree."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int, expanded_channels: int,
                 use_squeeze_excitation: bool, activation: type[nn.Module], stride: int):
        super().__init__()
        # "exp size" equal to the input (the first bneck row): no expansion layer, as in the reference.
        self.expand = (BatchNormConv(in_channels, expanded_channels, activation=activation)
                       if expanded_channels != in_channels else nn.Identity())
        self.depthwise = BatchNormConv(expanded_channels, expanded_channels, kernel_size, stride,
                                       groups=expanded_channels, activation=activation)
        self.squeeze_excitation = SqueezeExcitation(expanded_channels) if use_squeeze_excitation else nn.Identity()
        self.project = BatchNormConv(expanded_channels, out_channels, activation=None)
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.squeeze_excitation(self.depthwise(self.expand(x))))
        return x + out if self.use_shortcut else out


class MobileNetV3(nn.Module):
    def __init__(self, table: tuple[tuple, ...], last_channels: int, *, num_classes: int, in_channels: int,
                 width_multiplier: float, small_input: bool, dropout: float):
        super().__init__()
        self.small_input = small_input  # torchvision's weights need the full-size strides (models/interop.py)
        if not width_multiplier > 0:
            raise ModelError(f"MobileNetV3's width_multiplier must be positive, got {width_multiplier}.")
        if not 0 <= dropout < 1:
            raise ModelError(f"MobileNetV3's dropout is a probability in [0, 1), got {dropout}.")

        def scale(channels: int) -> int:
            return make_divisible(channels * width_multiplier)

        # DEVIATION: small_input keeps the resolution in the stem and the first stride-2 bneck (module docstring).
        stem_stride, strides = small_input_strides(2, [s for *_, s in table], small_input)
        self.stem = BatchNormConv(in_channels, scale(STEM_CHANNELS), 3, stem_stride, activation=nn.Hardswish)
        blocks = []
        in_channels = scale(STEM_CHANNELS)
        for (kernel_size, exp_size, out, se, nl, _), s in zip(table, strides):
            blocks.append(InvertedResidual(in_channels, scale(out), kernel_size=kernel_size,
                                           expanded_channels=scale(exp_size), use_squeeze_excitation=se,
                                           activation=ACTIVATIONS[nl], stride=s))
            in_channels = scale(out)
        self.stages = nn.Sequential(*blocks)
        last_conv_channels = 6 * in_channels  # Tables 1 and 2: 960 = 6 x 160 (Large), 576 = 6 x 96 (Small)
        last_channels = scale(last_channels)
        self.head = nn.Sequential(OrderedDict(
            conv=BatchNormConv(in_channels, last_conv_channels, activation=nn.Hardswish),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            fc1=nn.Linear(last_conv_channels, last_channels),  # "conv2d 1x1, NBN" on a 1x1 map
            act=nn.Hardswish(inplace=True),
            dropout=nn.Dropout(dropout),  # Sec. 6.1: "dropout of 0.8" (keep probability)
            fc2=nn.Linear(last_channels, num_classes),
        ))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def torchvision_modules(self, state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
        """torchvision's `mobilenet_v3_large` / `_small` modules and ours (same layers in the same order), for
        models.interop."""
        last = len(self.stages) + 1
        return {"features.0": "stem", **{f"features.{index}": f"stages.{index - 1}" for index in range(1, last)},
                f"features.{last}": "head.conv", "classifier.0": "head.fc1", "classifier.3": "head.fc2"}


STEM_CHANNELS = 16  # Tables 1 and 2: "conv2d, 16, HS, s 2"
# Table 1 (MobileNetV3-Large), the bneck rows; the input size column is at 224 px.
TABLE_1_LARGE = (
    # kernel, exp size, #out, SE, NL, s     input
    (3, 16, 16, False, "RE", 1),        # 112^2 x 16
    (3, 64, 24, False, "RE", 2),        # 112^2 x 16
    (3, 72, 24, False, "RE", 1),        # 56^2 x 24
    (5, 72, 40, True, "RE", 2),         # 56^2 x 24
    (5, 120, 40, True, "RE", 1),        # 28^2 x 40
    (5, 120, 40, True, "RE", 1),        # 28^2 x 40
    (3, 240, 80, False, "HS", 2),       # 28^2 x 40
    (3, 200, 80, False, "HS", 1),       # 14^2 x 80
    (3, 184, 80, False, "HS", 1),       # 14^2 x 80
    (3, 184, 80, False, "HS", 1),       # 14^2 x 80
    (3, 480, 112, True, "HS", 1),       # 14^2 x 80
    (3, 672, 112, True, "HS", 1),       # 14^2 x 112
    (5, 672, 160, True, "HS", 2),       # 14^2 x 112
    (5, 960, 160, True, "HS", 1),       # 7^2 x 160
    (5, 960, 160, True, "HS", 1),       # 7^2 x 160
)
LARGE_LAST_CHANNELS = 1280  # Table 1: "conv2d 1x1, NBN, 1280, HS"
# Table 2 (MobileNetV3-Small), the bneck rows.
TABLE_2_SMALL = (
    # kernel, exp size, #out, SE, NL, s     input
    (3, 16, 16, True, "RE", 2),         # 112^2 x 16
    (3, 72, 24, False, "RE", 2),        # 56^2 x 16
    (3, 88, 24, False, "RE", 1),        # 28^2 x 24
    (5, 96, 40, True, "HS", 2),         # 28^2 x 24
    (5, 240, 40, True, "HS", 1),        # 14^2 x 40
    (5, 240, 40, True, "HS", 1),        # 14^2 x 40
    (5, 120, 48, True, "HS", 1),        # 14^2 x 40
    (5, 144, 48, True, "HS", 1),        # 14^2 x 48
    (5, 288, 96, True, "HS", 2),        # 14^2 x 48
    (5, 576, 96, True, "HS", 1),        # 7^2 x 96
    (5, 576, 96, True, "HS", 1),        # 7^2 x 96
)
SMALL_LAST_CHANNELS = 1024  # Table 2: "conv2d 1x1, NBN, 1024, HS"

PAPER = "Howard et al. 2019, arXiv:1905.02244"


@register_model(paper=f"{PAPER} (Table 1)", input_size=(3, 224, 224), num_classes=1000,
                torchvision_name="mobilenet_v3_large")
def mobilenet_v3_large(*, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False,
                       width_multiplier: float = 1.0, dropout: float = 0.2) -> MobileNetV3:
    return MobileNetV3(TABLE_1_LARGE, LARGE_LAST_CHANNELS, num_classes=num_classes, in_channels=in_channels,
                       width_multiplier=width_multiplier, small_input=small_input, dropout=dropout)


@register_model(paper=f"{PAPER} (Table 2)", input_size=(3, 224, 224), num_classes=1000,
                torchvision_name="mobilenet_v3_small")
def mobilenet_v3_small(*, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False,
                       width_multiplier: float = 1.0, dropout: float = 0.2) -> MobileNetV3:
    return MobileNetV3(TABLE_2_SMALL, SMALL_LAST_CHANNELS, num_classes=num_classes, in_channels=in_channels,
                       width_multiplier=width_multiplier, small_input=small_input, dropout=dropout)

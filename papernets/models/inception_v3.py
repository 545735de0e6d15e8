"""Inception v3 — Szegedy, Vanhoucke, Ioffe, Shlens, Wojna, "Rethinking the Inception Architecture for Computer
Vision", arXiv:1512.00567. Architecture: Table 1 (the outline), Fig. 5 (35x35 modules), Fig. 6 (17x17 modules
with n = 7 factorised into 1x7 and 7x1), Fig. 7 (8x8 modules with expanded filter banks), Fig. 10 (grid-size
reduction), Sec. 4 and Fig. 8 (the auxiliary classifier), Sec. 7 (label smoothing, for the recipe).

The layer widths are those of the model the authors released (TensorFlow's inception_v3, which torchvision
ported), because the paper prints none inside the modules; this is torchvision's `inception_v3` layer for layer:
23,834,568 parameters without the auxiliary head and 27,161,264 with it at 1000 classes, 5.713 G multiply-adds at
299x299. Every convolution is followed by BatchNorm (epsilon 0.001) and ReLU. The auxiliary classifier on the
last 17x17 module is on by default (`aux_logits=True`, as in torchvision); its loss weight is 0.4
(`aux_loss_weights`), the weight of the authors' TensorFlow training code, since the paper states none.
torchvision's pretrained weights expect inputs scaled to [-1, 1] (its builder sets `transform_input=True` to
rescale ImageNet-normalised inputs): normalise with `interop.TORCHVISION_WEIGHTS_NORMALIZATION` (mean 0.5, std 0.5)
instead, which is what `transform_input` computes; the model itself knows nothing of normalisation.

Deviations from the paper:
- The stem after the first max-pool follows the released model, not Table 1: a 1x1 convolution to 80 maps and a
  3x3 one to 192, then a 3x3/2 max-pool, where Table 1 lists three 3x3 convolutions (80, 192 with stride 2, 288).
  The first Inception module therefore takes 35x35x192, not Table 1's 35x35x288.
- The 35x35 modules keep a 5x5 branch beside the two stacked 3x3 convolutions, as released; Fig. 5 shows only
  the stacked 3x3 convolutions. Table 1 counts 5 modules at 17x17 and 3 at 35x35 including the grid reductions;
  the released model has 3 + reduction + 4 + reduction + 2.
- The auxiliary classifier's fully connected layer has no BatchNorm ("BN-auxiliary", Sec. 7) as released.
- Dropout 0.2 before the classifier (keep probability 0.8 in the authors' TensorFlow code; torchvision uses 0.5);
  the final 8x8 average pool is adaptive (to 1x1), so other input sizes pass.
- `small_input=True` (images below 64 px): the first convolution has stride 1 and the stem's two max-pools are
  dropped (28x28 images give 22x22, 10x10 and 4x4 grids for the three module groups; 32x32 gives 26, 12, 5), and
  the auxiliary classifier pools adaptively to the 5x5 its 5x5 convolution needs (1.58 G multiply-adds at 28x28,
  2.28 G at 32x32).
"""

from collections import OrderedDict

import torch
from torch import nn

from papernets.errors import ModelError
from papernets.models.layers import ConvBlock, forward_with_auxiliary_heads
from papernets.models.registry import register_model

PAPER = "Szegedy et al. 2015, arXiv:1512.00567"
AUXILIARY_LOSS_WEIGHT = 0.4     # the authors' TensorFlow training code (inception_model.loss: weight=0.4)
DROPOUT = 0.2                   # the authors' TensorFlow code: dropout_keep_prob=0.8
__all__ = ["InceptionV3", "inception_v3"]


def conv(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *, stride: int = 1,
         padding: int | tuple[int, int] = 0) -> ConvBlock:
    return ConvBlock(in_channels, out_channels, kernel_size, stride=stride, padding=padding, batch_norm=True)


def average_pool_3x3() -> nn.AvgPool2d:
    return nn.AvgPool2d(kernel_size=3, stride=1, padding=1)


class InceptionFigure5(nn.Module):
    """Fig. 5 (35x35 grid): 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3; 3x3 average pool -> 1x1 (pool projection)."""

    def __init__(self, in_channels: int, pool_proj: int):
        super().__init__()
        self.branch_1x1 = conv(in_channels, 64, 1)
        # DEVIATION: the released model keeps this 5x5 branch, which Fig. 5 replaces by two 3x3 convolutions.
        self.branch_5x5 = nn.Sequential(conv(in_channels, 48, 1), conv(48, 64, 5, padding=2))
        self.branch_3x3_double = nn.Sequential(conv(in_channels, 64, 1), conv(64, 96, 3, padding=1),
                                               conv(96, 96, 3, padding=1))
        self.branch_pool = nn.Sequential(average_pool_3x3(), conv(in_channels, pool_proj, 1))
        self.out_channels = 64 + 64 + 96 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch_1x1, self.branch_5x5, self.branch_3x3_double, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class GridReduction35to17(nn.Module):
    """Fig. 10: stride-2 convolution branches beside a stride-2 max-pool, concatenated (35x35 -> 17x17)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch_3x3 = conv(in_channels, 384, 3, stride=2)
        self.branch_3x3_double = nn.Sequential(conv(in_channels, 64, 1), conv(64, 96, 3, padding=1),
                                               conv(96, 96, 3, stride=2))
        self.branch_pool = nn.MaxPool2d(kernel_size=3, stride=2)
        self.out_channels = 384 + 96 + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch_3x3, self.branch_3x3_double, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class InceptionFigure6(nn.Module):
    """Fig. 6 with n = 7 (17x17 grid): a 7x7 convolution factorised into 1x7 and 7x1, once and twice over."""

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.branch_1x1 = conv(in_channels, 192, 1)
        self.branch_7x7 = nn.Sequential(conv(in_channels, width, 1),
                                        conv(width, width, (1, 7), padding=(0, 3)),
                                        conv(width, 192, (7, 1), padding=(3, 0)))
        self.branch_7x7_double = nn.Sequential(conv(in_channels, width, 1),
                                               conv(width, width, (7, 1), padding=(3, 0)),
                                               conv(width, width, (1, 7), padding=(0, 3)),
                                               conv(width, width, (7, 1), padding=(3, 0)),
                                               conv(width, 192, (1, 7), padding=(0, 3)))
        self.branch_pool = nn.Sequential(average_pool_3x3(), conv(in_channels, 192, 1))
        self.out_channels = 4 * 192

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch_1x1, self.branch_7x7, self.branch_7x7_double, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class GridReduction17to8(nn.Module):
    """Fig. 10 at 17x17: 1x1 -> 3x3/2; 1x1 -> 1x7 -> 7x1 -> 3x3/2; 3x3/2 max-pool (17x17 -> 8x8)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch_3x3 = nn.Sequential(conv(in_channels, 192, 1), conv(192, 320, 3, stride=2))
        self.branch_7x7x3 = nn.Sequential(conv(in_channels, 192, 1),
                                          conv(192, 192, (1, 7), padding=(0, 3)),
                                          conv(192, 192, (7, 1), padding=(3, 0)),
                                          conv(192, 192, 3, stride=2))
        self.branch_pool = nn.MaxPool2d(kernel_size=3, stride=2)
        self.out_channels = 320 + 192 + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch_3x3, self.branch_7x7x3, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class SplitConv(nn.Module):
    """Fig. 7: a 1x3 and a 3x1 convolution side by side on the same input, concatenated."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_1x3 = conv(in_channels, out_channels, (1, 3), padding=(0, 1))
        self.conv_3x1 = conv(in_channels, out_channels, (3, 1), padding=(1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv_1x3(x), self.conv_3x1(x)], dim=1)


class InceptionFigure7(nn.Module):
    """Fig. 7 (8x8 grid): the expanded filter bank, whose 3x3 branches end in parallel 1x3 and 3x1 convolutions."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch_1x1 = conv(in_channels, 320, 1)
        self.branch_3x3 = nn.Sequential(conv(in_channels, 384, 1), SplitConv(384, 384))
        self.branch_3x3_double = nn.Sequential(conv(in_channels, 448, 1), conv(448, 384, 3, padding=1),
                                               SplitConv(384, 384))
        self.branch_pool = nn.Sequential(average_pool_3x3(), conv(in_channels, 192, 1))
        self.out_channels = 320 + 2 * 384 + 2 * 384 + 192

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch_1x1, self.branch_3x3, self.branch_3x3_double, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class InceptionAux(nn.Module):
    """Fig. 8: 5x5/3 average pool (17x17 -> 5x5), 1x1 conv 128, 5x5 conv 768 (-> 1x1), FC-classes."""

    def __init__(self, in_channels: int, num_classes: int, *, small_input: bool = False):
        super().__init__()
        # DEVIATION: small_input pools adaptively to the 5x5 that the 5x5 convolution needs.
        self.pool = nn.AdaptiveAvgPool2d(5) if small_input else nn.AvgPool2d(kernel_size=5, stride=3)
        self.conv0 = conv(in_channels, 128, 1)
        self.conv1 = conv(128, 768, 5)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(self.pool(x)))  # (B, 768, 1, 1) at 299x299
        return self.fc(self.flatten(self.global_pool(x)))


class InceptionV3(nn.Module):
    """`stem` (Table 1 up to the 35x35 grid), `stages` (mixed_5b to mixed_7c), `aux_heads` (the auxiliary
    classifier on mixed_6e), `head` (pool, dropout, linear)."""

    def __init__(self, *, num_classes: int, in_channels: int, small_input: bool = False, aux_logits: bool = True,
                 dropout: float = DROPOUT):
        super().__init__()
        self.small_input = small_input  # torchvision's weights need the full-size strides (models/interop.py)
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"Inception v3 dropout must be in [0, 1), got {dropout}: pass a probability such as 0.2.")
        stem = [
            # DEVIATION: small_input uses stride 1 here and drops both max-pools, so 28x28 images pass.
            ("conv_1a", conv(in_channels, 32, 3, stride=1 if small_input else 2)),  # Table 1: conv 3x3/2
            ("conv_2a", conv(32, 32, 3)),                                           # Table 1: conv 3x3/1
            ("conv_2b", conv(32, 64, 3, padding=1)),                                # Table 1: conv padded 3x3/1
            ("pool_3a", nn.MaxPool2d(kernel_size=3, stride=2)),                     # Table 1: pool 3x3/2
            ("conv_3b", conv(64, 80, 1)),        # DEVIATION: released model; Table 1 has conv 3x3/1 here
            ("conv_4a", conv(80, 192, 3)),       # DEVIATION: released model; Table 1 has conv 3x3/2 here
            ("pool_5a", nn.MaxPool2d(kernel_size=3, stride=2)),  # DEVIATION: released model; Table 1: conv 3x3/1
        ]
        self.stem = nn.Sequential(OrderedDict(
            (name, layer) for name, layer in stem if not (small_input and name.startswith("pool"))
        ))
        stages, aux_heads = OrderedDict(), OrderedDict()
        channels = 192
        for name, block, width in TABLE_1:
            stages[name] = block(channels) if width is None else block(channels, width)
            channels = stages[name].out_channels
            if aux_logits and name == AUXILIARY_CLASSIFIER:
                aux_heads[name] = InceptionAux(channels, num_classes, small_input=small_input)
        self.stages = nn.Sequential(stages)
        self.aux_heads = nn.ModuleDict(aux_heads)
        self.aux_loss_weights = (AUXILIARY_LOSS_WEIGHT,) * len(aux_heads)
        self.head = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1),  # DEVIATION: Table 1's pool 8x8, adaptive for other sizes
            dropout=nn.Dropout(dropout),
            flatten=nn.Flatten(),
            fc=nn.Linear(channels, num_classes),
        ))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's initialisation (the paper states none): normal weights with std 0.1, and 0.01 and 0.001
        for the auxiliary classifier's 5x5 convolution and linear layer, truncated at +-2."""
        special = {module: std for head in self.aux_heads.values()
                   for module, std in ((head.conv1.conv, 0.01), (head.fc, 0.001))}
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, std=special.get(module, 0.1), a=-2.0, b=2.0)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return forward_with_auxiliary_heads(self, x)

    def torchvision_modules(self, state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
        """torchvision's inception_v3 modules and ours (`Mixed_5b` -> `stages.mixed_5b`), for models.interop."""
        modules = {
            "Conv2d_1a_3x3": "stem.conv_1a", "Conv2d_2a_3x3": "stem.conv_2a", "Conv2d_2b_3x3": "stem.conv_2b",
            "Conv2d_3b_1x1": "stem.conv_3b", "Conv2d_4a_3x3": "stem.conv_4a",
            "AuxLogits": f"aux_heads.{AUXILIARY_CLASSIFIER}", "fc": "head.fc",
        }
        modules |= {name.capitalize(): f"stages.{name}" for name, _, _ in TABLE_1}
        return modules


# Table 1 from "3xInception" on, with the blocks and widths of the released model: name, block, width (the
# pool projection of a Fig. 5 module, the 1x7/7x1 width of a Fig. 6 module). Grids at 299x299 on the right.
TABLE_1 = (
    ("mixed_5b", InceptionFigure5, 32),         # 3 x Inception, Fig. 5    35x35x256
    ("mixed_5c", InceptionFigure5, 64),         #                          35x35x288
    ("mixed_5d", InceptionFigure5, 64),         #                          35x35x288
    ("mixed_6a", GridReduction35to17, None),    # grid reduction, Fig. 10  17x17x768
    ("mixed_6b", InceptionFigure6, 128),        # 5 x Inception, Fig. 6    17x17x768
    ("mixed_6c", InceptionFigure6, 160),        #                          17x17x768
    ("mixed_6d", InceptionFigure6, 160),        #                          17x17x768
    ("mixed_6e", InceptionFigure6, 192),        #                          17x17x768
    ("mixed_7a", GridReduction17to8, None),     # grid reduction, Fig. 10  8x8x1280
    ("mixed_7b", InceptionFigure7, None),       # 2 x Inception, Fig. 7    8x8x2048
    ("mixed_7c", InceptionFigure7, None),       #                          8x8x2048
)
AUXILIARY_CLASSIFIER = "mixed_6e"   # Sec. 4 / Fig. 8: on top of the last 17x17 layer


@register_model(paper=PAPER, input_size=(3, 299, 299), num_classes=1000, torchvision_name="inception_v3")
def inception_v3(*, num_classes: int, in_channels: int, small_input: bool = False, aux_logits: bool = True,
                 dropout: float = DROPOUT) -> InceptionV3:
    return InceptionV3(num_classes=num_classes, in_channels=in_channels, small_input=small_input,
                       aux_logits=aux_logits, dropout=dropout)

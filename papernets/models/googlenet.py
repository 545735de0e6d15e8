"""GoogLeNet (Inception v1) — Szegedy et al., "Going Deeper with Convolutions", arXiv:1409.4842.
Architecture: Table 1 (every layer), Fig. 2(b) (the Inception module with dimension reductions), Fig. 3 (the
whole network, with its LocalRespNorm layers), Sec. 5 (the auxiliary classifiers and the main head).

`googlenet` is the paper's network: ReLU after every convolution, the "#5x5" branch with 5x5 kernels, Local
Response Normalisation where Fig. 3 has it, and two auxiliary classifiers on inception (4a) and (4d): average
pool 5x5/3, 1x1 convolution with 128 filters, FC-1024, dropout 70%, FC-classes, their losses weighted 0.3
(Sec. 5). Main head: average pool, dropout 40%, FC-classes. 6,998,552 parameters without the auxiliary heads at
1000 classes (6,990,272 weights and 8,280 biases). Table 1 counts parameters in K = 1024 (159K for (3a), whose
shapes give 163,328 = 159.5 x 1024), which is why its column sums to about 6.8M (6,998,552 / 1024 = 6,834K).
1.583 G multiply-adds at 224x224; Table 1's ops column sums to 1.502 G, and the difference lies in the conv1 row
(Table 1: 34M; its shapes, 64 kernels of 7x7x3 at 112x112, give 118M).

`googlenet_bn` is torchvision's `googlenet`, layer for layer, so that torchvision's weights load into it:
6,624,904 parameters without the auxiliary heads (13,004,888 with), 1.498 G multiply-adds. Its departures from
the paper are the rows of `VARIANTS` marked `# DEVIATION:`. torchvision's pretrained weights were ported from
a model trained on inputs scaled to [-1, 1]; torchvision's builder then sets `transform_input=True`, which
turns ImageNet-normalised inputs into that scale inside the model. Models here know nothing of data
normalisation: give such weights inputs normalised with `interop.TORCHVISION_WEIGHTS_NORMALIZATION` (mean 0.5, std
0.5 per channel), which is exactly what `transform_input` computes.

Deviations from the paper (both variants):
- The main head's average pool is adaptive (to 1x1): it is the paper's 7x7/1 pool at 224x224 and lets other
  input sizes through.
- `small_input=True` (images below 64 px): the stem keeps full resolution (conv1 with stride 1, no max-pools), so
  that a 28x28 image reaches inception (3a) at 28x28 as in Table 1 and every later stage, the auxiliary
  classifiers included, sees the paper's grid (32x32 inputs: 32, 16, 8). This costs about as much as the
  paper's network at 224x224 (1.20 G multiply-adds at 28x28, 1.58 G at 32x32).

The max-pools round up (`ceil_mode`, as Caffe's pooling does), which Table 1's sizes need (112 -> 56).
The paper states no initialisation: weights are Glorot-uniform with zero biases (googlenet_bn: torchvision's
truncated normal, std 0.01).
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from papernets.errors import ModelError
from papernets.models.layers import ConvBlock, forward_with_auxiliary_heads
from papernets.models.registry import register_model

PAPER = "Szegedy et al. 2014, arXiv:1409.4842"
AUXILIARY_LOSS_WEIGHT = 0.3     # Sec. 5: "their loss was added to the total loss with a discount weight of 0.3"
AUXILIARY_REDUCTION = 128       # Sec. 5: 1x1 convolution with 128 filters
AUXILIARY_HIDDEN = 1024         # Sec. 5: fully connected layer with 1024 units
AUXILIARY_DROPOUT = 0.7         # Sec. 5: dropout layer with 70% ratio of dropped outputs
AUXILIARY_GRID = 4              # Sec. 5: average pooling 5x5/3 gives 4x4x512 for (4a) and 4x4x528 for (4d)
# The paper gives no LRN parameters; these are the BVLC Caffe reference model's (bvlc_googlenet): 5 maps,
# alpha 1e-4 (Caffe and PyTorch both divide it by the size), beta 0.75, k 1.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 1.0


class InceptionRow(NamedTuple):
    """The columns of Table 1 that define an Inception module."""
    conv_1x1: int        # "#1x1"
    reduce_3x3: int      # "#3x3 reduce"
    conv_3x3: int        # "#3x3"
    reduce_5x5: int      # "#5x5 reduce"
    conv_5x5: int        # "#5x5"
    pool_proj: int       # "pool proj"


class InceptionModule(nn.Module):
    """Fig. 2(b): 1x1, 1x1 -> 3x3, 1x1 -> 5x5 and 3x3 max-pool -> 1x1 branches, concatenated along channels."""

    def __init__(self, in_channels: int, row: InceptionRow, *, wide_kernel: int = 5, batch_norm: bool = False):
        super().__init__()
        self.branch_1x1 = ConvBlock(in_channels, row.conv_1x1, 1, batch_norm=batch_norm)
        self.branch_3x3 = nn.Sequential(
            ConvBlock(in_channels, row.reduce_3x3, 1, batch_norm=batch_norm),
            ConvBlock(row.reduce_3x3, row.conv_3x3, 3, padding=1, batch_norm=batch_norm),
        )
        self.branch_5x5 = nn.Sequential(
            ConvBlock(in_channels, row.reduce_5x5, 1, batch_norm=batch_norm),
            ConvBlock(row.reduce_5x5, row.conv_5x5, wide_kernel, padding=wide_kernel // 2, batch_norm=batch_norm),
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            ConvBlock(in_channels, row.pool_proj, 1, batch_norm=batch_norm),
        )
        self.out_channels = row.conv_1x1 + row.conv_3x3 + row.conv_5x5 + row.pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch_1x1, self.branch_3x3, self.branch_5x5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class InceptionAux(nn.Module):
    """Sec. 5: the auxiliary classifier (pool to 4x4, 1x1 conv 128, FC-1024, dropout 70%, FC-classes)."""

    def __init__(self, in_channels: int, num_classes: int, *, pool: nn.Module, batch_norm: bool = False):
        super().__init__()
        self.pool = pool
        self.conv = ConvBlock(in_channels, AUXILIARY_REDUCTION, 1, batch_norm=batch_norm)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(AUXILIARY_REDUCTION * AUXILIARY_GRID * AUXILIARY_GRID, AUXILIARY_HIDDEN)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(AUXILIARY_DROPOUT)
        self.fc2 = nn.Linear(AUXILIARY_HIDDEN, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        if x.shape[-2:] != (AUXILIARY_GRID, AUXILIARY_GRID):
            raise ModelError(f"GoogLeNet's auxiliary classifiers need a 4x4 grid after their 5x5/3 pooling, got "
                             f"{tuple(x.shape[-2:])}: train at 224x224 (28x28 or 32x32 with small_input), or "
                             f"pass aux_logits=False.")
        x = self.flatten(self.conv(x))  # (B, 128 * 4 * 4)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


@dataclass(frozen=True)
class GoogLeNetVariant:
    local_response_norm: bool    # Fig. 3: LocalRespNorm after the first max-pool and after the 3x3 conv
    batch_norm: bool             # a BatchNorm after every convolution
    wide_kernel: int             # the kernel of the "#5x5" branch
    pool_4_kernel: int           # the max-pool between inception (4e) and (5a)
    auxiliary_pool: str          # "5x5/3" (Sec. 5) or "adaptive 4x4"
    dropout: float               # the main head's dropout


class GoogLeNet(nn.Module):
    """`stem` (Table 1 up to the second max-pool), `stages` (inception (3a) to (5b) with the max-pools between),
    `aux_heads` (the auxiliary classifiers, by the stage they read), `head` (pool, dropout, linear)."""

    def __init__(self, variant: GoogLeNetVariant, *, num_classes: int, in_channels: int, small_input: bool = False,
                 aux_logits: bool = True):
        super().__init__()
        self.small_input = small_input  # torchvision's weights need the full-size strides (models/interop.py)
        batch_norm = variant.batch_norm
        stem: list[tuple[str, nn.Module]] = [
            # DEVIATION: small_input keeps full resolution (stride 1, no max-pools) so 28x28 reaches (3a) at 28x28.
            ("conv1", ConvBlock(in_channels, 64, 7, stride=1 if small_input else 2, padding=3, batch_norm=batch_norm)),
            ("pool1", nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)),  # Table 1: 56x56x64
            ("norm1", nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)),
            ("conv2_reduce", ConvBlock(64, 64, 1, batch_norm=batch_norm)),  # Table 1: convolution, #3x3 reduce 64
            ("conv2", ConvBlock(64, 192, 3, padding=1, batch_norm=batch_norm)),  # Table 1: 56x56x192
            ("norm2", nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)),
            ("pool2", nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)),  # Table 1: 28x28x192
        ]
        self.stem = nn.Sequential(OrderedDict(
            (name, layer) for name, layer in stem
            if not (small_input and name.startswith("pool")) and (variant.local_response_norm or "norm" not in name)
        ))

        stages, aux_heads = OrderedDict(), OrderedDict()
        channels = 192
        for name, row in TABLE_1:
            if row is None:
                kernel_size = variant.pool_4_kernel if name == "pool4" else 3
                stages[name] = nn.MaxPool2d(kernel_size=kernel_size, stride=2, ceil_mode=True)
                continue
            stages[name] = InceptionModule(channels, row, wide_kernel=variant.wide_kernel, batch_norm=batch_norm)
            channels = stages[name].out_channels
            if aux_logits and name in AUXILIARY_CLASSIFIERS:
                pool = (nn.AvgPool2d(kernel_size=5, stride=3) if variant.auxiliary_pool == "5x5/3"
                        else nn.AdaptiveAvgPool2d(AUXILIARY_GRID))
                aux_heads[name] = InceptionAux(channels, num_classes, pool=pool, batch_norm=batch_norm)
        self.stages = nn.Sequential(stages)
        self.aux_heads = nn.ModuleDict(aux_heads)
        self.aux_loss_weights = (AUXILIARY_LOSS_WEIGHT,) * len(aux_heads)
        self.head = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1),  # DEVIATION: Table 1's avg pool 7x7/1, adaptive for other sizes
            flatten=nn.Flatten(),
            dropout=nn.Dropout(variant.dropout),
            fc=nn.Linear(channels, num_classes),
        ))
        self.reset_parameters(batch_norm)

    def reset_parameters(self, batch_norm: bool) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                if batch_norm:
                    nn.init.trunc_normal_(module.weight, std=0.01, a=-2.0, b=2.0)  # torchvision's googlenet
                else:
                    nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return forward_with_auxiliary_heads(self, x)

    def torchvision_modules(self, state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
        """torchvision's googlenet modules and ours (`inception3a` -> `stages.inception_3a`), for models.interop."""
        if self.stem.conv1.bn is None:
            raise ModelError("torchvision's googlenet has BatchNorm and 3x3 kernels in its '5x5' branch: load its "
                             "weights into googlenet_bn, not googlenet.")
        modules = {"conv1": "stem.conv1", "conv2": "stem.conv2_reduce", "conv3": "stem.conv2", "fc": "head.fc"}
        modules |= {name.replace("_", ""): f"stages.{name}" for name, row in TABLE_1 if row is not None}
        modules |= {f"aux{number}": f"aux_heads.{name}" for number, name in enumerate(AUXILIARY_CLASSIFIERS, 1)}
        return modules


# Table 1 from inception (3a) on: the "#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5" and "pool proj"
# columns of each Inception module; `None` is a "max pool 3x3/2" row.
TABLE_1: tuple[tuple[str, InceptionRow | None], ...] = (
    ("inception_3a", InceptionRow(64, 96, 128, 16, 32, 32)),        # 28x28x256
    ("inception_3b", InceptionRow(128, 128, 192, 32, 96, 64)),      # 28x28x480
    ("pool3", None),                                                # 14x14x480
    ("inception_4a", InceptionRow(192, 96, 208, 16, 48, 64)),       # 14x14x512
    ("inception_4b", InceptionRow(160, 112, 224, 24, 64, 64)),      # 14x14x512
    ("inception_4c", InceptionRow(128, 128, 256, 24, 64, 64)),      # 14x14x512
    ("inception_4d", InceptionRow(112, 144, 288, 32, 64, 64)),      # 14x14x528
    ("inception_4e", InceptionRow(256, 160, 320, 32, 128, 128)),    # 14x14x832
    ("pool4", None),                                                # 7x7x832
    ("inception_5a", InceptionRow(256, 160, 320, 32, 128, 128)),    # 7x7x832
    ("inception_5b", InceptionRow(384, 192, 384, 48, 128, 128)),    # 7x7x1024
)
AUXILIARY_CLASSIFIERS = ("inception_4a", "inception_4d")  # Sec. 5: "on top of the output of the (4a) and (4d)"

VARIANTS = {
    "paper": GoogLeNetVariant(local_response_norm=True, batch_norm=False, wide_kernel=5, pool_4_kernel=3,
                              auxiliary_pool="5x5/3", dropout=0.4),  # Sec. 5: dropout 40% before the linear layer
    "torchvision": GoogLeNetVariant(
        local_response_norm=False,      # DEVIATION: torchvision's googlenet has no LRN (BN replaces it)
        batch_norm=True,                # DEVIATION: BatchNorm after every conv (Ioffe & Szegedy 2015)
        wide_kernel=3,                  # DEVIATION: 3x3 in the "5x5" branch, torchvision's known bug (vision#906)
        pool_4_kernel=2,                # DEVIATION: torchvision pools 2x2/2 before (5a); the same 7x7 at 224x224
        auxiliary_pool="adaptive 4x4",  # DEVIATION: torchvision pools adaptively to 4x4 (4x4/3 at 14x14)
        dropout=0.2,                    # DEVIATION: torchvision's default dropout
    ),
}


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000)
def googlenet(*, num_classes: int, in_channels: int, small_input: bool = False, aux_logits: bool = True) -> GoogLeNet:
    return GoogLeNet(VARIANTS["paper"], num_classes=num_classes, in_channels=in_channels, small_input=small_input,
                     aux_logits=aux_logits)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="googlenet")
def googlenet_bn(*, num_classes: int, in_channels: int, small_input: bool = False,
                 aux_logits: bool = True) -> GoogLeNet:
    return GoogLeNet(VARIANTS["torchvision"], num_classes=num_classes, in_channels=in_channels,
                     small_input=small_input, aux_logits=aux_logits)

"""VGG — Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
arXiv:1409.1556. Architecture: Sec. 2.1-2.2 and Table 1 (configurations A, A-LRN, B, C, D, E); training and
initialisation: Sec. 3.1.

Every "convK-C" of Table 1 is a KxK convolution with C filters, stride 1 and the padding that keeps the
spatial size (1 pixel for 3x3, none for 1x1), followed by ReLU; every "maxpool" is 2x2 with stride 2. The
head is FC-4096, FC-4096, FC-classes, with dropout 0.5 on the first two (Sec. 3.1). A-LRN puts Local Response
Normalisation after the first layer, with the parameters of Krizhevsky et al. 2012, Sec. 3.3 (Sec. 2.2 of
this paper). Parameters at 1000 classes: vgg11 132,863,336; vgg13 133,047,848; vgg16_c 133,638,952; vgg16
138,357,544; vgg19 143,667,240 (Table 2 rounds them to 133M, 133M, 134M, 138M, 144M).

Deviations from the paper:
- The head starts with an adaptive average pool to 7x7 (torchvision's layer). At 224x224 it is the identity;
  it lets other input sizes through and torchvision's weights load unchanged. The paper instead evaluates
  larger images densely, with the FC layers turned into convolutions (Sec. 3.2).
- `vgg*_bn`: batch normalisation between every convolution and its ReLU (Ioffe & Szegedy 2015, published
  after this paper), as in torchvision's vgg*_bn.
- Initialisation: Glorot & Bengio (2010) uniform weights, zero biases. The paper's procedure (Sec. 3.1) trains
  configuration A from N(0, 10^-2) weights and starts the deeper nets' first four conv layers and last three FC
  layers from A's trained weights; it adds that it found, after submitting, that Glorot's initialisation trains
  them without that pre-training. Glorot's is that remark, not the procedure the paper's results used.
- `small_input=True` (images below 64 px such as 28x28 or 32x32): the first max-pool is dropped, so that a
  28x28 image passes the other four (28 -> 28 -> 14 -> 7 -> 3 -> 1; 32x32 ends at 2x2), and the head pools to
  1x1 instead of 7x7, so that FC-4096 sees the 512 values of the last map once rather than 49 copies of them.
"""

import re

import torch
from torch import nn

from papernets.errors import ModelError
from papernets.models.registry import register_model

PAPER = "Simonyan & Zisserman 2014, arXiv:1409.1556"
HIDDEN_UNITS = 4096             # Table 1: FC-4096, FC-4096
DROPOUT = 0.5                   # Sec. 3.1: dropout ratio 0.5 on the first two FC layers
HEAD_GRID = 7                   # 224 / 2^5: the last max-pool's output at 224x224
# Krizhevsky et al. 2012, Sec. 3.3: b = a / (k + alpha * sum a^2)^beta over n = 5 adjacent maps, k = 2,
# alpha = 1e-4, beta = 0.75. PyTorch divides alpha by n, so it gets n * alpha.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0
CONV_PATTERN = re.compile(r"conv(\d+)-(\d+)")
TORCHVISION_KEY = re.compile(r"(features|classifier)\.\d+\.\w+")


def make_stage(layers: list[str], in_channels: int, *, batch_norm: bool, pool: bool) -> tuple[nn.Sequential, int]:
    """One stage of Table 1 (its "convK-C" and "LRN" rows in order, then the max-pool) and its out_channels."""
    modules: list[nn.Module] = []
    for layer in layers:
        if layer == "LRN":
            modules.append(nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_SIZE * LRN_ALPHA, beta=LRN_BETA, k=LRN_K))
            continue
        kernel_size, out_channels = map(int, CONV_PATTERN.fullmatch(layer).groups())
        modules.append(nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2))
        if batch_norm:
            modules.append(nn.BatchNorm2d(out_channels))  # DEVIATION: vgg*_bn only (Ioffe & Szegedy 2015)
        modules.append(nn.ReLU(inplace=True))
        in_channels = out_channels
    if pool:
        modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*modules), in_channels


def split_stages(column: list[str]) -> list[list[str]]:
    """Cut a Table 1 column at its "maxpool" rows into the five stages."""
    stages, current = [], []
    for layer in column:
        if layer == "maxpool":
            stages.append(current)
            current = []
        else:
            current.append(layer)
    return stages


class VGG(nn.Module):
    """`features`: the five stages of a Table 1 column (each ends in its max-pool); `head`: the three FC layers."""

    def __init__(self, configuration: str, *, num_classes: int, in_channels: int, batch_norm: bool = False,
                 small_input: bool = False, dropout: float = DROPOUT):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"VGG dropout must be in [0, 1), got {dropout}: pass a probability such as 0.5.")
        self.configuration = configuration
        self.batch_norm = batch_norm
        stages = []
        for index, layers in enumerate(split_stages(TABLE_1[configuration])):
            # DEVIATION: small_input drops the first max-pool so that 28x28 images survive the other four.
            pool = not (small_input and index == 0)
            stage, in_channels = make_stage(layers, in_channels, batch_norm=batch_norm, pool=pool)
            stages.append(stage)
        self.features = nn.Sequential(*stages)
        # DEVIATION: adaptive pooling (identity at 224x224) for other sizes; 1x1 for small inputs.
        grid = 1 if small_input else HEAD_GRID
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(grid),
            nn.Flatten(),
            nn.Linear(in_channels * grid * grid, HIDDEN_UNITS),  # FC-4096
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(HIDDEN_UNITS, HIDDEN_UNITS),  # FC-4096
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(HIDDEN_UNITS, num_classes),  # FC-1000 (the soft-max is in the loss)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot & Bengio (2010) weights, zero biases: the post-submission remark at the end of Sec. 3.1."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                # DEVIATION: the paper's results used N(0, 10^-2) for A and A's weights to start deeper nets.
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def torchvision_modules(self, state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
        """torchvision's `features` / `classifier` and ours, layer for layer in order, for models.interop; weights
        of another configuration are refused here, in VGG's terms."""
        if self.configuration not in TORCHVISION_CONFIGURATIONS:
            raise ModelError(f"VGG configuration {self.configuration} has no torchvision counterpart: load "
                             f"weights into vgg11, vgg13, vgg16 or vgg19 (or their _bn versions) instead.")
        if not all(TORCHVISION_KEY.fullmatch(key) for key in state_dict):
            raise ModelError("This is not a torchvision VGG state dict (keys other than features.<i>.<name> and "
                             "classifier.<i>.<name>): pass the state_dict() of torchvision's vgg builders.")
        ours = [name for name, module in self.named_modules()
                if isinstance(module, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
        theirs = sorted({key.rsplit(".", 1)[0] for key in state_dict},
                        key=lambda layer: (not layer.startswith("features."), int(layer.rsplit(".", 1)[1])))
        if len(theirs) != len(ours):
            raise ModelError(f"The torchvision state dict has {len(theirs)} layers with weights, {self.configuration}"
                             f"{' with BN' if self.batch_norm else ''} has {len(ours)}: load the matching vgg.")
        return dict(zip(theirs, ours))


# Table 1, one column per configuration, from the input upwards; "maxpool" rows end the five stages.
TABLE_1 = {
    "A": ["conv3-64", "maxpool",
          "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "maxpool"],
    "A-LRN": ["conv3-64", "LRN", "maxpool",
              "conv3-128", "maxpool",
              "conv3-256", "conv3-256", "maxpool",
              "conv3-512", "conv3-512", "maxpool",
              "conv3-512", "conv3-512", "maxpool"],
    "B": ["conv3-64", "conv3-64", "maxpool",
          "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "maxpool"],
    "C": ["conv3-64", "conv3-64", "maxpool",
          "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "conv1-256", "maxpool",
          "conv3-512", "conv3-512", "conv1-512", "maxpool",
          "conv3-512", "conv3-512", "conv1-512", "maxpool"],
    "D": ["conv3-64", "conv3-64", "maxpool",
          "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "maxpool"],
    "E": ["conv3-64", "conv3-64", "maxpool",
          "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "conv3-512", "maxpool"],
}
TORCHVISION_CONFIGURATIONS = ("A", "B", "D", "E")


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="vgg11")
def vgg11(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("A", num_classes=num_classes, in_channels=in_channels, small_input=small_input, dropout=dropout)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000)
def vgg11_lrn(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("A-LRN", num_classes=num_classes, in_channels=in_channels, small_input=small_input, dropout=dropout)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="vgg13")
def vgg13(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("B", num_classes=num_classes, in_channels=in_channels, small_input=small_input, dropout=dropout)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000)
def vgg16_c(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("C", num_classes=num_classes, in_channels=in_channels, small_input=small_input, dropout=dropout)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="vgg16")
def vgg16(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("D", num_classes=num_classes, in_channels=in_channels, small_input=small_input, dropout=dropout)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="vgg19")
def vgg19(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("E", num_classes=num_classes, in_channels=in_channels, small_input=small_input, dropout=dropout)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="vgg11_bn")
def vgg11_bn(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("A", num_classes=num_classes, in_channels=in_channels, batch_norm=True, small_input=small_input,
               dropout=dropout)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="vgg13_bn")
def vgg13_bn(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("B", num_classes=num_classes, in_channels=in_channels, batch_norm=True, small_input=small_input,
               dropout=dropout)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="vgg16_bn")
def vgg16_bn(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("D", num_classes=num_classes, in_channels=in_channels, batch_norm=True, small_input=small_input,
               dropout=dropout)


@register_model(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="vgg19_bn")
def vgg19_bn(*, num_classes: int, in_channels: int, small_input: bool = False, dropout: float = DROPOUT) -> VGG:
    return VGG("E", num_classes=num_classes, in_channels=in_channels, batch_norm=True, small_input=small_input,
               dropout=dropout)

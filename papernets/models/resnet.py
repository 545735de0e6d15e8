"""Deep Residual Learning for Image Recognition — He, Zhang, Ren, Sun, arXiv:1512.03385.

The ImageNet networks follow Table 1 (18, 34, 50, 101 and 152 layers); the CIFAR-10 networks follow Sec. 4.2
(depth 6n+2: a 3x3 convolution, then 3 stages of n basic blocks with 16/32/64 filters on 32/16/8 maps, global
average pooling and a 10-way fully connected layer). Sec. 3.3, Eq. (1): y = F(x, {W_i}) + x, and Eq. (2):
y = F(x, {W_i}) + W_s x where the shapes change. Shortcut options (Sec. 3.3, Table 3): A = identity with zero
padding for the extra channels, B = projections where the shapes change, C = projections everywhere. The ImageNet
networks default to B (the paper's choice for 50/101/152 layers and its Table 3 entry for 34; its Table 2
comparison of 18/34 layers used A, available as `shortcut="A"`); the CIFAR networks use A, as in Sec. 4.2.
BatchNorm after every convolution and before the activation (Sec. 3.4); He initialisation (Sec. 3.4, citing
He et al. 2015, "Delving Deep into Rectifiers").

The text says that conv3_1, conv4_1 and conv5_1 downsample with stride 2; in a bottleneck block the stride sits
on the first 1x1 convolution, as in the paper's released models, and this reproduces Table 1's FLOPs (3.86,
7.57, 11.28 G against 3.8, 7.6, 11.3). `v1_5=True` moves it to the 3x3 convolution ("ResNet v1.5", torchvision's
choice): the parameters are the same, but the first 1x1 then runs at full resolution (4.09, 7.80, 11.51 G).
Only with v1_5=True do the outputs equal torchvision's for the same weights; `interop.load_torchvision_state_dict`
loads torchvision weights into either, since the shapes agree.

Deviations from the paper:
- `small_input=True` (the registry's choice below 64 pixels) replaces the 7x7 stride-2 convolution and the
  3x3 max-pool of conv1 with a 3x3 stride-1 convolution, as common CIFAR adaptations of the ImageNet networks
  do: conv2_x..conv5_x then see 32/16/8/4 maps at 32 px instead of 8/4/2/1.
- `v1_5=True` moves the bottleneck stride to the 3x3 convolution (off by default).
- The final fully connected layer keeps PyTorch's default initialisation; the paper does not specify it.
"""

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from papernets.errors import ModelError
from papernets.models.layers import GlobalAveragePool
from papernets.models.registry import register_model

SHORTCUT_OPTIONS = ("A", "B", "C")


class ZeroPadShortcut(nn.Module):
    """Option A (Sec. 3.3): identity, subsampled by the stride, with zero channels padded on."""

    def __init__(self, extra_channels: int, stride: int):
        super().__init__()
        self.extra_channels = extra_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x[:, :, ::stride, ::stride], as a 1x1 average pool: the slice's backward turns a channels_last
        # gradient into NCHW (see layers.GlobalAveragePool for what that costs), the pool's keeps its layout
        x = F.avg_pool2d(x, kernel_size=1, stride=self.stride)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # (B, C + extra, H / stride, W / stride)


def make_shortcut(in_channels: int, out_channels: int, stride: int, option: str) -> nn.Module:
    """Sec. 3.3: identity where the shapes agree (options A, B), else zero padding (A) or a projection W_s (B, C)."""
    shapes_agree = in_channels == out_channels and stride == 1
    if option == "C" or (option == "B" and not shapes_agree):
        return nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
            bn=nn.BatchNorm2d(out_channels),
        ))
    if shapes_agree:
        return nn.Identity()
    return ZeroPadShortcut(out_channels - in_channels, stride)


class BasicBlock(nn.Module):
    """Fig. 5 left: two 3x3 convolutions; the first one carries the stride."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, shortcut: str):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = make_shortcut(in_channels, out_channels, stride, shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(residual))
        residual += self.shortcut(x)  # Sec. 3.3, Eq. (1)/(2): y = F(x) + x (or W_s x)
        return self.relu(residual)


class Bottleneck(nn.Module):
    """Fig. 5 right: 1x1 (reduce), 3x3, 1x1 (restore to 4x the width)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, shortcut: str, stride_on_3x3: bool = False):
        super().__init__()
        out_channels = width * self.expansion
        # DEVIATION: v1_5=True puts the stride on the 3x3, as torchvision; the paper's (default) is the first 1x1.
        stride_1x1, stride_3x3 = (1, stride) if stride_on_3x3 else (stride, 1)
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=stride_1x1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride_3x3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = make_shortcut(in_channels, out_channels, stride, shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.relu(self.bn1(self.conv1(x)))
        residual = self.relu(self.bn2(self.conv2(residual)))
        residual = self.bn3(self.conv3(residual))
        residual += self.shortcut(x)  # Sec. 3.3, Eq. (1)/(2)
        return self.relu(residual)


def make_stem(in_channels: int, out_channels: int, *, kernel_size: int, stride: int, max_pool: bool) -> nn.Sequential:
    layers = OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        bn=nn.BatchNorm2d(out_channels),
        relu=nn.ReLU(inplace=True),
    )
    if max_pool:
        layers["pool"] = nn.MaxPool2d(3, stride=2, padding=1)  # Table 1, conv2_x: 3x3 max pool, stride 2
    return nn.Sequential(layers)


class ResNet(nn.Module):
    """`stem`, then `stages` (one per entry of `stage_blocks`, stride 2 from the second on), then `head`."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], stage_blocks: Mapping[str, int],
                 stage_widths: Sequence[int], *, stem: nn.Sequential, num_classes: int, shortcut: str,
                 block_options: Mapping[str, object] | None = None):
        super().__init__()
        if shortcut not in SHORTCUT_OPTIONS:
            raise ModelError(f"ResNet shortcut must be one of {', '.join(SHORTCUT_OPTIONS)} (Sec. 3.3), "
                             f"got {shortcut!r}.")
        self.stem = stem
        stages = OrderedDict()
        in_channels = stem.conv.out_channels
        for index, ((stage_name, blocks), width) in enumerate(zip(stage_blocks.items(), stage_widths, strict=True)):
            first_stride = 1 if index == 0 else 2  # Table 1: conv3_1, conv4_1, conv5_1 downsample with stride 2
            stage = []
            for block_index in range(blocks):
                stride = first_stride if block_index == 0 else 1
                stage.append(block(in_channels, width, stride, shortcut, **(block_options or {})))
                in_channels = width * block.expansion
            stages[stage_name] = nn.Sequential(*stage)
        self.stages = nn.Sequential(stages)
        self.head = nn.Sequential(OrderedDict(
            pool=GlobalAveragePool(),
            flatten=nn.Flatten(),
            fc=nn.Linear(in_channels, num_classes),
        ))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # Sec. 3.4 cites He et al. 2015: zero-mean Gaussian, std sqrt(2 / n) (their Eq. (14), n = k^2 d)
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def torchvision_modules(self, state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
        """torchvision's ResNet modules and ours (shortcut B: `downsample` is our `shortcut`), for models.interop.
        Outputs match torchvision only with v1_5=True, so the paper's bottleneck layout refuses them."""
        if any(isinstance(block, Bottleneck) and block.conv1.stride != (1, 1) for stage in self.stages for block in stage):
            raise ModelError("torchvision's ResNet weights are ResNet v1.5 (stride on the 3x3 conv); this model has "
                             "the paper's layout (stride on the first 1x1), where the same weights compute something "
                             "else: build it with v1_5=True (papernets train: --set model_options.v1_5=true).")
        stages = {f"layer{index}": f"stages.{name}" for index, (name, _) in enumerate(self.stages.named_children(), 1)}
        return {"conv1": "stem.conv", "bn1": "stem.bn", **stages, "fc": "head.fc"}


# Table 1: the block and its number of repeats in each stage, for each depth ("layer name" columns).
IMAGENET_TABLE = {
    # depth:      block        conv2_x conv3_x conv4_x conv5_x
    "18-layer": (BasicBlock, (2, 2, 2, 2)),
    "34-layer": (BasicBlock, (3, 4, 6, 3)),
    "50-layer": (Bottleneck, (3, 4, 6, 3)),
    "101-layer": (Bottleneck, (3, 4, 23, 3)),
    "152-layer": (Bottleneck, (3, 8, 36, 3)),
}
IMAGENET_STAGE_NAMES = ("conv2_x", "conv3_x", "conv4_x", "conv5_x")
IMAGENET_STAGE_WIDTHS = (64, 128, 256, 512)  # Table 1: filters of each stage's 3x3 convolutions
# Sec. 4.2: three stages with {16, 32, 64} filters on maps of 32x32, 16x16, 8x8 (the paper does not name them).
CIFAR_STAGE_NAMES = ("stage1", "stage2", "stage3")
CIFAR_STAGE_WIDTHS = (16, 32, 64)


def imagenet_resnet(depth: str, *, num_classes: int, in_channels: int, small_input: bool, v1_5: bool,
                    shortcut: str) -> ResNet:
    """A Table 1 network; `depth` is a column name of Table 1, e.g. "50-layer"."""
    block, blocks_per_stage = IMAGENET_TABLE[depth]
    if small_input:
        # DEVIATION: 3x3 stride-1 conv1 without max-pool for images below 64 px (keeps 4x more resolution).
        stem = make_stem(in_channels, 64, kernel_size=3, stride=1, max_pool=False)
    else:
        stem = make_stem(in_channels, 64, kernel_size=7, stride=2, max_pool=True)  # Table 1, conv1: 7x7, 64, /2
    block_options = {"stride_on_3x3": v1_5} if block is Bottleneck else {}  # basic blocks have no 1x1 to stride
    return ResNet(block, dict(zip(IMAGENET_STAGE_NAMES, blocks_per_stage)), IMAGENET_STAGE_WIDTHS, stem=stem,
                  num_classes=num_classes, shortcut=shortcut, block_options=block_options)


def cifar_resnet(depth: int, *, num_classes: int, in_channels: int, shortcut: str) -> ResNet:
    """Sec. 4.2: 6n + 2 layers, n basic blocks per stage."""
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ModelError(f"A CIFAR ResNet has depth 6n + 2 with n >= 1 (Sec. 4.2), e.g. 20, 32, 56; got {depth}.")
    blocks = (depth - 2) // 6
    stem = make_stem(in_channels, 16, kernel_size=3, stride=1, max_pool=False)  # Sec. 4.2: "first layer is 3x3"
    return ResNet(BasicBlock, dict.fromkeys(CIFAR_STAGE_NAMES, blocks), CIFAR_STAGE_WIDTHS, stem=stem,
                  num_classes=num_classes, shortcut=shortcut)


IMAGENET_PAPER = "He et al. 2015, arXiv:1512.03385 (Table 1)"
CIFAR_PAPER = "He et al. 2015 (CIFAR, Sec. 4.2)"


@register_model(paper=IMAGENET_PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="resnet18")
def resnet18(*, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, v1_5: bool = False,
             shortcut: str = "B") -> ResNet:
    return imagenet_resnet("18-layer", num_classes=num_classes, in_channels=in_channels, small_input=small_input,
                           v1_5=v1_5, shortcut=shortcut)


@register_model(paper=IMAGENET_PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="resnet34")
def resnet34(*, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, v1_5: bool = False,
             shortcut: str = "B") -> ResNet:
    return imagenet_resnet("34-layer", num_classes=num_classes, in_channels=in_channels, small_input=small_input,
                           v1_5=v1_5, shortcut=shortcut)


@register_model(paper=IMAGENET_PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="resnet50")
def resnet50(*, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, v1_5: bool = False,
             shortcut: str = "B") -> ResNet:
    return imagenet_resnet("50-layer", num_classes=num_classes, in_channels=in_channels, small_input=small_input,
                           v1_5=v1_5, shortcut=shortcut)


@register_model(paper=IMAGENET_PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="resnet101")
def resnet101(*, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, v1_5: bool = False,
              shortcut: str = "B") -> ResNet:
    return imagenet_resnet("101-layer", num_classes=num_classes, in_channels=in_channels, small_input=small_input,
                           v1_5=v1_5, shortcut=shortcut)


@register_model(paper=IMAGENET_PAPER, input_size=(3, 224, 224), num_classes=1000, torchvision_name="resnet152")
def resnet152(*, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, v1_5: bool = False,
              shortcut: str = "B") -> ResNet:
    return imagenet_resnet("152-layer", num_classes=num_classes, in_channels=in_channels, small_input=small_input,
                           v1_5=v1_5, shortcut=shortcut)


@register_model(paper=CIFAR_PAPER, input_size=(3, 32, 32), num_classes=10)
def resnet20(*, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> ResNet:
    return cifar_resnet(20, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)


@register_model(paper=CIFAR_PAPER, input_size=(3, 32, 32), num_classes=10)
def resnet32(*, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> ResNet:
    return cifar_resnet(32, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)


@register_model(paper=CIFAR_PAPER, input_size=(3, 32, 32), num_classes=10)
def resnet44(*, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> ResNet:
    return cifar_resnet(44, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)


@register_model(paper=CIFAR_PAPER, input_size=(3, 32, 32), num_classes=10)
def resnet56(*, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> ResNet:
    return cifar_resnet(56, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)


@register_model(paper=CIFAR_PAPER, input_size=(3, 32, 32), num_classes=10)
def resnet110(*, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> ResNet:
    return cifar_resnet(110, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)


@register_model(paper=CIFAR_PAPER, input_size=(3, 32, 32), num_classes=10)
def resnet1202(*, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> ResNet:
    return cifar_resnet(1202, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)

"""What each paper prints about its network, transcribed as data: the "paper" side of `papernets verify`.

These tables are copied from the papers' pages, not from the tables the models are built from, so that a wrong
number in a model file shows up as a difference (`papernets verify`, papernets.analysis.certificate). A row
holds the paper's cell as printed, the module of ours that implements it, and the figures the paper prints for
it: output or input size as (C, H, W), parameters and multiply-adds as printed ("2.7K", "1,516"; a figure
matches when ours is within one unit of its last printed digit), and the convolutions the cell names.

Where a printed figure is known to disagree with the paper's own network (a typo, an inconsistent column, a
table that differs from the released model), `KNOWN_DISCREPANCIES` says why; the certificate shows the
difference and does not fail on it.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Conv:
    """A convolution as a cell names it: kernel side, output channels, and stride and depthwise where printed."""
    kernel: int
    out_channels: int
    stride: int | None = None
    depthwise: bool = False


@dataclass(frozen=True)
class Row:
    cell: str                                  # the paper's cell, as printed
    modules: tuple[str, ...]                   # our module(s) implementing it, in forward order
    output: tuple[int, ...] | None = None      # printed output size (C, H, W)
    input: tuple[int, ...] | None = None       # printed input size (C, H, W)
    params: str | None = None                  # printed parameter count
    ops: str | None = None                     # printed multiply-adds (LeNet-5: connections)
    convs: tuple[Conv, ...] | None = None      # the convolutions the cell names, in forward order
    squeeze_excitation: bool | None = None     # MobileNet v3's "SE" column


@dataclass(frozen=True)
class Total:
    quantity: str                              # "params" or "ops"
    printed: str
    source: str


@dataclass(frozen=True)
class PaperTable:
    source: str                                # paper, table and page
    input_size: tuple[int, int, int]
    rows: tuple[Row, ...]
    totals: tuple[Total, ...] = ()
    ops_name: str = "multiply-adds"
    num_classes: int = 1000
    options: dict = field(default_factory=dict)  # builder options that select the paper's network


def row(cell, modules, **figures) -> Row:
    return Row(cell, (modules,) if isinstance(modules, str) else tuple(modules), **figures)


# ------------------------------------------------------------------------------------------------- LeNet-5
# LeCun et al. 1998, Proc. IEEE 86(11), Sec. II.B (pp. 2283-2284) and Fig. 2: each layer's maps, trainable
# parameters and connections as the text states them; the total ("340,908 connections, but only 60,000
# trainable free parameters") from the same section.
LENET5_SOURCE = "LeCun et al. 1998, Proc. IEEE, Sec. II.B and Fig. 2 (pp. 2283-2284)"


def lenet5_rows(c5_module: str, output_module: str) -> tuple[Row, ...]:
    return (
        row("C1: 6 feature maps 28x28, 5x5 neighborhoods", "features.c1", output=(6, 28, 28), params="156",
            ops="122,304", convs=(Conv(5, 6, 1),)),
        row("S2: 6 feature maps 14x14, 2x2 subsampling", "features.s2", output=(6, 14, 14), params="12",
            ops="5,880"),
        row("C3: 16 feature maps 10x10, 5x5 neighborhoods (Table I)", "features.c3", output=(16, 10, 10),
            params="1,516", ops="151,600"),
        row("S4: 16 feature maps 5x5, 2x2 subsampling", "features.s4", output=(16, 5, 5), params="32",
            ops="2,000"),
        row("C5: 120 feature maps 1x1, 5x5 neighborhoods", c5_module, output=(120, 1, 1), params="48,120",
            ops="48,120"),
        row("F6: 84 units, fully connected", "head.f6", output=(84,), params="10,164", ops="10,164"),
        row("Output: 10 Euclidean RBF units, 84 inputs each", output_module, output=(10,), params="0"),
    )


LENET5_TOTALS = (Total("params", "60,000", LENET5_SOURCE), Total("ops", "340,908", LENET5_SOURCE))

# ----------------------------------------------------------------------------------------------------- VGG
# Simonyan & Zisserman, arXiv:1409.1556, Table 1 (ConvNet configurations, p. 3) as printed, one entry per
# column, "|" between the blocks that a max-pool closes; Table 2 (number of parameters, in millions, p. 3).
VGG_SOURCE = "Simonyan & Zisserman 2014, arXiv:1409.1556, Tables 1 and 2 (p. 3)"
VGG_TABLE_1 = {
    "A": "conv3-64 | conv3-128 | conv3-256 conv3-256 | conv3-512 conv3-512 | conv3-512 conv3-512",
    "A-LRN": "conv3-64 LRN | conv3-128 | conv3-256 conv3-256 | conv3-512 conv3-512 | conv3-512 conv3-512",
    "B": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 | conv3-512 conv3-512 | "
         "conv3-512 conv3-512",
    "C": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 conv1-256 | "
         "conv3-512 conv3-512 conv1-512 | conv3-512 conv3-512 conv1-512",
    "D": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 conv3-256 | "
         "conv3-512 conv3-512 conv3-512 | conv3-512 conv3-512 conv3-512",
    "E": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 conv3-256 conv3-256 | "
         "conv3-512 conv3-512 conv3-512 conv3-512 | conv3-512 conv3-512 conv3-512 conv3-512",
}
VGG_TABLE_2_MILLIONS = {"A": "133M", "A-LRN": "133M", "B": "133M", "C": "134M", "D": "138M", "E": "144M"}


def vgg_table(configuration: str) -> PaperTable:
    rows = []
    for index, block in enumerate(VGG_TABLE_1[configuration].split("|")):
        cells = block.split()
        convs = tuple(Conv(int(cell[4]), int(cell.split("-")[1])) for cell in cells if cell.startswith("conv"))
        rows.append(row(f"{' '.join(cells)}, maxpool", f"features.{index}", convs=convs))
    rows += [row("FC-4096", "head.2", output=(4096,)), row("FC-4096", "head.5", output=(4096,)),
             row("FC-1000", "head.8", output=(1000,))]
    return PaperTable(VGG_SOURCE, (3, 224, 224), tuple(rows),
                      totals=(Total("params", VGG_TABLE_2_MILLIONS[configuration], VGG_SOURCE + ", Table 2"),))


# ----------------------------------------------------------------------------------------------- GoogLeNet
# Szegedy et al., arXiv:1409.4842, Table 1 (p. 6): type, output size, #1x1, #3x3 reduce, #3x3, #5x5 reduce,
# #5x5, pool proj, params, ops. The 1.5 billion multiply-adds: Sec. 1 ("a computational budget of 1.5 billion
# multiply-adds at inference time").
GOOGLENET_SOURCE = "Szegedy et al. 2014, arXiv:1409.4842, Table 1 (p. 6)"


def inception(name, output, columns, params, ops) -> Row:
    n1, r3, n3, r5, n5, pool_projection = columns
    convs = (Conv(1, n1), Conv(1, r3), Conv(3, n3), Conv(1, r5), Conv(5, n5), Conv(1, pool_projection))
    return row(f"inception ({name}): {' '.join(map(str, columns))}", f"stages.inception_{name}", output=output,
               params=params, ops=ops, convs=convs)


GOOGLENET_ROWS = (
    row("convolution 7x7/2", "stem.conv1", output=(64, 112, 112), params="2.7K", ops="34M", convs=(Conv(7, 64, 2),)),
    row("max pool 3x3/2", "stem.pool1", output=(64, 56, 56)),
    row("convolution 3x3/1 (#3x3 reduce 64, #3x3 192)", ("stem.conv2_reduce", "stem.conv2"), output=(192, 56, 56),
        params="112K", ops="360M", convs=(Conv(1, 64), Conv(3, 192, 1))),
    row("max pool 3x3/2", "stem.pool2", output=(192, 28, 28)),
    inception("3a", (256, 28, 28), (64, 96, 128, 16, 32, 32), "159K", "128M"),
    inception("3b", (480, 28, 28), (128, 128, 192, 32, 96, 64), "380K", "304M"),
    row("max pool 3x3/2", "stages.pool3", output=(480, 14, 14)),
    inception("4a", (512, 14, 14), (192, 96, 208, 16, 48, 64), "364K", "73M"),
    inception("4b", (512, 14, 14), (160, 112, 224, 24, 64, 64), "437K", "88M"),
    inception("4c", (512, 14, 14), (128, 128, 256, 24, 64, 64), "463K", "100M"),
    inception("4d", (528, 14, 14), (112, 144, 288, 32, 64, 64), "580K", "119M"),
    inception("4e", (832, 14, 14), (256, 160, 320, 32, 128, 128), "840K", "170M"),
    row("max pool 3x3/2", "stages.pool4", output=(832, 7, 7)),
    inception("5a", (832, 7, 7), (256, 160, 320, 32, 128, 128), "1072K", "54M"),
    inception("5b", (1024, 7, 7), (384, 192, 384, 48, 128, 128), "1388K", "71M"),
    row("avg pool 7x7/1", "head.pool", output=(1024, 1, 1)),
    row("dropout (40%)", "head.dropout", output=(1024, 1, 1)),
    row("linear", "head.fc", output=(1000, 1, 1), params="1000K", ops="1M"),
)
GOOGLENET_TOTALS = (Total("ops", "1.5G", "Szegedy et al. 2014, arXiv:1409.4842, Sec. 1"),)

# ------------------------------------------------------------------------------------------------- ResNet
# He et al., arXiv:1512.03385, Table 1 (p. 5): output size, the blocks of each stage, FLOPs (multiply-adds).
RESNET_SOURCE = "He et al. 2015, arXiv:1512.03385, Table 1 (p. 5)"
RESNET_TABLE_1 = {  # depth: (bottleneck, blocks per stage, FLOPs as printed)
    "18": (False, (2, 2, 2, 2), "1.8G"),
    "34": (False, (3, 4, 6, 3), "3.6G"),
    "50": (True, (3, 4, 6, 3), "3.8G"),
    "101": (True, (3, 4, 23, 3), "7.6G"),
    "152": (True, (3, 8, 36, 3), "11.3G"),
}


def resnet_table(depth: str) -> PaperTable:
    bottleneck, blocks, flops = RESNET_TABLE_1[depth]
    rows = [row("conv1: 7x7, 64, stride 2", "stem.conv", output=(64, 112, 112), convs=(Conv(7, 64, 2),)),
            row("3x3 max pool, stride 2", "stem.pool", output=(64, 56, 56))]
    for stage, (count, width, side) in enumerate(zip(blocks, (64, 128, 256, 512), (56, 28, 14, 7)), start=2):
        block = ((Conv(1, width), Conv(3, width), Conv(1, 4 * width)) if bottleneck
                 else (Conv(3, width), Conv(3, width)))
        printed = "; ".join(f"{conv.kernel}x{conv.kernel}, {conv.out_channels}" for conv in block)
        rows.append(row(f"conv{stage}_x: [{printed}] x {count}", f"stages.conv{stage}_x",
                        output=(block[-1].out_channels, side, side), convs=block * count))
    final_width = 2048 if bottleneck else 512
    rows += [row("average pool", "head.pool", output=(final_width, 1, 1)),
             row("1000-d fc, softmax", "head.fc", output=(1000,))]
    return PaperTable(RESNET_SOURCE, (3, 224, 224), tuple(rows), totals=(Total("ops", flops, RESNET_SOURCE),))


# He et al., arXiv:1512.03385, Sec. 4.2 (p. 7): output map size 32x32, 16x16, 8x8; 1+2n, 2n, 2n layers of 16,
# 32, 64 filters; global average pooling, a 10-way fully-connected layer. Parameters: Table 6 (p. 7).
RESNET_CIFAR_SOURCE = "He et al. 2015, arXiv:1512.03385, Sec. 4.2 and Table 6 (p. 7)"
RESNET_CIFAR_TABLE_6_PARAMS = {"20": "0.27M", "32": "0.46M", "44": "0.66M", "56": "0.85M", "110": "1.7M",
                               "1202": "19.4M"}


def resnet_cifar_table(depth: str) -> PaperTable:
    n = (int(depth) - 2) // 6
    rows = [row("first layer: 3x3 convolution, 16 filters", "stem.conv", output=(16, 32, 32),
                convs=(Conv(3, 16, 1),))]
    for stage, (width, side) in enumerate(((16, 32), (32, 16), (64, 8)), start=1):
        rows.append(row(f"{2 * n} layers 3x3, {width} filters, output map size {side}x{side}", f"stages.stage{stage}",
                        output=(width, side, side), convs=(Conv(3, width),) * (2 * n)))
    rows += [row("global average pooling", "head.pool", output=(64, 1, 1)),
             row("10-way fully-connected layer", "head.fc", output=(10,))]
    return PaperTable(RESNET_CIFAR_SOURCE, (3, 32, 32), tuple(rows), num_classes=10,
                      totals=(Total("params", RESNET_CIFAR_TABLE_6_PARAMS[depth], RESNET_CIFAR_SOURCE),))


# ---------------------------------------------------------------------------------------------- MobileNets
# Howard et al., arXiv:1704.04861, Table 1 (p. 4): type / stride, filter shape, input size; totals: Table 8
# (1.0 MobileNet-224: 569 million mult-adds, 4.2 million parameters).
MOBILENET_V1_SOURCE = "Howard et al. 2017, arXiv:1704.04861, Table 1 (p. 4)"


def mobilenet_v1_rows() -> tuple[Row, ...]:
    printed = [  # (stride of the dw row, channels in, channels out of the 1x1 row, input side)
        (1, 32, 64, 112), (2, 64, 128, 112), (1, 128, 128, 56), (2, 128, 256, 56), (1, 256, 256, 28),
        (2, 256, 512, 28), *[(1, 512, 512, 14)] * 5, (2, 512, 1024, 14), (2, 1024, 1024, 7),
    ]
    rows = [row("Conv / s2, 3x3x3x32, input 224x224x3", "stem.conv", input=(3, 224, 224), convs=(Conv(3, 32, 2),))]
    for index, (stride, channels, out_channels, side) in enumerate(printed):
        after = side // stride if index < len(printed) - 1 else side  # the last row's input is printed 7x7
        entry = printed[index]
        repeat = f" ({printed[:index].count(entry) + 1} of 5)" if printed.count(entry) > 1 else ""
        rows += [
            row(f"Conv dw / s{stride}, 3x3x{channels} dw, input {side}x{side}x{channels}{repeat}",
                f"stages.{index}.depthwise.conv", input=(channels, side, side),
                convs=(Conv(3, channels, stride, depthwise=True),)),
            row(f"Conv / s1, 1x1x{channels}x{out_channels}, input {after}x{after}x{channels}{repeat}",
                f"stages.{index}.pointwise.conv", input=(channels, after, after), convs=(Conv(1, out_channels, 1),)),
        ]
    rows += [row("Avg Pool / s1, Pool 7x7, input 7x7x1024", "head.pool", input=(1024, 7, 7)),
             row("FC / s1, 1024x1000, input 1x1x1024", "head.fc", input=(1024, 1, 1), output=(1000,))]
    return tuple(rows)


MOBILENET_V1_TOTALS = (Total("ops", "569M", "Howard et al. 2017, arXiv:1704.04861, Table 8"),
                       Total("params", "4.2M", "Howard et al. 2017, arXiv:1704.04861, Table 8"))

# Sandler et al., arXiv:1801.04381, Table 2 (p. 5): input, operator, t, c, n, s; the bottleneck block of Table 1
# (1x1 conv to t*k channels, 3x3 depthwise with stride s, 1x1 conv to k'); totals: Table 4 (3.4M, 300M).
MOBILENET_V2_SOURCE = "Sandler et al. 2018, arXiv:1801.04381, Tables 1 and 2 (p. 5)"
MOBILENET_V2_TABLE_2 = (  # input side, channels in, t, c, n, s
    (112, 32, 1, 16, 1, 1), (112, 16, 6, 24, 2, 2), (56, 24, 6, 32, 3, 2), (28, 32, 6, 64, 4, 2),
    (14, 64, 6, 96, 3, 1), (14, 96, 6, 160, 3, 2), (7, 160, 6, 320, 1, 1),
)


def bottleneck_convs(channels: int, t: int, c: int, n: int, s: int) -> tuple[Conv, ...]:
    convs = []
    for index in range(n):
        expanded = channels * t
        convs += [Conv(1, expanded)] if t != 1 else []
        convs += [Conv(3, expanded, s if index == 0 else 1, depthwise=True), Conv(1, c)]
        channels = c
    return tuple(convs)


def mobilenet_v2_rows() -> tuple[Row, ...]:
    rows = [row("224^2 x 3, conv2d, c 32, s 2", "stem", input=(3, 224, 224), convs=(Conv(3, 32, 2),))]
    rows += [row(f"{side}^2 x {channels}, bottleneck, t {t}, c {c}, n {n}, s {s}", f"stages.{index}",
                 input=(channels, side, side), output=(c, side // s, side // s),
                 convs=bottleneck_convs(channels, t, c, n, s))
             for index, (side, channels, t, c, n, s) in enumerate(MOBILENET_V2_TABLE_2)]
    rows += [row("7^2 x 320, conv2d 1x1, c 1280", "head.conv", input=(320, 7, 7), convs=(Conv(1, 1280, 1),)),
             row("7^2 x 1280, avgpool 7x7", "head.pool", input=(1280, 7, 7)),
             row("1 x 1 x 1280, conv2d 1x1, c k", "head.fc", input=(1280, 1, 1), output=(1000,))]
    return tuple(rows)


MOBILENET_V2_TOTALS = (Total("ops", "300M", "Sandler et al. 2018, arXiv:1801.04381, Table 4"),
                       Total("params", "3.4M", "Sandler et al. 2018, arXiv:1801.04381, Table 4"))

# Howard et al., arXiv:1905.02244, Table 1 (large) and Table 2 (small), p. 5: input, operator (kernel), exp size,
# #out, SE, NL, s; totals: Table 3 (p. 7).
MOBILENET_V3_SOURCE = "Howard et al. 2019, arXiv:1905.02244, Tables 1 and 2 (p. 5)"
MOBILENET_V3_TABLES = {  # input side, channels in, kernel, exp size, #out, SE, s
    "large": ((112, 16, 3, 16, 16, False, 1), (112, 16, 3, 64, 24, False, 2), (56, 24, 3, 72, 24, False, 1),
              (56, 24, 5, 72, 40, True, 2), (28, 40, 5, 120, 40, True, 1), (28, 40, 5, 120, 40, True, 1),
              (28, 40, 3, 240, 80, False, 2), (14, 80, 3, 200, 80, False, 1), (14, 80, 3, 184, 80, False, 1),
              (14, 80, 3, 184, 80, False, 1), (14, 80, 3, 480, 112, True, 1), (14, 112, 3, 672, 112, True, 1),
              (14, 112, 5, 672, 160, True, 2), (7, 160, 5, 960, 160, True, 1), (7, 160, 5, 960, 160, True, 1)),
    "small": ((112, 16, 3, 16, 16, True, 2), (56, 16, 3, 72, 24, False, 2), (28, 24, 3, 88, 24, False, 1),
              (28, 24, 5, 96, 40, True, 2), (14, 40, 5, 240, 40, True, 1), (14, 40, 5, 240, 40, True, 1),
              (14, 40, 5, 120, 48, True, 1), (14, 48, 5, 144, 48, True, 1), (14, 48, 5, 288, 96, True, 2),
              (7, 96, 5, 576, 96, True, 1), (7, 96, 5, 576, 96, True, 1)),
}
MOBILENET_V3_HEADS = {"large": (160, 960, 1280), "small": (96, 576, 1024)}  # last bneck out, conv2d 1x1, NBN
MOBILENET_V3_TOTALS = {"large": ("219M", "5.4M"), "small": ("56M", "2.5M")}   # Table 3, 1.0 at 224


def mobilenet_v3_table(size: str) -> PaperTable:
    rows = [row("224^2 x 3, conv2d, 16, HS, s 2", "stem", input=(3, 224, 224), convs=(Conv(3, 16, 2),))]
    for index, (side, channels, kernel, expanded, out_channels, se, stride) in enumerate(MOBILENET_V3_TABLES[size]):
        convs = ((Conv(1, expanded),) if expanded != channels else ()) + (
            Conv(kernel, expanded, stride, depthwise=True), Conv(1, out_channels))
        rows.append(row(f"{side}^2 x {channels}, bneck {kernel}x{kernel}, exp {expanded}, out {out_channels}, "
                        f"SE {'yes' if se else '-'}, s {stride}", f"stages.{index}", input=(channels, side, side),
                        output=(out_channels, side // stride, side // stride), convs=convs, squeeze_excitation=se))
    last, wide, hidden = MOBILENET_V3_HEADS[size]
    rows += [row(f"7^2 x {last}, conv2d 1x1, {wide}", "head.conv", input=(last, 7, 7), convs=(Conv(1, wide, 1),)),
             row(f"7^2 x {wide}, pool 7x7", "head.pool", input=(wide, 7, 7)),
             row(f"1^2 x {wide}, conv2d 1x1, NBN, {hidden}", "head.fc1", input=(wide, 1, 1), output=(hidden,)),
             row(f"1^2 x {hidden}, conv2d 1x1, NBN, k", "head.fc2", input=(hidden, 1, 1), output=(1000,))]
    source = "Howard et al. 2019, arXiv:1905.02244, Table 3"
    ops, params = MOBILENET_V3_TOTALS[size]
    return PaperTable(MOBILENET_V3_SOURCE, (3, 224, 224), tuple(rows),
                      totals=(Total("ops", ops, source), Total("params", params, source)))


# ------------------------------------------------------------------------------------------- Inception v3
# Szegedy et al., arXiv:1512.00567, Table 1 (p. 6): type, patch size / stride, input size.
INCEPTION_V3_SOURCE = "Szegedy et al. 2015, arXiv:1512.00567, Table 1 (p. 6)"
INCEPTION_V3_ROWS = (
    row("conv 3x3/2, input 299x299x3", "stem.conv_1a", input=(3, 299, 299), convs=(Conv(3, 32, 2),)),
    row("conv 3x3/1, input 149x149x32", "stem.conv_2a", input=(32, 149, 149), convs=(Conv(3, 32, 1),)),
    row("conv padded 3x3/1, input 147x147x32", "stem.conv_2b", input=(32, 147, 147), convs=(Conv(3, 64, 1),)),
    row("pool 3x3/2, input 147x147x64", "stem.pool_3a", input=(64, 147, 147)),
    row("conv 3x3/1, input 73x73x64", "stem.conv_3b", input=(64, 73, 73), convs=(Conv(3, 80, 1),)),
    row("conv 3x3/2, input 71x71x80", "stem.conv_4a", input=(80, 71, 71), convs=(Conv(3, 192, 2),)),
    row("conv 3x3/1, input 35x35x192", "stem.pool_5a", input=(192, 35, 35)),
    row("3 x Inception (Figure 5), input 35x35x288", ("stages.mixed_5b", "stages.mixed_5c", "stages.mixed_5d"),
        input=(288, 35, 35)),
    row("5 x Inception (Figure 6), input 17x17x768",
        ("stages.mixed_6b", "stages.mixed_6c", "stages.mixed_6d", "stages.mixed_6e"), input=(768, 17, 17)),
    row("2 x Inception (Figure 7), input 8x8x1280", ("stages.mixed_7b", "stages.mixed_7c"), input=(1280, 8, 8)),
    row("pool 8x8, input 8x8x2048", "head.pool", input=(2048, 8, 8)),
    row("linear, logits, input 1x1x2048", "head.fc", input=(2048, 1, 1), output=(1000,)),
)

# ------------------------------------------------------------------------------------------ by model name
PAPER_TABLES: dict[str, PaperTable] = {
    "lenet5": PaperTable(LENET5_SOURCE, (1, 32, 32), lenet5_rows("features.c5", "head.output"),
                         totals=LENET5_TOTALS, ops_name="connections", num_classes=10),
    "lenet5_modern": PaperTable(LENET5_SOURCE, (1, 32, 32), lenet5_rows("head.c5", "head.output"),
                                totals=LENET5_TOTALS, ops_name="connections", num_classes=10),
    **{name: vgg_table(configuration) for name, configuration in (
        ("vgg11", "A"), ("vgg11_bn", "A"), ("vgg11_lrn", "A-LRN"), ("vgg13", "B"), ("vgg13_bn", "B"),
        ("vgg16_c", "C"), ("vgg16", "D"), ("vgg16_bn", "D"), ("vgg19", "E"), ("vgg19_bn", "E"))},
    "googlenet": PaperTable(GOOGLENET_SOURCE, (3, 224, 224), GOOGLENET_ROWS, totals=GOOGLENET_TOTALS),
    "googlenet_bn": PaperTable(GOOGLENET_SOURCE, (3, 224, 224), GOOGLENET_ROWS, totals=GOOGLENET_TOTALS),
    **{f"resnet{depth}": resnet_table(depth) for depth in RESNET_TABLE_1},
    **{f"resnet{depth}": resnet_cifar_table(depth) for depth in RESNET_CIFAR_TABLE_6_PARAMS},
    "mobilenet_v1": PaperTable(MOBILENET_V1_SOURCE, (3, 224, 224), mobilenet_v1_rows(), totals=MOBILENET_V1_TOTALS),
    "mobilenet_v2": PaperTable(MOBILENET_V2_SOURCE, (3, 224, 224), mobilenet_v2_rows(), totals=MOBILENET_V2_TOTALS),
    "mobilenet_v3_large": mobilenet_v3_table("large"),
    "mobilenet_v3_small": mobilenet_v3_table("small"),
    "inception_v3": PaperTable(INCEPTION_V3_SOURCE, (3, 299, 299), INCEPTION_V3_ROWS),
}

# (model pattern, cell pattern (or "total params" / "total ops"), quantity, why the printed figure differs);
# patterns as fnmatch reads them. A known difference is shown with its reason and does not fail verify.
GOOGLENET_CONV1 = ("Table 1 prints 2.7K parameters and 34M ops (= 2.7K x 112 x 112) for this row, but its own kernel "
                   "and depth give 7 x 7 x 3 x 64 = 9,408 weights; the paper does not say how it counted")
GOOGLENET_PARAMS = ("Table 1's params column is not what the row's own channel columns give (those are checked as "
                    "'layers' with the input channels of the row above, and the ops column agrees with them); the "
                    "paper does not say how it counted")
GOOGLENET_TORCHVISION = ("googlenet_bn is torchvision's GoogLeNet: 3x3 kernels in the \"5x5\" branch and BatchNorm "
                         "(deviations stated in googlenet.py; torchvision issue #906)")
INCEPTION_V3_STEM = ("Table 1 differs from the network released with the paper (TF-slim's inception_v3, which "
                     "torchvision ports and whose weights load here): after the 73x73x64 max-pool it has a 1x1 "
                     "convolution to 80, a 3x3 convolution to 192 and a 3x3/2 max-pool, so the Inception blocks start "
                     "from 35x35x192, not 288")
LENET5_MODERN = ("lenet5_modern departs from the paper on purpose: max-pooling, a full C3 and a linear output "
                 "(lenet.py, `# DEVIATION:` lines)")
KNOWN_DISCREPANCIES: tuple[tuple[str, str, str, str], ...] = (
    ("googlenet*", "convolution 7x7/2", "params", GOOGLENET_CONV1),
    ("googlenet*", "convolution 7x7/2", "multiply-adds", GOOGLENET_CONV1),
    ("googlenet*", "convolution 3x3/1 *", "params", GOOGLENET_PARAMS + " (the 360M ops = 114,688 x 56 x 56 agree)"),
    ("googlenet*", "inception (*", "params", GOOGLENET_PARAMS),
    ("googlenet", "inception (5a)*", "multiply-adds", "(5a)'s printed ops, 54M, exceed what its channel columns give "
     "(1,042,432 weights x 7 x 7 = 51.1M), as its printed params do; every other row's ops agree with its columns"),
    ("googlenet*", "linear", "params", "1000K rounds the 1024 x 1000 weights (ours adds 1,000 biases)"),
    ("googlenet_bn", "inception (*", "layers", GOOGLENET_TORCHVISION),
    ("googlenet_bn", "inception (*", "multiply-adds", GOOGLENET_TORCHVISION),
    ("inception_v3", "conv 3x3/1, input 73x73x64", "layers", INCEPTION_V3_STEM),
    ("inception_v3", "conv 3x3/2, input 71x71x80", "input", INCEPTION_V3_STEM),
    ("inception_v3", "conv 3x3/2, input 71x71x80", "layers", INCEPTION_V3_STEM),
    ("inception_v3", "conv 3x3/1, input 35x35x192", "input", INCEPTION_V3_STEM),
    ("inception_v3", "3 x Inception (Figure 5)*", "input", INCEPTION_V3_STEM),
    ("lenet5_modern", "S2:*", "params", LENET5_MODERN),
    ("lenet5_modern", "S2:*", "connections", LENET5_MODERN),
    ("lenet5_modern", "C3:*", "params", LENET5_MODERN),
    ("lenet5_modern", "C3:*", "connections", LENET5_MODERN),
    ("lenet5_modern", "S4:*", "params", LENET5_MODERN),
    ("lenet5_modern", "S4:*", "connections", LENET5_MODERN),
    ("lenet5_modern", "Output:*", "params", LENET5_MODERN),
    ("lenet5_modern", "total params", "params", LENET5_MODERN),
    ("lenet5_modern", "total ops", "connections", LENET5_MODERN),
    ("mobilenet_v1", "Conv dw / s2, 3x3x1024 dw*", "layers", "Table 1 prints s2 on a 7x7 input whose next row is "
     "again 7x7, and Table 8's counts hold only with stride 1; mobilenet_v1.py reads it as s1 (a stated deviation)"),
    ("mobilenet_v2", "total params", "params", "ours equals torchvision's mobilenet_v2 (3,504,872, with the same "
     "logits for the same weights below); that implementation does not give the paper's 3.4M either"),
    ("mobilenet_v3_large", "total ops", "multiply-adds", "ours equals torchvision's mobilenet_v3_large (0.217 G, with "
     "the same logits for the same weights below); that implementation does not give Table 3's 219M either"),
)

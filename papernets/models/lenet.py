"""LeNet-5 — LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document Recognition",
Proc. IEEE 86(11), 1998. Architecture: Sec. II.B and Fig. 2; C3's connections: Table I; squashing function
and initialization: Appendix A.

`lenet5` is the paper's network: C1 (6@5x5) - S2 - C3 (16@5x5, partially connected) - S4 - C5 (120@5x5) -
F6 (84) - Euclidean RBF output with fixed codes. S2 and S4 are trainable subsamplings: the sum of each 2x2
window times one trainable coefficient per map, plus one trainable bias per map. Every unit up to F6 is
followed by the squashing function f(a) = 1.7159 tanh(2a/3). 60,000 trainable parameters at 1 channel.

`lenet5_modern` is the variant most tutorials call LeNet: ReLU, 2x2 max-pooling, C3 connected to all six
maps, and a linear 10-way output. 61,706 parameters at 1 channel.

Both take images of at most 32x32; a smaller one (MNIST's 28x28) is centred in a 32x32 field of background
inside the model (Sec. II.B: "The input is a 32x32 pixel image"; Sec. III.A: the digits are centred in a
larger field). The background is each image's darkest value per channel: pixel 0 of MNIST and Fashion-MNIST,
whatever normalisation the data pipeline applied (the paper's -0.1). Padding with 0 after normalisation would
instead frame every image in the data mean (0.0 against a background of -0.81 on Fashion-MNIST).

Deviations from the paper:
- The RBF output codes are a fixed, seeded random +-1 code of 84 bits per class; the paper draws each
  character's code as a stylised 7x12 bitmap (Fig. 3), printed only as a picture: papernets has no
  transcription of those bitmaps whose source it could cite, so it does not guess them.
- The model returns the negative squared distances -y_i as logits. The `lenet-lecun1998` recipe trains them
  with the MAP criterion of Sec. II.C, Eq. (9), its "rubbish class" term e^-j included (`loss = "map"`); with
  cross-entropy (the other recipes) it is Eq. (9) without that term.
- Input normalization (the paper's background -0.1, foreground 1.175) is left to the data pipeline, so the
  padding's background level is read from each image (its darkest value) instead of being the paper's -0.1.

`lenet5_modern` departs from the paper on purpose (ReLU, max-pooling, full C3, linear output); each change
is marked `# DEVIATION:` on its line.
"""

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from papernets.errors import ModelError
from papernets.models.registry import register_model

PAPER = "LeCun et al. 1998"
INPUT_SIZE = 32                 # Sec. II.B: the input is a 32x32 pixel image
INIT_SCALE = 2.4                # Appendix A: weights uniform in [-2.4/F_i, 2.4/F_i], F_i the fan-in
SQUASH_AMPLITUDE = 1.7159       # Sec. II.B, Eq. (6): f(a) = A tanh(S a); Appendix A: A = 1.7159
SQUASH_SLOPE = 2 / 3            # S = 2/3
RBF_CODE_SEED = 0


class PadTo32(nn.Module):
    """Centres an image of at most 32x32 in a 32x32 field of its background, its darkest value per channel
    (Sec. II.B: 28x28 digits in a 32x32 field)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height > INPUT_SIZE or width > INPUT_SIZE:
            raise ModelError(f"LeNet-5 takes images of at most {INPUT_SIZE}x{INPUT_SIZE} pixels, got "
                             f"{height}x{width}; resize the images or pick a model designed for larger ones.")
        top, left = (INPUT_SIZE - height) // 2, (INPUT_SIZE - width) // 2
        # DEVIATION: the background level is taken from the image (its darkest value), where the paper's
        # normalisation fixes it at -0.1; the pipeline's normalisation is the data's, not the paper's.
        background = x.amin(dim=(-2, -1), keepdim=True)                          # (B, C, 1, 1)
        padding = (left, INPUT_SIZE - width - left, top, INPUT_SIZE - height - top)
        return F.pad(x - background, padding) + background


class ScaledTanh(nn.Module):
    """Sec. II.B, Eq. (6) with Appendix A's constants: f(a) = 1.7159 tanh(2a/3), so that f(+-1) = +-1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return SQUASH_AMPLITUDE * torch.tanh(SQUASH_SLOPE * x)


class TrainableSubsampling(nn.Module):
    """Sec. II.B, layer S2: the sum of each window times one trainable coefficient per map, plus a bias."""

    def __init__(self, channels: int, window: int = 2):
        super().__init__()
        self.window = window
        self.coefficient = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        bound = INIT_SCALE / window**2
        nn.init.uniform_(self.coefficient, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = F.avg_pool2d(x, self.window) * self.window**2
        return window_sum * self.coefficient.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartiallyConnectedConv(nn.Module):
    """Sec. II.B, layer C3: output map j sees only the input maps listed in `connections[j]` (Table I).

    Only connected kernels exist as parameters: one `kernel_size` x `kernel_size` kernel per (input map,
    output map) pair. The forward pass scatters them into a dense (out, in, k, k) kernel whose unconnected
    entries are zero and runs one convolution: one call instead of a gather, a grouped convolution and a sum.
    """

    def __init__(self, connections: list[tuple[int, ...]], kernel_size: int):
        super().__init__()
        source_maps = [source for sources in connections for source in sources]
        target_maps = [target for target, sources in enumerate(connections) for _ in sources]
        self.in_channels = max(source_maps) + 1
        self.out_channels = len(connections)
        self.register_buffer("source_maps", torch.tensor(source_maps), persistent=False)
        self.register_buffer("target_maps", torch.tensor(target_maps), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(source_maps), 1, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        map_bounds = torch.tensor([INIT_SCALE / (len(sources) * kernel_size**2) for sources in connections])
        with torch.no_grad():
            self.weight.uniform_(-1, 1).mul_(map_bounds[self.target_maps].view(-1, 1, 1, 1))
            self.bias.uniform_(-1, 1).mul_(map_bounds)

    def dense_weight(self) -> torch.Tensor:
        """(out, in, k, k): the connected kernels in place, zeros where Table I has no connection."""
        kernel_size = self.weight.shape[-1]
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, kernel_size, kernel_size)
        return dense.index_put((self.target_maps, self.source_maps), self.weight[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)


class FullConnectionConv(nn.Conv2d):
    """Sec. II.B, layer C5: a convolution whose kernels are as large as its input maps (5x5 on S4's 5x5), which
    "amounts to a full connection between S4 and C5"; computed as that full connection, one matrix product, which
    on a CPU takes a fraction of a 5x5 convolution's time at LeNet-5's batch sizes (benchmarks/lenet_speed.py).
    The weight keeps the convolution's (out, in, k, k) shape and the output its (B, out, 1, 1) maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2:] == self.weight.shape[-2:], "C5's kernels cover its whole input maps"
        return F.linear(x.flatten(1), self.weight.flatten(1), self.bias)[..., None, None]      # (B, out, 1, 1)


class EuclideanRBF(nn.Module):
    """Sec. II.B, Eq. (7): y_i = sum_j (x_j - w_ij)^2 with fixed +-1 codes w_i; returns -y as logits."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        generator = torch.Generator().manual_seed(RBF_CODE_SEED)
        # DEVIATION: a seeded random +-1 code per class instead of the paper's 7x12 character bitmaps.
        bits = torch.randint(0, 2, (num_classes, in_features), generator=generator)
        self.register_buffer("codes", bits.float() * 2 - 1)                       # (classes, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ||x - w_i||^2 = ||x||^2 - 2 x.w_i + ||w_i||^2: one matrix product instead of a (B, classes, in) tensor.
        squared_distance = (x.pow(2).sum(-1, keepdim=True) - 2 * x @ self.codes.T
                            + self.codes.pow(2).sum(-1))                           # (B, classes)
        # DEVIATION: logits = -y_i; with cross-entropy that is Eq. (9) without its e^-j term (the MAP loss adds it).
        return -squared_distance


class LeNet5(nn.Module):
    def __init__(self, layers: dict, c3_connections: list[tuple[int, ...]], *, num_classes: int,
                 in_channels: int):
        super().__init__()
        c1, s2, c3, s4, c5, f6 = (layers[name] for name in ("C1", "S2", "C3", "S4", "C5", "F6"))
        assert len(c3_connections) == c3["maps"], "Table I needs one row per C3 map"
        self.features = nn.Sequential(OrderedDict([
            ("pad", PadTo32()),
            ("c1", nn.Conv2d(in_channels, c1["maps"], c1["kernel"])),                 # 6@28x28
            ("c1_squash", ScaledTanh()),
            ("s2", TrainableSubsampling(s2["maps"], s2["kernel"])),                   # 6@14x14
            ("s2_squash", ScaledTanh()),
            ("c3", PartiallyConnectedConv(c3_connections, c3["kernel"])),             # 16@10x10
            ("c3_squash", ScaledTanh()),
            ("s4", TrainableSubsampling(s4["maps"], s4["kernel"])),                   # 16@5x5
            ("s4_squash", ScaledTanh()),
            ("c5", FullConnectionConv(s4["maps"], c5["maps"], c5["kernel"])),         # 120@1x1
            ("c5_squash", ScaledTanh()),
        ]))
        self.head = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("f6", nn.Linear(c5["maps"], f6["maps"])),
            ("f6_squash", ScaledTanh()),
            ("output", EuclideanRBF(f6["maps"], num_classes)),
        ]))
        for layer in (self.features.c1, self.features.c5, self.head.f6):
            fan_in = layer.weight[0].numel()
            nn.init.uniform_(layer.weight, -INIT_SCALE / fan_in, INIT_SCALE / fan_in)
            nn.init.uniform_(layer.bias, -INIT_SCALE / fan_in, INIT_SCALE / fan_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class LeNet5Modern(nn.Module):
    def __init__(self, layers: dict, *, num_classes: int, in_channels: int):
        super().__init__()
        c1, s2, c3, s4, c5, f6 = (layers[name] for name in ("C1", "S2", "C3", "S4", "C5", "F6"))
        self.features = nn.Sequential(OrderedDict([
            ("pad", PadTo32()),
            ("c1", nn.Conv2d(in_channels, c1["maps"], c1["kernel"])),
            ("c1_relu", nn.ReLU(inplace=True)),                                     # DEVIATION: ReLU, not tanh
            ("s2", nn.MaxPool2d(s2["kernel"])),                                     # DEVIATION: max-pooling
            ("c3", nn.Conv2d(s2["maps"], c3["maps"], c3["kernel"])),                # DEVIATION: full C3
            ("c3_relu", nn.ReLU(inplace=True)),
            ("s4", nn.MaxPool2d(s4["kernel"])),
        ]))
        self.head = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("c5", nn.Linear(s4["maps"] * c5["kernel"] ** 2, c5["maps"])),          # 5x5 kernel on 5x5 maps
            ("c5_relu", nn.ReLU(inplace=True)),
            ("f6", nn.Linear(c5["maps"], f6["maps"])),
            ("f6_relu", nn.ReLU(inplace=True)),
            ("output", nn.Linear(f6["maps"], num_classes)),                        # DEVIATION: not RBF
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# Sec. II.B, Fig. 2: layer -> feature maps (or units) and kernel (window) size.
LENET5_LAYERS = {
    "C1": {"maps": 6, "kernel": 5},
    "S2": {"maps": 6, "kernel": 2},
    "C3": {"maps": 16, "kernel": 5},
    "S4": {"maps": 16, "kernel": 2},
    "C5": {"maps": 120, "kernel": 5},
    "F6": {"maps": 84, "kernel": None},
}

# Table I: for each of C3's 16 maps, the S2 maps it is connected to.
C3_CONNECTIONS = [
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),                  # 3 contiguous
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),  # 4 contiguous
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),                                          # 4 non-contiguous
    (0, 1, 2, 3, 4, 5),                                                                # all six
]


@register_model(paper=PAPER, input_size=(1, 32, 32), num_classes=10)
def lenet5(*, num_classes: int, in_channels: int) -> nn.Module:
    return LeNet5(LENET5_LAYERS, C3_CONNECTIONS, num_classes=num_classes, in_channels=in_channels)


@register_model(paper=PAPER, input_size=(1, 32, 32), num_classes=10)
def lenet5_modern(*, num_classes: int, in_channels: int) -> nn.Module:
    return LeNet5Modern(LENET5_LAYERS, num_classes=num_classes, in_channels=in_channels)

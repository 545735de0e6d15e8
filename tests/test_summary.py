import json
from collections import OrderedDict

import numpy
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from papernets.models import count_macs, count_parameters, summarize
from papernets.models.summary import format_count
from papernets.errors import ModelError
from papernets.models import create_model

# Multiply-accumulates of LeNet-5 at 32x32: C1, C3, C5, F6 (Sec. II.B), and the RBF output.
# C3 runs as one dense convolution whose unconnected kernels are zero (cheaper than 60 small ones), and the
# RBF output as one matrix product: MACs count the arithmetic done, not only the paper's connections.
LENET5_MACS = 6 * 28 * 28 * 25 + 16 * 6 * 10 * 10 * 25 + 120 * 400 + 84 * 120 + 10 * 84


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(self.norm(self.conv(x)) + x)


class TinyNet(nn.Module):
    """stem / stages / head like the zoo's models, a block two levels down, and an auxiliary head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.stages = nn.Sequential(nn.Sequential(Block(4), Block(4)))
        self.aux_head = nn.Linear(4, 3)
        self.head = nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
                                              fc=nn.Linear(4, 3)))

    def forward(self, x):
        features = self.stages(self.stem(x))
        logits = self.head(features)
        return (logits, self.aux_head(features.mean(dim=(2, 3)))) if self.training else logits


def test_lenet5_totals_equal_parameter_counts_and_flop_counter():
    model = create_model("lenet5")
    summary = summarize(model, (1, 32, 32))
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, 32, 32))
    assert summary.total_params == summary.trainable_params == count_parameters(model) == 60_000
    assert summary.flops == counter.get_total_flops()
    assert summary.macs == summary.flops // 2 == count_macs(model, (1, 32, 32)) == LENET5_MACS
    assert summary.param_bytes == 60_000 * 4


def test_rows_show_stages_with_output_shapes_and_leaves_add_up():
    summary = summarize(create_model("lenet5"), (1, 28, 28))
    rows = {row.name: row for row in summary.rows}
    assert [row.name for row in summary.rows if row.depth == 1] == ["features", "head"]
    assert rows["features"].input_shape == (1, 28, 28) and rows["features"].output_shape == (120, 1, 1)
    assert rows["features.pad"].output_shape == (1, 32, 32)
    assert rows["features.c3"].output_shape == (16, 10, 10)
    assert (rows["features.c3"].params, rows["features.c3"].macs) == (1_516, 16 * 6 * 10 * 10 * 25)  # one dense conv
    assert rows["head.output"].type == "EuclideanRBF" and rows["head.output"].output_shape == (10,)
    assert sum(row.macs for row in summary.rows if row.depth == 1) == summary.macs
    assert sum(row.params for row in summary.rows if row.depth == 2) == summary.total_params


def test_nested_blocks_aux_heads_and_buffers():
    model = TinyNet().train()
    model.stem.eval()
    summary = summarize(model, (1, 8, 8))
    assert model.training and model.stages[0][0].norm.training, "summarize must restore the training modes"
    assert not model.stem.training and not model.stem[0].training
    names = [row.name for row in summary.rows]
    assert names[:4] == ["stem", "stem.0", "stem.1", "stages"]
    assert "stages.0" in names and "stages.0.0" not in names      # blocks below the stage level fold away
    assert "stages.0.0.conv" in names and "stages.0.1.norm" in names
    rows = {row.name: row for row in summary.rows}
    assert rows["aux_head"].output_shape is None and rows["aux_head"].params == 15   # not run in eval mode
    assert rows["stages.0"].output_shape == (4, 4, 4)
    assert rows["stages.0"].macs == 2 * 4 * 4 * 16 * 9
    assert summary.total_params == count_parameters(model)
    assert summary.trainable_params == summary.total_params
    model.stem[0].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == summary.total_params - 36


def test_activation_memory_sums_leaf_outputs_in_fp32():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 5))
    summary = summarize(model, (1, 8, 8))
    assert summary.activation_bytes == (72 + 72 + 72 + 5) * 4
    assert summary.macs == 2 * 36 * 9 + 72 * 5


def test_meta_device_gives_the_same_counts_as_real_tensors():
    with torch.device("meta"):
        on_meta = summarize(create_model("lenet5"), (1, 28, 28))
    on_cpu = summarize(create_model("lenet5"), (1, 28, 28))
    assert on_meta == on_cpu


def test_format_and_json():
    summary = summarize(create_model("lenet5_modern"), (1, 32, 32))
    text = summary.format()
    assert "61,706 total" in text and f"MACs: {summary.macs:,}" in text and "fp32, batch 1" in text
    lines = text.splitlines()
    table = lines[2:3] + [line for line in lines if line.lstrip().startswith(("features", "head"))]
    assert len({len(line) for line in table}) == 1, "table rows must be aligned"
    assert "  features.c1 " in text
    decoded = json.loads(json.dumps(summary.to_dict()))
    assert decoded["total_params"] == 61_706 and decoded["rows"][0]["name"] == "features"


def test_format_count():
    assert [format_count(count) for count in (999, 325_680, 4_231_976, 1_500_000_000, 19_632_000_000)] == \
        ["999", "326 K", "4.23 M", "1.50 G", "19.6 G"]


@pytest.mark.parametrize("input_size", [(1, 0, 28), (28, 28), (1, 28.0, 28), "1x28x28"])
def test_bad_input_size_is_refused(input_size):
    with pytest.raises(ModelError, match="three positive integers"):
        summarize(create_model("lenet5"), input_size)


def test_numpy_sizes_are_accepted():
    assert summarize(create_model("lenet5"), tuple(numpy.array([1, 28, 28]))).input_size == (1, 28, 28)

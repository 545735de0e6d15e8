"""MobileNet v1/v2/v3 fidelity: parameter counts and MACs against docs/REFERENCE.md, feature-map shapes
against the papers' tables, and identical outputs to torchvision from the same weights (v2, v3)."""

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from papernets.errors import ModelError
from papernets.models import create_model, get_model_entry, list_models
from papernets.models.interop import load_torchvision_state_dict
from papernets.models.layers import make_divisible
from papernets.models.mobilenet_v1 import DepthwiseSeparableConv
from papernets.models.mobilenet_v3 import SqueezeExcitation
from weights_reference import randomized_torchvision


def params_and_macs(name: str, size: int, **options) -> tuple[int, float]:
    """Parameters and multiply-accumulates for one RGB image, counted on the meta device."""
    with torch.device("meta"):
        model = create_model(name, **options)
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, size, size))
    return sum(parameter.numel() for parameter in model.parameters()), counter.get_total_flops() / 2


def feature_shapes(name: str, input_size: tuple[int, int, int], **options) -> list[tuple[int, ...]]:
    """(C, H, W) after the stem, after each child of `stages`, and after the head's 1x1 conv where there is one."""
    with torch.device("meta"):
        model = create_model(name, input_size=input_size, **options).eval()
        x = model.stem(torch.empty(1, *input_size))
        shapes = [tuple(x.shape[1:])]
        for stage in model.stages:
            x = stage(x)
            shapes.append(tuple(x.shape[1:]))
        if hasattr(model.head, "conv"):
            shapes.append(tuple(model.head.conv(x).shape[1:]))
    return shapes


def test_registered_with_papers_and_torchvision_names():
    assert set(list_models("mobilenet*")) == {"mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large",
                                              "mobilenet_v3_small"}
    assert get_model_entry("mobilenet_v1").torchvision_name is None
    assert "1704.04861" in get_model_entry("mobilenet_v1").paper
    assert "1801.04381" in get_model_entry("mobilenet_v2").paper
    assert "1905.02244" in get_model_entry("mobilenet_v3_small").paper
    for name in ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"):
        entry = get_model_entry(name)
        assert (entry.torchvision_name, entry.input_size, entry.num_classes) == (name, (3, 224, 224), 1000)


# docs/REFERENCE.md, MobileNet v1 (Tables 6/7): width multiplier -> exact params, MACs (millions) at 224.
V1_WIDTHS = {1.0: (4_231_976, 568.74), 0.75: (2_585_560, 325.40), 0.5: (1_331_592, 149.50), 0.25: (470_072, 41.03)}


@pytest.mark.parametrize("width", list(V1_WIDTHS))
def test_mobilenet_v1_width_multiplier(width):
    params, macs_millions = V1_WIDTHS[width]
    counted_params, counted_macs = params_and_macs("mobilenet_v1", 224, width_multiplier=width)
    assert counted_params == params
    assert round(counted_macs / 1e6, 2) == macs_millions


@pytest.mark.parametrize(("resolution", "macs_millions"), [(192, 418), (160, 290), (128, 186)])
def test_mobilenet_v1_resolution_multiplier(resolution, macs_millions):
    params, macs = params_and_macs("mobilenet_v1", resolution)
    assert params == V1_WIDTHS[1.0][0]
    assert abs(macs / 1e6 - macs_millions) < 1  # Table 7 prints whole millions (418.12, 290.68, 186.40 counted)


def test_mobilenet_v1_table_1_shapes():
    shapes = feature_shapes("mobilenet_v1", (3, 224, 224))
    # Table 1: the conv layer and each depthwise separable layer's output ("Input Size" of the next row).
    assert shapes == [(32, 112, 112), (64, 112, 112), (128, 56, 56), (128, 56, 56), (256, 28, 28), (256, 28, 28)] + \
        [(512, 14, 14)] * 6 + [(1024, 7, 7), (1024, 7, 7)]
    model = create_model("mobilenet_v1")
    assert all(isinstance(layer, DepthwiseSeparableConv) for layer in model.stages)
    assert all(layer.depthwise.conv.groups == layer.depthwise.conv.in_channels for layer in model.stages)
    assert model.head.fc.in_features == 1024


def test_mobilenet_v1_small_input_and_bad_width():
    shapes = feature_shapes("mobilenet_v1", (1, 28, 28))
    assert shapes[0] == (32, 28, 28) and shapes[2] == (128, 28, 28) and shapes[-1] == (1024, 4, 4)
    assert feature_shapes("mobilenet_v1", (3, 32, 32))[-1] == (1024, 4, 4)
    with pytest.raises(ModelError, match="width_multiplier"):
        create_model("mobilenet_v1", width_multiplier=0)


def test_mobilenet_v2_params_macs_and_table_2_shapes():
    params, macs = params_and_macs("mobilenet_v2", 224)
    assert params == 3_504_872
    assert round(macs / 1e9, 3) == 0.301  # Table 4: 300M MAdds
    # Table 2: the stem (112^2 x 32), the output of each (t, c, n, s) row, then conv2d 1x1 to 1280.
    assert feature_shapes("mobilenet_v2", (3, 224, 224)) == [
        (32, 112, 112), (16, 112, 112), (24, 56, 56), (32, 28, 28), (64, 14, 14), (96, 14, 14), (160, 7, 7),
        (320, 7, 7), (1280, 7, 7)]
    model = create_model("mobilenet_v2")
    assert [len(row) for row in model.stages] == [1, 2, 3, 4, 3, 3, 1]
    assert sum(block.use_shortcut for row in model.stages for block in row) == 10  # every repeat after the first
    assert isinstance(model.stages[0][0].expand, nn.Identity)  # t = 1
    assert model.stages[1][0].expand.conv.out_channels == 6 * 16  # t = 6: expansion to t * k
    assert not hasattr(model.stages[1][0].project, "act")  # Sec. 3.2: linear bottleneck


def test_width_multipliers_match_torchvision_channel_rounding():
    assert (make_divisible(32 * 0.35), make_divisible(16 * 0.35), make_divisible(24 * 0.75)) == (16, 8, 24)
    for width in (0.5, 1.4):
        ours, _ = params_and_macs("mobilenet_v2", 64, width_multiplier=width)
        assert ours == sum(p.numel() for p in torchvision.models.mobilenet_v2(width_mult=width).parameters())
    ours, _ = params_and_macs("mobilenet_v3_large", 64, width_multiplier=0.75)
    reference = torchvision.models.mobilenet_v3_large(width_mult=0.75)
    assert ours == sum(p.numel() for p in reference.parameters())


@pytest.mark.parametrize(("name", "params", "macs_billions"), [
    ("mobilenet_v3_large", 5_483_032, 0.217), ("mobilenet_v3_small", 2_542_856, 0.057)])
def test_mobilenet_v3_params_and_macs(name, params, macs_billions):
    counted_params, macs = params_and_macs(name, 224)
    assert counted_params == params
    assert round(macs / 1e9, 3) == macs_billions


def test_mobilenet_v3_table_shapes_and_squeeze_excitation():
    large = feature_shapes("mobilenet_v3_large", (3, 224, 224))
    # Table 1: the input size column of the next row; the last bneck gives 7^2 x 160, conv2d 1x1 gives 960.
    assert large[0] == (16, 112, 112) and large[1] == (16, 112, 112) and large[2] == (24, 56, 56)
    assert large[4] == (40, 28, 28) and large[7] == (80, 14, 14) and large[11] == (112, 14, 14)
    assert large[13:] == [(160, 7, 7), (160, 7, 7), (160, 7, 7), (960, 7, 7)]
    small = feature_shapes("mobilenet_v3_small", (3, 224, 224))
    # Table 2: 112^2 x 16 in, then 56^2 x 16, 28^2 x 24, 14^2 x 40 / 48, 7^2 x 96, conv2d 1x1 to 576.
    assert small[:3] == [(16, 112, 112), (16, 56, 56), (24, 28, 28)]
    assert small[4] == (40, 14, 14) and small[8] == (48, 14, 14)
    assert small[9:] == [(96, 7, 7), (96, 7, 7), (96, 7, 7), (576, 7, 7)]
    model = create_model("mobilenet_v3_large")
    with_se = [index for index, block in enumerate(model.stages) if isinstance(block.squeeze_excitation,
                                                                              SqueezeExcitation)]
    assert with_se == [3, 4, 5, 10, 11, 12, 13, 14]  # Table 1, column SE
    assert model.stages[3].squeeze_excitation.fc1.out_channels == 24  # 72 / 4 = 18, rounded up to 24
    assert model.stages[10].squeeze_excitation.fc1.out_channels == 120  # 480 / 4
    assert isinstance(model.stages[6].depthwise.act, nn.Hardswish) and isinstance(model.stages[0].depthwise.act,
                                                                                   nn.ReLU)
    assert model.stages[3].depthwise.conv.kernel_size == (5, 5)
    assert (model.stem.bn.eps, model.stem.bn.momentum) == (0.001, 0.01)  # Sec. 6.1: average decay 0.99


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"])
def test_small_input_ends_on_4x4_maps(name):
    assert feature_shapes(name, (1, 28, 28))[-1][1:] == (4, 4)
    assert feature_shapes(name, (3, 32, 32))[-1][1:] == (4, 4)
    assert feature_shapes(name, (3, 32, 32), small_input=False)[-1][1:] == (1, 1)


def test_bad_options_are_model_errors():
    with pytest.raises(ModelError, match="dropout"):
        create_model("mobilenet_v2", dropout=1.5)
    with pytest.raises(ModelError, match="width_multiplier"):
        create_model("mobilenet_v3_small", width_multiplier=-1)
    with pytest.raises(ModelError):
        create_model("mobilenet_v3_large", expansion=3)



@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"])
def test_torchvision_weights_give_identical_logits(name):
    reference = randomized_torchvision(name)
    model = load_torchvision_state_dict(create_model(name), reference.state_dict()).eval()
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference(image)
        logits = model(image)
    assert expected.abs().max() > 0.1
    assert torch.allclose(logits, expected, atol=1e-5)


def test_torchvision_weights_refused_by_another_network():
    with pytest.raises(ModelError, match="do not fit"):
        load_torchvision_state_dict(create_model("mobilenet_v3_small"),
                                    torchvision.models.mobilenet_v3_large(weights=None).state_dict())
    with pytest.raises(ModelError, match="no torchvision counterpart"):
        load_torchvision_state_dict(create_model("mobilenet_v1"), {})

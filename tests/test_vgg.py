"""VGG fidelity: parameter counts against Table 2 and torchvision, MACs against docs/REFERENCE.md, stage
shapes against Table 1, the A-LRN normalisation against Krizhevsky et al.'s formula, small-input shapes, and
identical logits to torchvision from the same weights."""

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from papernets.errors import ModelError
from papernets.models import create_model, get_model_entry, list_models
from papernets.models.interop import convert_torchvision_state_dict, load_torchvision_state_dict
from weights_reference import randomize

TORCHVISION_PARAMS = {  # docs/REFERENCE.md, 1000 classes
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg16_bn": 138_365_992,
}
TABLE_2_MILLIONS = {"vgg11": 133, "vgg11_lrn": 133, "vgg13": 133, "vgg16_c": 134, "vgg16": 138, "vgg19": 144}
GIGA_MACS_224 = {"vgg11": 7.609, "vgg13": 11.308, "vgg16": 15.470, "vgg19": 19.632, "vgg11_bn": 7.609,
                 "vgg16_bn": 15.470}


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def meta_model(name: str, **options) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **options)


def stage_shapes(model: nn.Module, input_size: tuple[int, int, int]) -> list[tuple[int, ...]]:
    """(C, H, W) after each stage of `features`, on the meta device."""
    x = torch.empty(1, *input_size, device="meta")
    shapes = []
    for stage in model.features:
        x = stage(x)
        shapes.append(tuple(x.shape[1:]))
    return shapes



def test_every_vgg_is_registered_with_its_paper_and_torchvision_name():
    assert list_models("vgg*") == sorted(["vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19",
                                          "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"])
    for name in list_models("vgg*"):
        entry = get_model_entry(name)
        assert "1409.1556" in entry.paper and entry.input_size == (3, 224, 224) and entry.num_classes == 1000
        expected = None if name in ("vgg11_lrn", "vgg16_c") else name
        assert entry.torchvision_name == expected


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_counts_are_exact(name):
    assert count_parameters(meta_model(name)) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", ["vgg13_bn", "vgg19_bn"])
def test_parameter_counts_equal_torchvision(name):
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)(weights=None)
    assert count_parameters(meta_model(name)) == count_parameters(reference)


@pytest.mark.parametrize("name", sorted(TABLE_2_MILLIONS))
def test_parameter_counts_round_to_table_2(name):
    assert round(count_parameters(meta_model(name)) / 1e6) == TABLE_2_MILLIONS[name]


def test_configuration_c_has_the_papers_exact_count():
    # D with its last conv in stages 3-5 at 1x1 instead of 3x3: 8 * 256 * 256 + 2 * 8 * 512 * 512 fewer weights.
    assert count_parameters(meta_model("vgg16_c")) == TORCHVISION_PARAMS["vgg16"] - 8 * 256 * 256 - 16 * 512 * 512


@pytest.mark.parametrize("name", sorted(GIGA_MACS_224))
def test_macs_at_224(name):
    model = meta_model(name).eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 224, 224, device="meta"))
    assert counter.get_total_flops() / 2 / 1e9 == pytest.approx(GIGA_MACS_224[name], abs=5e-4)


@pytest.mark.parametrize("name", list_models("vgg*"))
def test_stage_shapes_follow_table_1(name):
    model = meta_model(name)
    assert stage_shapes(model, (3, 224, 224)) == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14),
                                                   (512, 7, 7)]
    assert model.head[2].in_features == 512 * 7 * 7  # 7x7x512 before the head


@pytest.mark.parametrize("name, layers", [("vgg11", 11), ("vgg13", 13), ("vgg16_c", 16), ("vgg16", 16),
                                          ("vgg19", 19)])
def test_weight_layer_counts_and_kernels(name, layers):
    model = meta_model(name)
    convolutions = [module for module in model.features.modules() if isinstance(module, nn.Conv2d)]
    linears = [module for module in model.head.modules() if isinstance(module, nn.Linear)]
    assert len(convolutions) + len(linears) == layers
    one_by_one = [conv for conv in convolutions if conv.kernel_size == (1, 1)]
    if name == "vgg16_c":  # Table 1, C: conv1-256, conv1-512, conv1-512 as the last layer of stages 3-5
        assert [stage[-3].kernel_size for stage in model.features[2:]] == [(1, 1)] * 3
        assert [conv.out_channels for conv in one_by_one] == [256, 512, 512]
    else:
        assert not one_by_one
    assert all(conv.padding == (conv.kernel_size[0] // 2,) * 2 and conv.stride == (1, 1) for conv in convolutions)


def test_head_is_fc4096_fc4096_fc_classes_with_dropout_half_on_the_first_two():
    model = meta_model("vgg16", num_classes=10)
    assert [(linear.in_features, linear.out_features) for linear in model.head if isinstance(linear, nn.Linear)] \
        == [(25088, 4096), (4096, 4096), (4096, 10)]
    dropouts = [layer.p for layer in model.head if isinstance(layer, nn.Dropout)]
    assert dropouts == [0.5, 0.5]


def test_lrn_follows_krizhevsky_2012():
    model = create_model("vgg11_lrn", num_classes=10, input_size=(3, 32, 32))
    first_stage = list(model.features[0])
    assert [type(layer) for layer in first_stage] == [nn.Conv2d, nn.ReLU, nn.LocalResponseNorm]
    lrn = first_stage[2]
    torch.manual_seed(0)
    a = torch.rand(1, 64, 3, 3) * 20
    # Krizhevsky et al. 2012, Sec. 3.3: b_i = a_i / (k + alpha * sum_{j=i-n/2}^{i+n/2} a_j^2)^beta
    squares = torch.nn.functional.pad(a.pow(2), (0, 0, 0, 0, 2, 2))
    window_sums = torch.stack([squares[:, i:i + 5].sum(dim=1) for i in range(64)], dim=1)
    expected = a / (2.0 + 1e-4 * window_sums).pow(0.75)
    torch.testing.assert_close(lrn(a), expected)


def test_batch_norm_versions_put_bn_between_conv_and_relu():
    stage = list(meta_model("vgg11_bn").features[0])
    assert [type(layer) for layer in stage] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    assert not any(isinstance(layer, nn.BatchNorm2d) for layer in meta_model("vgg11").modules())


@pytest.mark.parametrize("input_size, sides", [((1, 28, 28), [28, 14, 7, 3, 1]), ((3, 32, 32), [32, 16, 8, 4, 2])])
def test_small_input_drops_the_first_pool_and_pools_the_head_to_1x1(input_size, sides):
    model = meta_model("vgg16", num_classes=10, input_size=input_size)
    channels = [64, 128, 256, 512, 512]
    assert stage_shapes(model, input_size) == [(c, side, side) for c, side in zip(channels, sides)]
    assert model.head[2].in_features == 512


def test_small_input_trains_on_real_tensors():
    torch.manual_seed(0)
    model = create_model("vgg11_lrn", num_classes=10, input_size=(1, 28, 28)).train()
    images, labels = torch.randn(2, 1, 28, 28), torch.tensor([1, 2])
    torch.nn.functional.cross_entropy(model(images), labels).backward()
    assert all(parameter.grad is not None and torch.isfinite(parameter.grad).all()
               for parameter in model.parameters())


def test_torchvision_weights_give_identical_logits():
    # vgg11_bn covers the plain configurations' layers too; the others are checked key by key below.
    torch.manual_seed(0)
    reference = randomize(torchvision.models.vgg11_bn(weights=None, num_classes=10)).eval()
    model = load_torchvision_state_dict(create_model("vgg11_bn", num_classes=10), reference.state_dict()).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(images), reference(images), atol=1e-5)


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19", "vgg13_bn", "vgg16_bn", "vgg19_bn"])
def test_torchvision_state_dicts_map_onto_every_layer(name):
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)(weights=None)
        model = create_model(name)
    converted = convert_torchvision_state_dict(model, reference.state_dict())
    own = model.state_dict()
    assert converted.keys() == own.keys()
    assert all(converted[key].shape == own[key].shape for key in own)


@pytest.mark.parametrize("name", ["vgg11_lrn", "vgg16_c"])
def test_configurations_without_torchvision_counterpart_refuse_its_weights(name):
    with torch.device("meta"):
        state_dict = torchvision.models.vgg16(weights=None).state_dict()
        model = create_model(name)
    with pytest.raises(ModelError, match="no torchvision counterpart"):
        load_torchvision_state_dict(model, state_dict)


def test_torchvision_weights_of_another_depth_are_refused():
    with torch.device("meta"):
        state_dict = torchvision.models.vgg16(weights=None).state_dict()
        model = create_model("vgg11")
    with pytest.raises(ModelError, match="load the matching vgg"):
        load_torchvision_state_dict(model, state_dict)


def test_a_state_dict_of_another_family_is_refused():
    with torch.device("meta"):
        state_dict = torchvision.models.resnet18(weights=None).state_dict()
        model = create_model("vgg11")
    with pytest.raises(ModelError, match="not a torchvision VGG state dict"):
        load_torchvision_state_dict(model, state_dict)


def test_bad_dropout_is_a_model_error():
    with pytest.raises(ModelError, match="dropout"):
        meta_model("vgg11", dropout=1.5)

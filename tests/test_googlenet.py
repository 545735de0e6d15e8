"""GoogLeNet fidelity: every output size of Table 1, its ops column module by module, the parameter total, the
auxiliary classifiers of Sec. 5 (only in training), small-input shapes, and for googlenet_bn torchvision's
counts and identical logits from torchvision's weights."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from papernets.errors import ModelError
from papernets.models import create_model, get_model_entry
from papernets.models.interop import TORCHVISION_WEIGHTS_NORMALIZATION, load_torchvision_state_dict
from weights_reference import randomize

# Table 1, "output size" column, from the stem's convolutions to inception (5b).
TABLE_1_OUTPUT_SIZES = {
    "conv1": (64, 112, 112), "pool1": (64, 56, 56), "conv2": (192, 56, 56), "pool2": (192, 28, 28),
    "inception_3a": (256, 28, 28), "inception_3b": (480, 28, 28), "pool3": (480, 14, 14),
    "inception_4a": (512, 14, 14), "inception_4b": (512, 14, 14), "inception_4c": (512, 14, 14),
    "inception_4d": (528, 14, 14), "inception_4e": (832, 14, 14), "pool4": (832, 7, 7),
    "inception_5a": (832, 7, 7), "inception_5b": (1024, 7, 7),
}
# Table 1, "ops" column (millions of multiply-adds). conv2 is the 1x1 reduction and the 3x3 convolution together.
TABLE_1_MEGA_OPS = {
    "stem.conv2": 360, "stages.inception_3a": 128, "stages.inception_3b": 304, "stages.inception_4a": 73,
    "stages.inception_4b": 88, "stages.inception_4c": 100, "stages.inception_4d": 119, "stages.inception_4e": 170,
    "stages.inception_5b": 71, "head.fc": 1,
}
# Left out of the comparison, because the printed values contradict the row's own shapes: conv1 (2.7K params,
# 34M ops fit no 7x7x3 -> 64 convolution, which has 9.4K weights and 118M ops at 112x112) and inception (5a)
# (1072K params would be 52.5M ops at 7x7, not the printed 54M; its columns give 1042K and 51.1M).
TABLE_1_PARAMS_SUM = 6.8e6  # the params column's sum; MobileNet v1 Table 8 quotes GoogLeNet at 6.8M too


def count_parameters(model: nn.Module, *, aux: bool = True) -> int:
    return sum(parameter.numel() for name, parameter in model.named_parameters()
               if aux or not name.startswith("aux_heads."))


def meta_model(name: str, **options) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **options)


def layer_shapes(model: nn.Module, input_size: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """(C, H, W) after every layer of `stem` and `stages`, on the meta device."""
    x = torch.empty(1, *input_size, device="meta")
    shapes = {}
    for name, layer in [*model.stem.named_children(), *model.stages.named_children()]:
        x = layer(x)
        shapes[name] = tuple(x.shape[1:])
    return shapes


def mega_macs_by_module(model: nn.Module, size: int) -> dict[str, float]:
    with FlopCounterMode(display=False) as counter:
        model.eval()(torch.empty(1, 3, size, size, device="meta"))
    prefix = f"{type(model).__name__}."
    return {name.removeprefix(prefix): sum(counts.values()) / 2e6 for name, counts in counter.get_flop_counts().items()}



def test_registration():
    assert get_model_entry("googlenet").torchvision_name is None
    assert get_model_entry("googlenet_bn").torchvision_name == "googlenet"
    assert all("1409.4842" in get_model_entry(name).paper and get_model_entry(name).input_size == (3, 224, 224)
               for name in ("googlenet", "googlenet_bn"))


@pytest.mark.parametrize("name", ["googlenet", "googlenet_bn"])
def test_every_output_size_of_table_1(name):
    shapes = layer_shapes(meta_model(name), (3, 224, 224))
    assert {layer: shapes[layer] for layer in TABLE_1_OUTPUT_SIZES} == TABLE_1_OUTPUT_SIZES


def test_ops_of_table_1_module_by_module():
    macs = mega_macs_by_module(meta_model("googlenet"), 224)
    macs["stem.conv2"] += macs["stem.conv2_reduce"]
    for module, mega_ops in TABLE_1_MEGA_OPS.items():
        assert macs[module] == pytest.approx(mega_ops, abs=1.0), module
    assert macs["stem.conv1"] == pytest.approx(7 * 7 * 3 * 64 * 112 * 112 / 1e6)
    assert macs["stages.inception_5a"] == pytest.approx(51.08, abs=0.01)
    assert macs["Global"] == pytest.approx(1582.67, abs=0.01)  # ~1.5 G: Table 1's column sums to 1502M
    assert macs["Global"] == pytest.approx(1550, rel=0.03)  # MobileNet v1 Table 8 quotes GoogLeNet at 1550M


def test_parameter_total_of_the_paper():
    model = meta_model("googlenet")
    assert count_parameters(model, aux=False) == 6_998_552  # 6,990,272 weights + 8,280 biases
    assert count_parameters(model, aux=False) == pytest.approx(TABLE_1_PARAMS_SUM, rel=0.03)
    assert count_parameters(model) == 13_378_280


def test_googlenet_bn_counts_equal_torchvision():
    model = meta_model("googlenet_bn")
    assert count_parameters(model, aux=False) == 6_624_904
    assert count_parameters(model) == 13_004_888
    assert mega_macs_by_module(model, 224)["Global"] / 1e3 == pytest.approx(1.498, abs=5e-4)


def test_paper_layers_versus_torchvision_layers():
    paper, torchvision_like = meta_model("googlenet"), meta_model("googlenet_bn")
    assert paper.stages.inception_3a.branch_5x5[1].conv.kernel_size == (5, 5)
    assert torchvision_like.stages.inception_3a.branch_5x5[1].conv.kernel_size == (3, 3)
    assert [name for name, _ in paper.stem.named_children()] == \
        ["conv1", "pool1", "norm1", "conv2_reduce", "conv2", "norm2", "pool2"]  # Fig. 3
    assert not any(isinstance(module, nn.LocalResponseNorm) for module in torchvision_like.modules())
    assert not any(isinstance(module, nn.BatchNorm2d) for module in paper.modules())
    assert paper.head.dropout.p == 0.4
    aux = paper.aux_heads["inception_4a"]
    assert (aux.pool.kernel_size, aux.pool.stride) == (5, 3)
    assert (aux.conv.conv.out_channels, aux.fc1.out_features, aux.dropout.p) == (128, 1024, 0.7)


def test_auxiliary_classifiers_only_in_training():
    torch.manual_seed(0)
    model = create_model("googlenet", num_classes=10, input_size=(1, 28, 28))
    assert model.aux_loss_weights == (0.3, 0.3)
    assert list(model.aux_heads) == ["inception_4a", "inception_4d"]
    images, labels = torch.randn(2, 1, 28, 28), torch.tensor([0, 9])
    logits, aux1, aux2 = model.train()(images)
    assert logits.shape == aux1.shape == aux2.shape == (2, 10)
    loss = F.cross_entropy(logits, labels) + sum(weight * F.cross_entropy(aux, labels)
                                                 for weight, aux in zip(model.aux_loss_weights, (aux1, aux2)))
    loss.backward()
    assert all(parameter.grad is not None for parameter in model.aux_heads.parameters())
    with torch.no_grad():
        eval_logits = model.eval()(images)
    assert isinstance(eval_logits, torch.Tensor) and eval_logits.shape == (2, 10)


def test_without_auxiliary_classifiers():
    model = meta_model("googlenet", num_classes=10, input_size=(1, 28, 28), aux_logits=False)
    assert model.aux_loss_weights == () and count_parameters(model) == count_parameters(model, aux=False)
    assert model.train()(torch.empty(2, 1, 28, 28, device="meta")).shape == (2, 10)


def test_auxiliary_classifiers_at_224_on_the_meta_device():
    model = meta_model("googlenet").train()
    logits, aux1, aux2 = model(torch.empty(2, 3, 224, 224, device="meta"))
    assert logits.shape == aux1.shape == aux2.shape == (2, 1000)


def test_auxiliary_classifiers_refuse_a_grid_they_were_not_built_for():
    model = create_model("googlenet", num_classes=10).train()
    with pytest.raises(ModelError, match="aux_logits=False"):
        model(torch.randn(1, 3, 96, 96))


@pytest.mark.parametrize("input_size, sides", [((1, 28, 28), (28, 14, 7)), ((3, 32, 32), (32, 16, 8))])
def test_small_input_keeps_the_stem_at_full_resolution(input_size, sides):
    shapes = layer_shapes(meta_model("googlenet", input_size=input_size, num_classes=10), input_size)
    assert "pool1" not in shapes and "pool2" not in shapes
    assert shapes["conv2"] == (192, sides[0], sides[0])
    assert shapes["inception_3b"] == (480, sides[0], sides[0])
    assert shapes["inception_4e"] == (832, sides[1], sides[1])
    assert shapes["inception_5b"] == (1024, sides[2], sides[2])
    if input_size[1] == 28:  # from (3a) on, exactly Table 1
        assert {name: shapes[name] for name in shapes if name.startswith(("inception", "pool"))} == \
            {name: size for name, size in TABLE_1_OUTPUT_SIZES.items() if name.startswith(("inception", "pool3",
                                                                                                "pool4"))}


def test_torchvision_weights_give_identical_logits():
    torch.manual_seed(0)
    reference = torchvision.models.googlenet(weights=None, num_classes=10, aux_logits=True, init_weights=False,
                                             transform_input=False)
    reference = randomize(reference).eval()
    model = load_torchvision_state_dict(create_model("googlenet_bn", num_classes=10), reference.state_dict()).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(images), reference(images), atol=1e-5)
        # The auxiliary heads map too: torchvision returns (logits, aux2, aux1) in training mode.
        model.aux_heads.eval(), reference.aux1.eval(), reference.aux2.eval()
        features = torch.randn(2, 512, 14, 14)
        assert torch.allclose(model.aux_heads["inception_4a"](features), reference.aux1(features), atol=1e-5)
    without_aux = create_model("googlenet_bn", num_classes=10, aux_logits=False)
    load_torchvision_state_dict(without_aux, reference.state_dict())  # torchvision's aux weights are dropped
    with torch.no_grad():
        assert torch.allclose(without_aux.eval()(images), reference(images), atol=1e-5)

    # transform_input (set by torchvision's builder for its pretrained weights) equals normalising the raw image
    # with TORCHVISION_WEIGHTS_NORMALIZATION instead of ImageNet's statistics.
    raw = torch.rand(2, 3, 64, 64)
    imagenet_mean, imagenet_std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    mean, std = (torch.tensor(TORCHVISION_WEIGHTS_NORMALIZATION[key]) for key in ("mean", "std"))
    reference.transform_input = True
    with torch.no_grad():
        expected = reference((raw - imagenet_mean[:, None, None]) / imagenet_std[:, None, None])
        assert torch.allclose(model((raw - mean[:, None, None]) / std[:, None, None]), expected, atol=1e-4)


def test_paper_googlenet_refuses_torchvision_weights():
    with torch.device("meta"):
        state_dict = torchvision.models.googlenet(weights=None, init_weights=False, aux_logits=True).state_dict()
        model = create_model("googlenet")
    with pytest.raises(ModelError, match="googlenet_bn"):
        load_torchvision_state_dict(model, state_dict)

"""Inception v3 fidelity: torchvision's parameter counts and MACs, the grids of Table 1 (35x35x288, 17x17x768,
8x8x2048), the factorised kernels of Fig. 6 and 7, the auxiliary classifier (only in training), small-input
shapes, and identical logits to torchvision from the same weights."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from papernets.errors import ModelError
from papernets.models import create_model, get_model_entry
from papernets.models.interop import load_torchvision_state_dict
from weights_reference import randomize


def count_parameters(model: nn.Module, *, aux: bool = True) -> int:
    return sum(parameter.numel() for name, parameter in model.named_parameters()
               if aux or not name.startswith("aux_heads."))


def meta_model(**options) -> nn.Module:
    with torch.device("meta"):
        return create_model("inception_v3", **options)


def stage_shapes(model: nn.Module, input_size: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """(C, H, W) after the stem and after each module, on the meta device."""
    x = model.stem(torch.empty(1, *input_size, device="meta"))
    shapes = {"stem": tuple(x.shape[1:])}
    for name, stage in model.stages.named_children():
        x = stage(x)
        shapes[name] = tuple(x.shape[1:])
    return shapes



def test_registration():
    entry = get_model_entry("inception_v3")
    assert "1512.00567" in entry.paper and entry.input_size == (3, 299, 299) and entry.num_classes == 1000
    assert entry.torchvision_name == "inception_v3"


def test_parameter_counts_equal_torchvision():
    model = meta_model()
    assert count_parameters(model, aux=False) == 23_834_568
    assert count_parameters(model) == 27_161_264
    assert count_parameters(meta_model(aux_logits=False)) == 23_834_568


def test_macs_at_299():
    model = meta_model().eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 299, 299, device="meta"))
    assert counter.get_total_flops() / 2 / 1e9 == pytest.approx(5.713, abs=5e-4)


def test_grids_of_table_1():
    shapes = stage_shapes(meta_model(), (3, 299, 299))
    assert shapes["stem"] == (192, 35, 35)
    assert shapes["mixed_5d"] == (288, 35, 35)      # Table 1: 35x35x288 into the 17x17 modules
    assert shapes["mixed_6a"] == (768, 17, 17)
    assert shapes["mixed_6e"] == (768, 17, 17)      # Table 1: 17x17x768
    assert shapes["mixed_7a"] == (1280, 8, 8)       # Table 1: 8x8x1280
    assert shapes["mixed_7c"] == (2048, 8, 8)       # Table 1: 8x8x2048 into the 8x8 pool
    assert list(shapes) == ["stem", "mixed_5b", "mixed_5c", "mixed_5d", "mixed_6a", "mixed_6b", "mixed_6c",
                            "mixed_6d", "mixed_6e", "mixed_7a", "mixed_7b", "mixed_7c"]


def test_factorised_kernels_of_figures_6_and_7():
    model = meta_model()
    figure_6 = model.stages.mixed_6b
    assert [block.conv.kernel_size for block in figure_6.branch_7x7_double] == [(1, 1), (7, 1), (1, 7), (7, 1),
                                                                                  (1, 7)]
    assert [block.conv.out_channels for block in figure_6.branch_7x7] == [128, 128, 192]  # n = 7, width 128
    figure_7 = model.stages.mixed_7c
    split = figure_7.branch_3x3_double[-1]
    assert (split.conv_1x3.conv.kernel_size, split.conv_3x1.conv.kernel_size) == ((1, 3), (3, 1))
    assert all(isinstance(module.bn, nn.BatchNorm2d) and module.bn.eps == 1e-3 and module.conv.bias is None
               for module in model.modules() if hasattr(module, "bn"))


def test_auxiliary_classifier_only_in_training():
    torch.manual_seed(0)
    model = create_model("inception_v3", num_classes=10, input_size=(1, 28, 28))
    assert model.aux_loss_weights == (0.4,) and list(model.aux_heads) == ["mixed_6e"]
    images, labels = torch.randn(2, 1, 28, 28), torch.tensor([4, 5])
    logits, aux = model.train()(images)
    assert logits.shape == aux.shape == (2, 10)
    (F.cross_entropy(logits, labels) + model.aux_loss_weights[0] * F.cross_entropy(aux, labels)).backward()
    assert all(parameter.grad is not None for parameter in model.aux_heads.parameters())
    with torch.no_grad():
        eval_logits = model.eval()(images)
    assert isinstance(eval_logits, torch.Tensor) and eval_logits.shape == (2, 10)


def test_auxiliary_classifier_at_299_on_the_meta_device():
    model = meta_model().train()
    logits, aux = model(torch.empty(2, 3, 299, 299, device="meta"))
    assert logits.shape == aux.shape == (2, 1000)
    head = model.aux_heads["mixed_6e"]
    assert (head.pool.kernel_size, head.pool.stride) == (5, 3)  # Fig. 8: 17x17 -> 5x5
    without = meta_model(aux_logits=False).train()
    assert without.aux_loss_weights == ()
    assert without(torch.empty(2, 3, 299, 299, device="meta")).shape == (2, 1000)


@pytest.mark.parametrize("input_size, sides", [((1, 28, 28), (22, 10, 4)), ((3, 32, 32), (26, 12, 5))])
def test_small_input_shapes(input_size, sides):
    model = meta_model(num_classes=10, input_size=input_size)
    shapes = stage_shapes(model, input_size)
    assert shapes["mixed_5d"] == (288, sides[0], sides[0])
    assert shapes["mixed_6e"] == (768, sides[1], sides[1])
    assert shapes["mixed_7c"] == (2048, sides[2], sides[2])
    logits, aux = model.train()(torch.empty(2, *input_size, device="meta"))
    assert logits.shape == aux.shape == (2, 10)


def test_torchvision_weights_give_identical_logits():
    torch.manual_seed(0)
    reference = torchvision.models.inception_v3(weights=None, num_classes=10, aux_logits=True, init_weights=False,
                                                transform_input=False)
    reference = randomize(reference).eval()
    model = load_torchvision_state_dict(create_model("inception_v3", num_classes=10), reference.state_dict()).eval()
    images = torch.randn(1, 3, 75, 75)
    with torch.no_grad():
        assert torch.allclose(model(images), reference(images), atol=1e-5)
        features = torch.randn(1, 768, 17, 17)
        assert torch.allclose(model.aux_heads["mixed_6e"](features), reference.AuxLogits(features), atol=1e-5)
    without_aux = create_model("inception_v3", num_classes=10, aux_logits=False)
    load_torchvision_state_dict(without_aux, reference.state_dict())
    with torch.no_grad():
        assert torch.allclose(without_aux.eval()(images), reference(images), atol=1e-5)


def test_bad_dropout_is_a_model_error():
    with pytest.raises(ModelError, match="dropout"):
        meta_model(dropout=-0.1)

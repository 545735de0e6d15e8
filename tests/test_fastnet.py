"""FastNet: the table in papernets/models/fastnet.py, checked on parameters, MACs and per-stage shapes."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from papernets.models import create_model, get_model_entry, list_models
from papernets.models.fastnet import FASTNET_CONFIGS

NAMES = ("fastnet", "fastnet_wide")


def expected_parameters(in_channels: int, num_classes: int, name: str = "fastnet") -> int:
    """Counted from the table: 3x3 stem conv + BN, two 3x3 convs + two BNs per stage, a linear head without bias."""
    stem_channels, stage_channels = FASTNET_CONFIGS[name]
    count = in_channels * stem_channels * 9 + 2 * stem_channels
    previous = stem_channels
    for width in stage_channels:
        count += previous * width * 9 + width * width * 9 + 2 * 2 * width
        previous = width
    return count + previous * num_classes


def expected_macs(in_channels: int, size: int, num_classes: int, name: str = "fastnet") -> int:
    """Multiply-adds of the convolutions and the head; the first conv of the stem and of each stage runs before
    its 2x2 pool."""
    stem_channels, stage_channels = FASTNET_CONFIGS[name]
    macs = size * size * in_channels * stem_channels * 9
    size //= 2
    previous = stem_channels
    for width in stage_channels:
        macs += size * size * previous * width * 9
        size //= 2
        macs += size * size * width * width * 9
        previous = width
    return macs + previous * num_classes


@pytest.mark.parametrize("name", NAMES)
def test_fastnet_is_registered_with_its_sources(name):
    assert name in list_models("fast*")
    entry = get_model_entry(name)
    assert entry.input_size == (1, 28, 28) and entry.num_classes == 10
    assert "2404.00498" in entry.paper


def test_the_table_is_the_design_of_record():
    # Changing the design must be a visible decision: this pins the table that the recipes were tuned on.
    assert FASTNET_CONFIGS == {"fastnet": (32, (64, 128)), "fastnet_wide": (48, (96, 192))}
    assert expected_parameters(1, 10) == 278_880
    assert expected_macs(1, 28, 10) == 10_585_856
    assert expected_parameters(1, 10, "fastnet_wide") == 625_680
    assert expected_macs(1, 28, 10, "fastnet_wide") == 23_647_872


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("in_channels, num_classes", [(1, 10), (3, 100)])
def test_parameter_count_follows_the_table(name, in_channels, num_classes):
    model = create_model(name, num_classes=num_classes, in_channels=in_channels)
    count = sum(parameter.numel() for parameter in model.parameters())
    assert count == expected_parameters(in_channels, num_classes, name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("in_channels, size", [(1, 28), (3, 32)])
def test_macs_follow_the_table(name, in_channels, size):
    model = create_model(name, num_classes=10, input_size=(in_channels, size, size)).eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, in_channels, size, size))
    assert counter.get_total_flops() // 2 == expected_macs(in_channels, size, 10, name)


@pytest.mark.parametrize("in_channels, size, grids", [(1, 28, (14, 7, 3)), (3, 32, (16, 8, 4))])
def test_stage_shapes(in_channels, size, grids):
    model = create_model("fastnet", num_classes=10, input_size=(in_channels, size, size)).eval()
    assert [name for name, _ in model.named_children()] == ["stem", "stages", "head"]
    x = torch.randn(2, in_channels, size, size)
    with torch.no_grad():
        x = model.stem(x)
        shapes = [tuple(x.shape)]
        for stage in model.stages:
            x = stage(x)
            shapes.append(tuple(x.shape))
        logits = model.head(x)
    stem_channels, stage_channels = FASTNET_CONFIGS["fastnet"]
    widths = (stem_channels, *stage_channels)
    assert shapes == [(2, width, grid, grid) for width, grid in zip(widths, grids)]
    assert logits.shape == (2, 10)


def test_forward_backward_is_finite_with_a_gradient_for_every_parameter():
    torch.manual_seed(0)
    model = create_model("fastnet", num_classes=10, input_size=(1, 28, 28)).train()
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(parameter.grad is not None and torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0
               for parameter in model.parameters())


def test_a_few_steps_fit_a_small_batch():
    torch.manual_seed(0)
    model = create_model("fastnet", num_classes=10, input_size=(1, 28, 28)).train()
    images, labels = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(10):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]

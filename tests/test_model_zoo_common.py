"""Every registered model, at 1x28x28 and 3x32x32 with 10 classes: forward and backward without NaN, a
gradient for every trainable parameter, logits alone in eval mode; and the counts of the model built on the
meta device (as `papernets list` and `papernets info` build it) equal those of the real model."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from papernets.models import count_parameters, create_model, list_models, summarize

INPUT_SIZES = [(1, 28, 28), (3, 32, 32)]
BATCH = 2
# The deepest networks take most of this file's time; the quick loop (`-m "not slow"`) leaves them out.
DEEPEST = {"resnet101", "resnet152", "resnet1202"}
MODELS = [pytest.param(name, marks=pytest.mark.slow) if name in DEEPEST else name for name in list_models()]


@pytest.mark.parametrize("input_size", INPUT_SIZES, ids=lambda size: "x".join(map(str, size)))
@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_eval_logits_and_meta_counts(name, input_size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, input_size=input_size).train()
    images, labels = torch.randn(BATCH, *input_size), torch.tensor([3, 7])
    outputs = model(images)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    assert all(output.shape == (BATCH, 10) for output in outputs)
    assert all(torch.isfinite(output).all() for output in outputs)
    sum(F.cross_entropy(output, labels) for output in outputs).backward()
    for parameter_name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None, f"{name}: no gradient for {parameter_name}"
            assert torch.isfinite(parameter.grad).all(), f"{name}: non-finite gradient for {parameter_name}"

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        logits = model(images)
    assert isinstance(logits, torch.Tensor) and logits.shape == (BATCH, 10)
    assert torch.isfinite(logits).all()

    with torch.device("meta"):
        on_meta = summarize(create_model(name, num_classes=10, input_size=input_size), input_size)
    assert on_meta.total_params == count_parameters(model)
    assert on_meta.trainable_params == count_parameters(model, trainable_only=True)
    assert on_meta.flops * BATCH == counter.get_total_flops()

"""Shared by the weights-interop tests: random weights and BatchNorm statistics, so that a wrong key mapping
cannot give equal logits."""

import torch
import torchvision
from torch import nn


def randomize(model: nn.Module) -> nn.Module:
    """Every floating-point tensor of the state dict drawn at random (running variances kept positive)."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif tensor.is_floating_point():
                tensor.normal_(0.0, 0.05)
    return model


def randomized_torchvision(name: str) -> nn.Module:
    """A torchvision model with random weights, non-trivial BatchNorm statistics and O(1) logits, in eval mode."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
        elif isinstance(module, nn.Linear):
            module.weight.data.normal_(0, module.in_features ** -0.5)
            module.bias.data.uniform_(-0.1, 0.1)
        elif isinstance(module, nn.Conv2d) and module.bias is not None:  # the squeeze-and-excite layers
            module.bias.data.uniform_(-0.5, 0.5)
    return model.eval()

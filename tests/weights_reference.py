"""Shared by the weights-interop tests: random weights and BatchNorm statistics, so that a wrong key mapping
cannot give equal logits."""

import torch
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

"""Weights interop: load a torchvision state dict into the matching papernets model.

Each torchvision-compatible model class defines `convert_torchvision_state_dict(self, state_dict) -> dict`,
a pure renaming of keys (and reshaping where a layer differs only in form). Users with internet can start
from torchvision's ImageNet weights:

    model = create_model("resnet50", v1_5=True)
    load_torchvision_state_dict(model, torchvision.models.resnet50(weights="DEFAULT").state_dict())
"""

from collections.abc import Mapping

import torch
from torch import nn

from papernets.errors import ModelError


def load_torchvision_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load torchvision weights into `model` (strict: every key must map and every shape must match)."""
    convert = getattr(model, "convert_torchvision_state_dict", None)
    if convert is None:
        raise ModelError(f"{type(model).__name__} has no torchvision counterpart whose weights it can load.")
    converted = convert(dict(state_dict))
    own = model.state_dict()
    missing = sorted(set(own) - set(converted))
    unexpected = sorted(set(converted) - set(own))
    if missing or unexpected:
        raise ModelError(f"torchvision weights do not fit {type(model).__name__}: "
                         f"missing {missing[:3]}, unexpected {unexpected[:3]}.")
    wrong = [key for key in own if own[key].shape != converted[key].shape]
    if wrong:
        raise ModelError(f"torchvision weights do not fit {type(model).__name__}: shape differs for {wrong[:3]}.")
    model.load_state_dict(converted)
    return model

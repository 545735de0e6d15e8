"""Weights interop: load a torchvision state dict into the matching papernets model.

All renaming happens here, one way for every family. A torchvision-compatible model class says which of its
modules is which torchvision module: `torchvision_modules(self, state_dict) -> {torchvision module: ours}`
(it may look at the state dict to refuse weights of another configuration in its own words).
`rename_by_position` then maps the tensors inside each pair of modules in registration order, which both
sides share. Users with internet can start from torchvision's ImageNet weights:

    model = create_model("resnet50", v1_5=True)
    load_torchvision_state_dict(model, torchvision.models.resnet50(weights="DEFAULT").state_dict())

Models never rescale their inputs: torchvision's `transform_input` (googlenet, inception_v3 weights, ported
from models trained on inputs in [-1, 1]) is replaced by normalising with `TORCHVISION_WEIGHTS_NORMALIZATION`.
"""

from collections.abc import Mapping

import torch
from torch import nn

from papernets.errors import ModelError

TORCHVISION_WEIGHTS_NORMALIZATION = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def rename_by_position(state_dict: Mapping[str, torch.Tensor], own_state: Mapping[str, torch.Tensor],
                       modules: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Rename each source module's keys to the target module's keys in registration order.

    Both sides register the same layers in the same order inside each module, so the n-th tensor of
    torchvision's `inception3a` is the n-th tensor of our `stages.inception_3a`; the field names (weight,
    bias, running_mean, ...) must agree. Auxiliary-head weights are dropped when the target has no such head.
    Keys of modules that are not listed are kept as they are, so that the strict load reports them.
    """
    converted = {}
    for source, target in modules.items():
        source_keys = [key for key in state_dict if key.startswith(f"{source}.")]
        target_keys = [key for key in own_state if key.startswith(f"{target}.")]
        if source_keys and not target_keys and target.startswith("aux_heads."):
            continue
        fields_agree = all(s.rsplit(".", 1)[1] == t.rsplit(".", 1)[1] for s, t in zip(source_keys, target_keys))
        if len(source_keys) != len(target_keys) or not fields_agree:
            raise ModelError(f"torchvision weights do not fit: their {source!r} does not match this model's "
                             f"{target!r} layer for layer; load weights of the same architecture and options.")
        converted |= {t: state_dict[s] for s, t in zip(source_keys, target_keys)}
    listed = tuple(f"{source}." for source in modules)
    converted |= {key: value for key, value in state_dict.items() if not key.startswith(listed)}
    return converted


def convert_torchvision_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's state dict with its keys renamed to `model`'s (not yet checked against the model)."""
    torchvision_modules = getattr(model, "torchvision_modules", None)
    if torchvision_modules is None:
        raise ModelError(f"{type(model).__name__} has no torchvision counterpart whose weights it can load.")
    state_dict = dict(state_dict)
    return rename_by_position(state_dict, model.state_dict(), torchvision_modules(state_dict))


def load_torchvision_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load torchvision weights into `model` (strict: every key must map and every shape must match)."""
    converted = convert_torchvision_state_dict(model, state_dict)
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

"""Weights interop: load a torchvision state dict into the matching papernets model.

All renaming happens here, one way for every family. A torchvision-compatible model class says which of its
modules is which torchvision module: `torchvision_modules(self, state_dict) -> {torchvision module: ours}`
(it may look at the state dict to refuse weights of another configuration in its own words).
`rename_by_position` then maps the tensors inside each pair of modules in registration order, which both
sides share. Users with internet can start from torchvision's ImageNet weights:

    model = create_model("resnet50", v1_5=True)
    load_torchvision_state_dict(model, torchvision.models.resnet50(weights="DEFAULT").state_dict())

The layout must match, not only the shapes: a model whose strides differ from torchvision's (the paper's ResNet
bottleneck, any `small_input=True` stem) refuses the weights, since they would load and compute something else.

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
    if getattr(model, "small_input", False):
        raise ModelError(f"This {type(model).__name__} was built with small_input=True, whose strides differ from "
                         "torchvision's, so its weights would compute something else: build it with "
                         "small_input=False (papernets train --pretrained does).")
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


def fine_tuning_start(name: str, state_dict: Mapping[str, torch.Tensor], *, num_classes: int,
                      input_size: tuple[int, int, int], **options) -> tuple[nn.Module, list[str]]:
    """The registered model `name` for `num_classes` classes and `input_size` images, starting from torchvision's
    weights of its counterpart (loaded strictly into a model of torchvision's class count first), and the keys
    left at their initialisation: the classifier layers, whose size is the class count (the head is replaced).
    For grey images the first convolution's kernels are summed over the three colour channels."""
    from papernets.models.registry import create_model, get_model_entry, list_models

    entry = get_model_entry(name)
    if entry.torchvision_name is None:
        exact = ", ".join(model for model in list_models() if get_model_entry(model).torchvision_name)
        raise ModelError(f"{name} has no torchvision counterpart, so torchvision weights cannot start it; "
                         f"pretrained weights fit {exact}.")
    source = create_model(name, num_classes=entry.num_classes, in_channels=entry.input_size[0], **options)
    load_torchvision_state_dict(source, state_dict)
    model = create_model(name, num_classes=num_classes, input_size=input_size, **options)
    own = model.state_dict()
    replaced = []
    for key, tensor in source.state_dict().items():
        if tensor.shape == own[key].shape:
            own[key] = tensor
        elif tensor.shape[0] == entry.num_classes:
            replaced.append(key)
        elif tensor.dim() == 4 and tensor.shape[1] == 3 and own[key].shape[1] == 1:
            own[key] = tensor.sum(dim=1, keepdim=True)  # (out, 3, k, k) -> (out, 1, k, k): grey = R = G = B
        else:
            raise ModelError(f"torchvision's {key} {tuple(tensor.shape)} does not fit {name}'s "
                             f"{tuple(own[key].shape)} for {num_classes} classes on {input_size} images.")
    model.load_state_dict(own)
    return model, replaced

"""The model registry: `@register_model`, `create_model`, `list_models` (the pattern of timm and torchvision).

Each registered builder takes keyword arguments `num_classes`, `in_channels` and its own options, and returns
an `nn.Module` that gives logits in eval mode.

Small images (one mechanism for every model): `create_model(name, input_size=(C, H, W))`. When the model was
designed for inputs of 64 pixels or more and `H` is below 64, the builder is called with `small_input=True`,
and the model's stem drops its early downsampling (each model file states this as a deviation).
"""

import difflib
import fnmatch
import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Callable

from torch import nn

from papernets.errors import ModelError

SMALL_INPUT_BELOW = 64


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    paper: str                          # short cite, e.g. "He et al. 2015, arXiv:1512.03385"
    input_size: tuple[int, int, int]    # (C, H, W) the paper uses
    num_classes: int                    # classes of the paper's task
    torchvision_name: str | None = None  # the torchvision builder whose weights load into this model

    @property
    def designed_for_small_input(self) -> bool:
        return self.input_size[1] < SMALL_INPUT_BELOW


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(*, paper: str, input_size: tuple[int, int, int], num_classes: int,
                   torchvision_name: str | None = None):
    """Register the decorated builder under its function name."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, paper, tuple(input_size), num_classes, torchvision_name)
        return builder

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching an fnmatch pattern (`"resnet*"`), in natural order (resnet20 before
    resnet110)."""
    return sorted((name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern)), key=_natural_key)


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def get_model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "run `papernets list` to see every model."
        raise ModelError(f"Unknown model {name!r}: {hint}") from None


def check_option_types(entry: ModelEntry, options: dict) -> None:
    """Each option of the type its builder declares (an int where a float is declared; never a bool for a
    number), so that a string width multiplier is one sentence rather than a TypeError deep in a layer."""
    hints = typing.get_type_hints(entry.builder)
    for option, value in options.items():
        declared = hints.get(option)
        allowed = typing.get_args(declared) if typing.get_origin(declared) in (typing.Union, types.UnionType) \
            else (declared,)
        if float in allowed:
            allowed += (int,)
        plain = [kind for kind in allowed if isinstance(kind, type)]
        if plain and (not isinstance(value, tuple(plain)) or (isinstance(value, bool) and bool not in plain)):
            names = " or ".join(kind.__name__ for kind in plain)
            raise ModelError(f"{entry.name} option {option} must be of type {names}; got {value!r}.")


def create_model(name: str, *, num_classes: int | None = None, in_channels: int | None = None,
                 input_size: tuple[int, int, int] | None = None, **options) -> nn.Module:
    """Build a registered model.

    `num_classes` and `in_channels` default to the paper's; `input_size` (C, H, W) sets `in_channels` and, for
    a model designed for large images, `small_input=True` below 64 pixels.
    """
    entry = get_model_entry(name)
    if input_size is not None:
        if in_channels is None:
            in_channels = input_size[0]
        if not entry.designed_for_small_input and input_size[1] < SMALL_INPUT_BELOW:
            options.setdefault("small_input", True)
    num_classes = entry.num_classes if num_classes is None else num_classes
    in_channels = entry.input_size[0] if in_channels is None else in_channels
    if num_classes < 1 or in_channels < 1:
        raise ModelError(f"{name} needs num_classes >= 1 and in_channels >= 1, got {num_classes} and {in_channels}.")
    try:
        inspect.signature(entry.builder).bind(num_classes=num_classes, in_channels=in_channels, **options)
    except TypeError as error:
        raise ModelError(f"{name} does not take these options ({error}).") from None
    check_option_types(entry, options)
    return entry.builder(num_classes=num_classes, in_channels=in_channels, **options)

"""What a well-formed checkpoint holds, checked once, where checkpoints are read (`load_checkpoint`).

The checksum proves a file undamaged, not that papernets wrote it: a file with a valid checksum may still miss a
field, hold a string for the epoch, three class names for ten classes or a standard deviation of 0. Each such
file is refused here with one sentence naming the field, before a model is built or a run resumed. What can
only be checked against a built model (weight and optimizer-state shapes) is checked in
`checkpoint.restore_training` and `checkpoint.load_weights`; the config's values, by `config_from_dict` where a
run is resumed or evaluated.
"""

import math

import torch

from papernets.errors import CheckpointError

MAX_CLASSES = 100_000   # ImageNet-21k has 21,841; a larger count would only allocate a huge head
MAX_IMAGE_SIDE = 4096   # the most channels, rows or columns an input may declare
PRECISIONS = ("bf16", "off")
TORCH_RNG_BYTES = 5056  # torch.get_rng_state() of the CPU generator (Mersenne Twister state and a counter)
MT19937_WORDS = 624     # numpy's and Python's Mersenne Twister state (Python adds the position: 625)
# The optimizer each config names, and a key only its param_groups hold.
OPTIMIZER_GROUP_KEYS = {"sgd": "nesterov", "adamw": "betas", "rmsprop": "alpha", "sdlm": "mu"}


def _is_int(value) -> bool:
    return type(value) is int


def _is_number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _is_count(value) -> bool:
    return _is_int(value) and value >= 0


def _numbers(value, length: int | None = None) -> bool:
    return (isinstance(value, list) and all(_is_number(item) for item in value)
            and (length is None or len(value) == length))


def _tensor(value, dtype: torch.dtype, shape: tuple[int, ...]) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == dtype and tuple(value.shape) == shape


def _string_keys(value) -> bool:
    return isinstance(value, dict) and all(isinstance(key, str) for key in value)


def _rng_state(state) -> bool:
    """The shape `capture_rng_state` writes: torch's byte state, numpy's and Python's Mersenne Twister."""
    if not (isinstance(state, dict) and isinstance(state.get("numpy"), dict) and isinstance(state.get("python"),
                                                                                              dict)):
        return False
    numpy_state, python_state = state["numpy"], state["python"]
    internal = python_state.get("internal")
    return (_tensor(state.get("torch"), torch.uint8, (TORCH_RNG_BYTES,))
            and numpy_state.get("name") == "MT19937"
            and _tensor(numpy_state.get("keys"), torch.int64, (MT19937_WORDS,))
            and _is_int(numpy_state.get("position")) and 0 <= numpy_state["position"] <= MT19937_WORDS
            and numpy_state.get("has_gauss") in (0, 1) and _is_number(numpy_state.get("cached_gaussian"))
            and python_state.get("version") == 3
            and isinstance(internal, (list, tuple)) and len(internal) == MT19937_WORDS + 1
            and all(_is_int(word) and 0 <= word < 2**32 for word in internal[:-1])
            and _is_int(internal[-1]) and 0 <= internal[-1] <= MT19937_WORDS
            and (python_state.get("gauss_next") is None or _is_number(python_state["gauss_next"])))


def _optimizer_state(state) -> bool:
    groups = state.get("param_groups") if isinstance(state, dict) else None
    return (isinstance(state.get("state") if isinstance(state, dict) else None, dict)
            and isinstance(groups, list) and len(groups) > 0
            and all(isinstance(group, dict) and isinstance(group.get("params"), list)
                    and all(_is_count(index) for index in group["params"]) for group in groups))


# Each field: (what it must be, in words; the test of its value alone).
FIELDS = {
    "model": ("a model name", lambda value: isinstance(value, str) and bool(value)),
    "model_options": ("a table of options", _string_keys),
    "num_classes": (f"a class count in 1..{MAX_CLASSES}", lambda value: _is_int(value) and 1 <= value <= MAX_CLASSES),
    "in_channels": ("a channel count", lambda value: _is_int(value) and 1 <= value <= MAX_IMAGE_SIDE),
    "input_size": (f"[channels, height, width], each in 1..{MAX_IMAGE_SIDE}",
                   lambda value: isinstance(value, list) and len(value) == 3
                   and all(_is_int(size) and 1 <= size <= MAX_IMAGE_SIDE for size in value)),
    "dataset": ("a dataset name", lambda value: isinstance(value, str) and bool(value)),
    "class_names": ("a list of class names", lambda value: isinstance(value, list)
                    and all(isinstance(name, str) for name in value)),
    "normalization": ("{mean, std} lists of finite numbers, std positive",
                      lambda value: isinstance(value, dict) and _numbers(value.get("mean"))
                      and _numbers(value.get("std")) and all(std > 0 for std in value["std"])),
    "precision": (f"one of {', '.join(PRECISIONS)}", lambda value: value in PRECISIONS),
    "config": ("a table of training settings", _string_keys),
    "model_state": ("a table of weight tensors", lambda value: _string_keys(value)
                    and all(isinstance(tensor, torch.Tensor) for tensor in value.values())),
    "optimizer_state": ("an optimizer state (state, param_groups)", _optimizer_state),
    "schedule_state": ("a table", _string_keys),
    "scaler_state": ("a table", _string_keys),
    "epoch": ("a whole number >= 0", _is_count),
    "step": ("a whole number >= 0", _is_count),
    "global_step": ("a whole number >= 0", _is_count),
    "rng": ("the random-number states papernets saves", _rng_state),
    "epoch_sums": ("three numbers", lambda value: _numbers(value, 3)),
    "metrics_rows": ("a list of metric rows", lambda value: isinstance(value, list)
                     and all(_string_keys(row) for row in value)),
    "best_val_accuracy": ("empty or a fraction in [0, 1]",
                          lambda value: value is None or (_is_number(value) and 0 <= value <= 1)),
    "best_epoch": ("empty or an epoch >= 1", lambda value: value is None or (_is_int(value) and value >= 1)),
    "train_seconds": ("a number of seconds >= 0", lambda value: _is_number(value) and value >= 0),
}


def check_checkpoint(checkpoint: dict, where: str) -> None:
    """Every field present and well-formed, and the fields consistent with one another; else a CheckpointError
    naming the first problem (`where` names the file)."""
    def refuse(problem: str):
        raise CheckpointError(f"{where} {problem}; use a file written by `papernets train`, or resume from an "
                              "earlier checkpoint.")

    for name, (expected, is_valid) in FIELDS.items():
        if name not in checkpoint:
            refuse(f"has no {name!r} field")
        if not is_valid(checkpoint[name]):
            refuse(f"has an invalid {name!r} field (it must be {expected})")
    channels = checkpoint["input_size"][0]
    normalization = checkpoint["normalization"]
    if checkpoint["in_channels"] != channels or not len(normalization["mean"]) == len(normalization["std"]) == channels:
        refuse(f"disagrees with itself: input_size {checkpoint['input_size']}, in_channels {checkpoint['in_channels']} "
               f"and {len(normalization['mean'])} normalization means")
    if len(checkpoint["class_names"]) != checkpoint["num_classes"]:
        refuse(f"names {len(checkpoint['class_names'])} classes for num_classes {checkpoint['num_classes']}")
    config = checkpoint["config"]
    if (config.get("model"), config.get("dataset")) != (checkpoint["model"], checkpoint["dataset"]):
        refuse(f"trains {checkpoint['model']} on {checkpoint['dataset']} but its config says {config.get('model')} "
               f"on {config.get('dataset')}")
    optimizer = config.get("optimizer")
    if optimizer not in OPTIMIZER_GROUP_KEYS or not all(OPTIMIZER_GROUP_KEYS[optimizer] in group
                                                        for group in checkpoint["optimizer_state"]["param_groups"]):
        refuse(f"holds the state of another optimizer than its config's {optimizer}")

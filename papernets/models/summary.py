"""Model summaries: a per-layer table (shapes, parameters, multiply-accumulates) and totals, for any model.

MACs come from `torch.utils.flop_counter.FlopCounterMode` over one forward pass at batch 1 in eval mode; it
counts 2 FLOPs per multiply-accumulate of convolutions and matrix products (element-wise operations,
pooling and normalization are not counted), so MACs = FLOPs / 2. Shapes come from forward hooks.

Counting needs no real computation: a model built on the meta device (`with torch.device("meta"):`) is
summarized in milliseconds whatever its size, which is how `papernets list` covers every model.
"""

import operator
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from papernets.errors import ModelError

FLOPS_PER_MAC = 2
ACTIVATION_BYTES_PER_VALUE = 4   # fp32
STAGE_DEPTH = 2                  # top-level children and their children get a row even when not leaves


@dataclass(frozen=True)
class LayerRow:
    name: str                               # dotted path in the model, e.g. "stages.0.0.conv1"
    depth: int                              # 1 for a top-level child
    type: str
    input_shape: tuple[int, ...] | None     # without the batch dimension; None when the layer did not run
    output_shape: tuple[int, ...] | None
    params: int                             # of the layer and everything inside it
    macs: int                               # of the layer and everything inside it


@dataclass(frozen=True)
class ModelSummary:
    model: str
    input_size: tuple[int, int, int]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    inference_params: int                  # without auxiliary heads (training-only), as the papers count
    macs: int
    flops: int
    param_bytes: int
    activation_bytes: int                   # sum of every leaf module's output, fp32, batch 1

    def to_dict(self) -> dict:
        return asdict(self) | {"notes": {
            "macs": "multiply-accumulates of convolutions and matrix products at batch 1, eval mode",
            "flops": "FlopCounterMode total, 2 FLOPs per multiply-accumulate",
            "activation_bytes": "sum of leaf-module output sizes x 4 bytes (fp32), batch 1",
        }}

    def format(self) -> str:
        header = ("Layer", "Type", "Input", "Output", "Params", "MACs")
        table = [header] + [
            ("  " * min(row.depth - 1, STAGE_DEPTH) + row.name, row.type, format_shape(row.input_shape),
             format_shape(row.output_shape), f"{row.params:,}", f"{row.macs:,}")
            for row in self.rows
        ]
        widths = [max(len(line[column]) for line in table) for column in range(len(header))]
        right_aligned = {4, 5}
        lines = [
            "  ".join(cell.rjust(width) if column in right_aligned else cell.ljust(width)
                      for column, (cell, width) in enumerate(zip(line, widths))).rstrip()
            for line in table
        ]
        rule = "-" * len(max(lines, key=len))
        input_text = format_shape(self.input_size)
        return "\n".join([
            f"{self.model}, input {input_text} (batch 1, eval mode)", rule, lines[0], rule, *lines[1:], rule,
            f"Params: {self.total_params:,} total, {self.trainable_params:,} trainable "
            f"({self.total_params - self.trainable_params:,} not trainable); "
            f"{self.inference_params:,} without auxiliary heads",
            f"MACs: {self.macs:,} ({format_count(self.macs)}); FLOPs: {self.flops:,} "
            f"(FlopCounterMode, 2 per MAC, convolutions and matrix products only)",
            f"Parameter memory: {format_bytes(self.param_bytes)}",
            f"Activation memory: {format_bytes(self.activation_bytes)} "
            f"(sum of leaf-module outputs, fp32, batch 1)",
        ])

    __str__ = format


def format_shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else "x".join(str(size) for size in shape)


def format_count(count: int) -> str:
    """2_000_000 -> '2.00 M'; three significant figures with K, M or G."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:#.3g} {suffix}" if count / scale < 100 else f"{count / scale:.0f} {suffix}"
    return str(count)


def format_bytes(size: int) -> str:
    return f"{size:,} bytes ({size / 2**20:.2f} MiB)"


def count_parameters(model: nn.Module, trainable_only: bool = False, include_aux: bool = True) -> int:
    """Parameters of `model`; `include_aux=False` leaves out auxiliary heads (the `aux_heads` of GoogLeNet and
    Inception v3, used in training only), which is how the papers count."""
    aux = getattr(model, "aux_heads", None)
    aux_ids = {id(parameter) for parameter in aux.parameters()} if aux is not None and not include_aux else set()
    return sum(parameter.numel() for parameter in model.parameters()
               if (parameter.requires_grad or not trainable_only) and id(parameter) not in aux_ids)


def count_macs(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one forward pass at batch 1 in eval mode (FlopCounterMode total / 2)."""
    counter = _count_flops(model, input_size, hooks={})
    return counter.get_total_flops() // FLOPS_PER_MAC


def summarize(model: nn.Module, input_size: tuple[int, int, int]) -> ModelSummary:
    """Run one batch-1 forward pass of `model` in eval mode and tabulate every stage and leaf layer.

    Rows: the top-level children (`stem`, `stages`/`features`, `head`), their direct children, and every
    leaf module, in definition order. A layer that did not run (an auxiliary head in eval mode) shows "-"
    for its shapes; its parameters still count in the totals.
    """
    modules = dict(model.named_modules())
    shown = [name for name, module in modules.items()
             if name and (name.count(".") < STAGE_DEPTH or _is_leaf(module))]
    shapes: dict[str, tuple[tuple[int, ...] | None, tuple[int, ...] | None]] = {}
    leaf_output_values = dict.fromkeys((name for name in shown if _is_leaf(modules[name])), 0)

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            output_tensor = _first_tensor(output)
            shapes.setdefault(name, (_shape_without_batch(_first_tensor(inputs)),
                                     _shape_without_batch(output_tensor)))
            if name in leaf_output_values and output_tensor is not None:
                leaf_output_values[name] += output_tensor.numel()
        return hook

    counter = _count_flops(model, input_size, hooks={name: record(name) for name in shown})
    flops_by_module = counter.get_flop_counts()
    root = type(model).__name__

    def row(name: str) -> LayerRow:
        input_shape, output_shape = shapes.get(name, (None, None))
        flops = sum(flops_by_module.get(f"{root}.{name}", {}).values())   # keys: "<root class>.<path>"
        return LayerRow(name=name, depth=name.count(".") + 1, type=type(modules[name]).__name__,
                        input_shape=input_shape, output_shape=output_shape,
                        params=count_parameters(modules[name]), macs=flops // FLOPS_PER_MAC)

    rows = [row(name) for name in shown]
    flops = counter.get_total_flops()
    return ModelSummary(
        model=root, input_size=_checked_input_size(input_size), rows=rows,
        total_params=count_parameters(model), trainable_params=count_parameters(model, trainable_only=True),
        inference_params=count_parameters(model, include_aux=False),
        macs=flops // FLOPS_PER_MAC, flops=flops,
        param_bytes=sum(parameter.numel() * parameter.element_size() for parameter in model.parameters()),
        activation_bytes=sum(leaf_output_values.values()) * ACTIVATION_BYTES_PER_VALUE,
    )


def _count_flops(model: nn.Module, input_size: tuple[int, int, int], hooks: dict) -> FlopCounterMode:
    """One batch-1 forward pass in eval mode under FlopCounterMode, with forward hooks on the named modules."""
    input_size = _checked_input_size(input_size)
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), torch.empty(0))
    dtype = tensor.dtype if tensor.is_floating_point() else torch.float32
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(hook) for name, hook in hooks.items()]
    training_modes = {module: module.training for module in model.modules()}
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(1, *input_size, device=tensor.device, dtype=dtype))
    finally:
        for module, training in training_modes.items():
            module.train(training)
        for handle in handles:
            handle.remove()
    return counter


def _checked_input_size(input_size) -> tuple[int, int, int]:
    try:
        sizes = tuple(operator.index(size) for size in input_size)
    except TypeError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise ModelError(f"An input size must be three positive integers (C, H, W), got {input_size!r}.")
    return sizes


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _first_tensor(value) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        return next((item for item in map(_first_tensor, value) if item is not None), None)
    return None


def _shape_without_batch(tensor: torch.Tensor | None) -> tuple[int, ...] | None:
    return None if tensor is None else tuple(tensor.shape[1:])

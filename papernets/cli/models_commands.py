"""`papernets list [PATTERN]` and `papernets info MODEL`: what each model is and what it costs.

Models are built on the meta device: shapes, parameters and MACs come out without allocating memory or
computing values. `list` counts MACs with BatchNorm left out (it holds none; on the meta device its shape
functions run in Python and took most of the time). Listing all 32 models takes about 6 s of CPU on a 2-core
machine (measured: 5.9 s user time, 7.5 s before BatchNorm was left out), most of it importing torch and
building the layers; `papernets list 'vgg*'` lists a part quicker.
"""

import argparse
import json
import re

import torch
from torch import nn

from papernets.models.summary import count_macs, count_parameters, format_count, summarize
from papernets.errors import ConfigError, ModelError
from papernets.models import create_model, get_model_entry, list_models

INPUT_SIZE_PATTERN = re.compile(r"(\d+)x(\d+)x(\d+)")


def add_commands(subparsers) -> None:
    listing = subparsers.add_parser("list", help="list the registered models with parameters and MACs")
    listing.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*' (default: all)")
    listing.set_defaults(run=run_list)

    info = subparsers.add_parser("info", help="per-layer table of a model: shapes, parameters, MACs")
    info.add_argument("model", help="a name from `papernets list`")
    info.add_argument("--input", type=parse_input_size, metavar="CxHxW",
                      help="input size, e.g. 1x28x28 (default: the paper's); small images switch on the "
                           "model's small-input stem")
    info.add_argument("--num-classes", type=int, metavar="N", help="output classes (default: the paper's)")
    info.add_argument("--width", type=float, metavar="FLOAT",
                      help="width multiplier (MobileNet), passed as width_multiplier")
    info.add_argument("--option", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                      help="a model option; VALUE is read as int, float, true/false, or else a string")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(run=run_info)


def parse_input_size(text: str) -> tuple[int, int, int]:
    match = INPUT_SIZE_PATTERN.fullmatch(text.strip())
    if match is None or not all(int(size) > 0 for size in match.groups()):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an input size; give channels x height x width as positive integers, e.g. 1x28x28")
    return tuple(int(size) for size in match.groups())


def parse_option(text: str) -> tuple[str, int | float | bool | str]:
    key, separator, value = text.partition("=")
    if not separator or not key.isidentifier():
        raise ConfigError(f"--option {text!r} is not KEY=VALUE; write it like --option v1_5=true.")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    for number_type in (int, float):
        try:
            return key, number_type(value)
        except ValueError:
            pass
    return key, value


def without_batch_norm(model: nn.Module) -> nn.Module:
    """`model` with every BatchNorm replaced by an identity, in place: the same MACs (FlopCounterMode counts
    convolutions and matrix products only) without BatchNorm's shape functions, which run in Python on the meta
    device and took most of `papernets list`'s time (the CIFAR ResNets alone have 2,000-odd BatchNorms)."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, child_name, nn.Identity())
    return model


def run_list(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise ModelError(f"No model matches {args.pattern!r}; run `papernets list` to see every model.")
    table = [("Model", "Paper", "Input", "Params", "MACs")]
    with_aux_heads = False
    for name in names:
        entry = get_model_entry(name)
        with torch.device("meta"):
            model = create_model(name)
        params = count_parameters(model, include_aux=False)
        if count_parameters(model) != params:
            with_aux_heads = True
            name += "*"
        macs = count_macs(without_batch_norm(model), entry.input_size)
        table.append((name, entry.paper, "x".join(map(str, entry.input_size)), f"{params:,}", format_count(macs)))
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.rjust(width) if column >= 3 else cell.ljust(width)
                        for column, (cell, width) in enumerate(zip(row, widths))).rstrip())
    if with_aux_heads:
        print("* params without the auxiliary heads (used in training only), as the papers count; "
              "`papernets info` shows both.")
    return 0


def run_info(args: argparse.Namespace) -> int:
    entry = get_model_entry(args.model)
    options = dict(map(parse_option, args.option))
    if args.width is not None:
        options["width_multiplier"] = args.width
    if args.num_classes is not None and args.num_classes < 1:
        raise ConfigError(f"--num-classes must be at least 1, got {args.num_classes}.")
    input_size = args.input or entry.input_size
    with torch.device("meta"):
        model = create_model(args.model, num_classes=args.num_classes, input_size=args.input, **options)
    try:
        summary = summarize(model, input_size)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{args.model} cannot take an input of {'x'.join(map(str, input_size))} "
                         f"({first_line}); try a larger --input.") from None
    if args.json:
        print(json.dumps({"name": args.model, "paper": entry.paper, "options": options} | summary.to_dict(),
                         indent=2))
    else:
        print(f"{args.model} ({entry.paper})")
        print(summary.format())
    return 0

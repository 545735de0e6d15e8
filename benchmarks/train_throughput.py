"""Training throughput of ResNet-20 on Fashion-MNIST at batch 256: papernets' default CPU path vs the plain
tutorial loop, measured in one run; and the model FLOP utilisation of papernets' path.

- papernets: `papernets.training.engine.train` itself (device-resident BatchLoader with batched pad-2 crop
  and flip, bf16 autocast, channels_last, SGD), for `--steps` steps; images/s from its metrics.csv.
- tutorial: torchvision's FashionMNIST dataset, a DataLoader with 2 workers and per-image RandomCrop(28, 2),
  RandomHorizontalFlip, ToTensor, Normalize; fp32, NCHW; the same model, batch, optimizer and loss.
- FLOP utilisation: FLOPs of one training step (forward + backward, FlopCounterMode) times steps/s, divided by
  the bf16 and fp32 matmul peaks (2048^3 matmuls) measured in the same run.
- `--ablations`: the model alone on a batch already in memory (no loader), varying one thing at a time
  (precision, memory format, batch size, BN in training mode vs frozen, torch.compile with `--compile`),
  and a profile of where the time of one default step goes, to say what holds the utilisation back.
- `--levers`: the model alone again, each lever timed in alternating rounds with the default step in the
  same run (ratios stay fair on a shared machine): torch.compile of the whole model in three modes (compile
  time apart from steady-state images/s), inductor on each BasicBlock (fuses BN+ReLU and add+ReLU around
  oneDNN's convolutions) or on each BatchNorm alone, and the NCHW-gradient layers ResNet had before
  2026-12-02. Then a layout check of one step: bf16/fp32 conversions of activations, operators fed mixed
  NCHW / channels_last tensors, and oneDNN reorders (ONEDNN_VERBOSE=1 in a subprocess).
  Threads, processes and load: benchmarks/threads_and_processes.py.

    .venv/bin/python benchmarks/train_throughput.py [--steps 60] [--ablations] [--compile] [--levers]
"""

import argparse
import collections
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import append_entry, hardware, markdown_table, matmul_peak_flops  # noqa: E402

from papernets.models import create_model  # noqa: E402
from papernets.models.resnet import BasicBlock, ZeroPadShortcut  # noqa: E402

BATCH = 256
FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte")


def papernets_images_per_s(steps: int, workdir: Path) -> tuple[float, Path]:
    """The engine's own training pass for `steps` steps (no validation split, so an epoch is only steps)."""
    import csv

    from papernets.config import load_config
    from papernets.training.engine import train

    config = load_config(None, {"model": "resnet20", "dataset": "fashion-mnist", "iterations": steps,
                                "batch_size": BATCH, "lr": 0.1, "momentum": 0.9, "nesterov": True,
                                "amp": "auto", "channels_last": True, "val_size": 0, "test_size": BATCH,
                                "output": str(workdir), "run_name": f"throughput-{time.time_ns()}",
                                "report": False, "quiet": True})
    run_dir = train(config)
    with open(run_dir / "metrics.csv") as file:
        row = next(csv.DictReader(file))
    return float(row["images_per_s"]), run_dir


def torchvision_fashion_root(workdir: Path) -> Path:
    """torchvision's layout (root/FashionMNIST/raw/<files>, uncompressed) built from the files papernets finds."""
    from papernets.data import load_dataset

    source = Path(load_dataset("fashion-mnist").source)
    raw = workdir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FASHION_FILES:
        compressed, plain = source / f"{name}.gz", source / name
        if plain.exists():
            shutil.copyfile(plain, raw / name)
        else:
            with gzip.open(compressed) as reader, open(raw / name, "wb") as writer:
                shutil.copyfileobj(reader, writer)
    return workdir


def tutorial_images_per_s(steps: int, root: Path, mean: float, std: float) -> float:
    """The loop of the PyTorch tutorials: per-image transforms in 2 worker processes, fp32, NCHW."""
    import torchvision
    from torchvision import transforms

    transform = transforms.Compose([transforms.RandomCrop(28, padding=2), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    dataset = torchvision.datasets.FashionMNIST(str(root), train=True, transform=transform, download=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=2, drop_last=True,
                                         persistent_workers=True)
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, input_size=(1, 28, 28)).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    warmup = 3
    batches = iter(loader)
    started = None
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        images, labels = next(batches)
        loss = criterion(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * BATCH / (time.perf_counter() - started)


def training_step_flops(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> int:
    """FLOPs of one forward + backward (FlopCounterMode: 2 per multiply-add; convolutions and matmuls)."""
    with FlopCounterMode(display=False) as counter, torch.autocast("cpu", torch.bfloat16):
        nn.functional.cross_entropy(model(images).float(), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def model_only_images_per_s(*, dtype: torch.dtype, channels_last: bool, batch: int, steps: int,
                            frozen_bn: bool = False, compile_model: bool = False) -> float:
    """Steps of the model alone on one batch already in memory: what the loader and engine cannot go above."""
    step = default_step(batch=batch, dtype=dtype, channels_last=channels_last, frozen_bn=frozen_bn,
                        compile_mode="default" if compile_model else None)
    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - started)


def profile_default_step(steps: int = 5) -> str:
    """Where the time of a bf16 channels_last step goes, grouped by operator (top 10 by self CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    step = default_step()
    step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    events = sorted(profiler.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in events)
    rows = [[event.key, f"{100 * event.self_cpu_time_total / total:.1f}%", event.count // steps]
            for event in events[:10]]
    return markdown_table(["operator (bf16, channels_last, batch 256)", "share of self CPU time", "calls/step"], rows)


class SlicedZeroPadShortcut(ZeroPadShortcut):
    """Option A as papernets computed it before 2026-12-02: a slice, whose backward is NCHW."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra_channels))


def with_nchw_gradient_layers(model: nn.Module) -> nn.Module:
    """ResNet's layers before 2026-12-02: the sliced shortcut and the AdaptiveAvgPool2d(1) head."""
    for block in model.modules():
        if isinstance(block, BasicBlock) and isinstance(block.shortcut, ZeroPadShortcut):
            block.shortcut = SlicedZeroPadShortcut(block.shortcut.extra_channels, block.shortcut.stride)
    model.head.pool = nn.AdaptiveAvgPool2d(1)
    return model


def compile_modules(model: nn.Module, kind: type[nn.Module]) -> nn.Module:
    """Regional compilation: inductor on every module of `kind`, the rest eager."""
    for module in model.modules():
        if isinstance(module, kind):
            module.compile()
    return model


LEVERS = {  # name: (how to change the default model, torch.compile mode of the whole model or None)
    "torch.compile, mode default": (None, "default"),
    "torch.compile, mode max-autotune": (None, "max-autotune"),
    "torch.compile, mode max-autotune-no-cudagraphs": (None, "max-autotune-no-cudagraphs"),
    "inductor on each BasicBlock (BN+ReLU, add+ReLU fused)": (lambda model: compile_modules(model, BasicBlock), None),
    "inductor on each BatchNorm2d": (lambda model: compile_modules(model, nn.BatchNorm2d), None),
    "NCHW-gradient layers (before 2026-12-02)": (with_nchw_gradient_layers, None),
}


def default_step(change=None, compile_mode: str | None = None, batch: int = BATCH, *,
                 dtype: torch.dtype = torch.bfloat16, channels_last: bool = True, frozen_bn: bool = False,
                 wrap=None):
    """One training step of ResNet-20 on a batch in memory (SGD, cross-entropy), by default bf16 autocast and
    channels_last as the engine trains; the model changed by `change`, BatchNorm frozen (eval mode) with
    `frozen_bn`, wrapped by `wrap` (DistributedDataParallel) and compiled in `compile_mode` when given."""
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, input_size=(1, 28, 28)).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = (change(model) if change else model).to(memory_format=memory_format)
    if frozen_bn:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
    forward = wrap(model) if wrap else model
    forward = torch.compile(forward, mode=compile_mode) if compile_mode else forward
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    images = torch.randn(batch, 1, 28, 28).contiguous(memory_format=memory_format)
    labels = torch.randint(0, 10, (batch,))

    def step():
        with torch.autocast("cpu", torch.bfloat16, enabled=dtype == torch.bfloat16):
            loss = nn.functional.cross_entropy(forward(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def side_by_side(step, baseline, *, steps: int, rounds: int = 4) -> tuple[float, float]:
    """Images/s of `step` and of `baseline`, timed in `rounds` alternating blocks of steps."""
    seconds = [0.0, 0.0]
    block = max(1, steps // rounds)
    for _ in range(rounds):
        for index, function in enumerate((step, baseline)):
            started = time.perf_counter()
            for _ in range(block):
                function()
            seconds[index] += time.perf_counter() - started
    images = rounds * block * BATCH
    return images / seconds[0], images / seconds[1]


def lever_rows(steps: int) -> list[list]:
    baseline = default_step()
    for _ in range(3):
        baseline()
    rows = []
    for name, (change, compile_mode) in LEVERS.items():
        step = default_step(change, compile_mode)
        started = time.perf_counter()
        for _ in range(3):  # compiling happens in the first steps (forward, then backward)
            step()
        warmup = time.perf_counter() - started
        speed, baseline_speed = side_by_side(step, baseline, steps=steps)
        ratio = speed / baseline_speed
        rows.append([name, f"{warmup:.1f}", f"{speed:,.0f}", f"{baseline_speed:,.0f}", f"{ratio:.2f}x"])
        print(f"lever {name}: {speed:,.0f} vs default {baseline_speed:,.0f} images/s "
              f"({ratio:.2f}x; first 3 steps {warmup:.1f} s)", flush=True)
    return rows


def memory_layout(tensor: torch.Tensor) -> str:
    if tensor.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    return "NCHW" if tensor.is_contiguous() else "strided"


class LayoutCheck(TorchDispatchMode):
    """Counts, over the operators it sees, dtype conversions of activations (4-d, batch-sized tensors) and
    operators whose 4-d tensor inputs and output are not all channels_last."""

    def __init__(self, batch: int):
        super().__init__()
        self.batch = batch
        self.conversions = collections.Counter()
        self.layouts = collections.Counter()

    def __torch_dispatch__(self, function, types, args=(), kwargs=None):
        output = function(*args, **(kwargs or {}))
        name = function.overloadpacket.__name__
        first = output[0] if isinstance(output, (tuple, list)) else output
        tensors = [value for value in (*args, first) if isinstance(value, torch.Tensor) and value.dim() == 4
                   and value.shape[0] == self.batch]
        if name == "_to_copy" and tensors:
            self.conversions[f"{args[0].dtype} -> {first.dtype}".replace("torch.", "")] += 1
        layouts = {memory_layout(tensor) for tensor in tensors}
        if layouts - {"channels_last"}:
            self.layouts[f"{name} ({', '.join(sorted(layouts))})"] += 1
        return output


LAYOUT_BATCH = 24  # no layer of ResNet-20 has 24 channels, so a 24xCxHxW tensor is an activation

ONEDNN_STEPS = """
import sys, torch
sys.path.insert(0, {benchmarks!r})
from train_throughput import LAYOUT_BATCH, default_step
step = default_step(batch=LAYOUT_BATCH)
step()
print("oneDNN: timed step", flush=True)
step()
"""


def onednn_reorders() -> collections.Counter:
    """oneDNN reorders in the second step of a subprocess under ONEDNN_VERBOSE=1, by tensor shape (reorders
    of 4-d tensors whose first dimension is the batch would be activations; the rest are weights)."""
    code = ONEDNN_STEPS.format(benchmarks=str(Path(__file__).resolve().parent))
    environment = {**os.environ, "ONEDNN_VERBOSE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            timeout=600, check=True)
    lines = result.stdout.split("oneDNN: timed step", 1)[1].splitlines()
    shapes = [line.rsplit(",", 2)[-2] for line in lines if ",exec," in line and ",reorder," in line]
    return collections.Counter("activation" if shape.startswith(f"{LAYOUT_BATCH}x") else "weight" for shape in shapes)


def layout_report() -> str:
    step = default_step(batch=LAYOUT_BATCH)
    step()
    check = LayoutCheck(batch=LAYOUT_BATCH)
    with check:
        step()
    reorders = onednn_reorders()
    conversions = ", ".join(f"{count} x {kind}" for kind, count in check.conversions.items()) or "none"
    mixed = ", ".join(f"{count} x {kind}" for kind, count in check.layouts.items()) or "none"
    return (f"Layout check of one default step (ResNet-20, bf16 autocast, channels_last, batch {LAYOUT_BATCH}): dtype "
            f"conversions of activations: {conversions}; operators on activations not all channels_last: {mixed}; "
            f"oneDNN reorders (ONEDNN_VERBOSE=1): {reorders['weight']} of weights, {reorders['activation']} of "
            f"activations.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per path (default 60)")
    parser.add_argument("--ablations", action="store_true", help="also vary one thing at a time, and profile")
    parser.add_argument("--compile", action="store_true", help="include torch.compile in the ablations (slow)")
    parser.add_argument("--levers", action="store_true",
                        help="also time each throughput lever side by side with the default step (slow: compiles)")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to docs/BENCHMARKS.md")
    args = parser.parse_args()
    print(hardware(), flush=True)

    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        ours, run_dir = papernets_images_per_s(args.steps, workdir)
        from papernets.runs.checkpoint import load_checkpoint
        normalization = load_checkpoint(run_dir / "checkpoints" / "last.pt")["normalization"]
        print(f"papernets (engine, bf16, channels_last): {ours:,.0f} images/s", flush=True)
        tutorial = tutorial_images_per_s(args.steps, torchvision_fashion_root(workdir),
                                         normalization["mean"][0], normalization["std"][0])
        print(f"tutorial loop (DataLoader x2 workers, fp32, NCHW): {tutorial:,.0f} images/s", flush=True)

    model = create_model("resnet20", num_classes=10, input_size=(1, 28, 28)).train()
    model = model.to(memory_format=torch.channels_last)
    images = torch.randn(BATCH, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    flops_per_image = training_step_flops(model, images, torch.randint(0, 10, (BATCH,))) / BATCH
    bf16_peak, fp32_peak = matmul_peak_flops(torch.bfloat16), matmul_peak_flops(torch.float32)
    achieved = flops_per_image * ours
    rows = [
        ["papernets (engine + BatchLoader, bf16, channels_last)", f"{ours:,.0f}", f"{ours / tutorial:.2f}x"],
        ["tutorial loop (torchvision + DataLoader, 2 workers, fp32, NCHW)", f"{tutorial:,.0f}", "1.00x"],
    ]
    table = markdown_table(["ResNet-20, Fashion-MNIST 28x28, batch 256", "images/s", "vs tutorial"], rows)
    utilisation = (f"Training FLOPs per image (forward + backward, FlopCounterMode): {flops_per_image / 1e6:.1f} M; "
                   f"achieved {achieved / 1e9:.0f} GFLOP/s = {100 * achieved / bf16_peak:.0f}% of the bf16 matmul peak "
                   f"({bf16_peak / 1e9:.0f} GFLOP/s) and {100 * achieved / fp32_peak:.0f}% of the fp32 peak "
                   f"({fp32_peak / 1e9:.0f} GFLOP/s), both measured in this run (2048^3 matmuls).")
    print(table)
    print(utilisation)
    body = f"{table}\n\n{utilisation} Speed-up over the tutorial loop: {ours / tutorial:.2f}x (target >= 3x)."

    if args.ablations:
        variants = [
            ("fp32, NCHW, batch 256", dict(dtype=torch.float32, channels_last=False, batch=BATCH)),
            ("bf16, NCHW, batch 256", dict(dtype=torch.bfloat16, channels_last=False, batch=BATCH)),
            ("bf16, channels_last, batch 256 (default)", dict(dtype=torch.bfloat16, channels_last=True, batch=BATCH)),
            ("bf16, channels_last, batch 256, BN frozen (eval)", dict(dtype=torch.bfloat16, channels_last=True,
                                                                      batch=BATCH, frozen_bn=True)),
            ("bf16, channels_last, batch 512", dict(dtype=torch.bfloat16, channels_last=True, batch=512)),
            ("bf16, channels_last, batch 1024", dict(dtype=torch.bfloat16, channels_last=True, batch=1024)),
        ]
        if args.compile:
            variants.append(("bf16, channels_last, batch 256, torch.compile",
                             dict(dtype=torch.bfloat16, channels_last=True, batch=BATCH, compile_model=True)))
        ablation_rows = []
        for name, options in variants:
            steps = max(5, args.steps * BATCH // options["batch"] // 2)
            speed = model_only_images_per_s(steps=steps, **options)
            ablation_rows.append([name, f"{speed:,.0f}", f"{100 * speed * flops_per_image / bf16_peak:.0f}%"])
            print(f"model only, {name}: {speed:,.0f} images/s", flush=True)
        ablations = markdown_table(["model alone, batch in memory", "images/s", "of bf16 peak"], ablation_rows)
        profile_table = profile_default_step()
        print(ablations)
        print(profile_table)
        body += f"\n\n{ablations}\n\n{profile_table}"
    if args.levers:
        levers = markdown_table(["lever (model alone, bf16, channels_last, batch 256)", "first 3 steps (s)",
                                 "images/s", "default, same rounds", "ratio"], lever_rows(args.steps))
        layouts = layout_report()
        print(levers)
        print(layouts)
        body += f"\n\n{levers}\n\n{layouts}"
    if not args.no_append:
        append_entry("Training throughput (benchmarks/train_throughput.py)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

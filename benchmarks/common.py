"""Shared by the benchmark scripts: the hardware line, timing, matmul peaks, and appending results to
docs/BENCHMARKS.md (each script owns one section; a run appends a dated entry under it, never rewrites).

Run the scripts from the repository root, e.g. `.venv/bin/python benchmarks/inference.py`.
"""

import datetime
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from papernets.hardware import bf16_supported, cpu_model

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "BENCHMARKS.md"


def hardware(device: str = "cpu") -> str:
    """One line: the CPU (or GPU), cores, threads torch uses, and the CPU's bf16 support."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}), host {cpu_model()}"
    bf16 = "native bf16" if bf16_supported("cpu") else "no native bf16"
    return (f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
            f"{torch.backends.cpu.get_cpu_capability()}, {bf16}")


def load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"
    except OSError:
        return "load average unknown"


def git_hash() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
        return result.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command_line() -> str:
    return shlex.join([Path(sys.executable).name, *sys.argv])


def time_calls(function, *, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of `function()`, `repeats` times after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def median(values: list[float]) -> float:
    return statistics.median(values)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def matmul_peak_flops(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` square matmuls of `size` (2 n^3 FLOPs each): the roofline to compare with."""
    left = torch.randn(size, size).to(dtype)
    right = torch.randn(size, size).to(dtype)
    best = min(time_calls(lambda: torch.mm(left, right), repeats=repeats, warmup=2))
    return 2 * size ** 3 / best


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def append_entry(section: str, body: str) -> None:
    """Append a dated entry (hardware, torch, git hash, command, then `body`) under `## section` in BENCHMARKS.md.

    The section is created at the end of the file when missing; other sections are left as they are.
    """
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    entry = (f"### {stamp}\n"
             f"- hardware: {hardware()}; {load_average()} at the end of the run\n"
             f"- torch {torch.__version__}, code {git_hash()}\n"
             f"- command: `{command_line()}`\n\n{body.rstrip()}\n")
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    heading = f"## {section}\n"
    if heading not in text:
        text = text.rstrip("\n") + f"\n\n{heading}\n{entry}"
    else:
        start = text.index(heading) + len(heading)
        next_section = text.find("\n## ", start)
        end = len(text) if next_section == -1 else next_section + 1
        text = text[:end].rstrip("\n") + f"\n\n{entry}" + ("\n" + text[end:] if next_section != -1 else "")
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS_MD.write_text(text)
    print(f"appended to {BENCHMARKS_MD.relative_to(ROOT)} under '## {section}'")

"""What the machine can do, asked in one place by the engine, export and the benchmarks: the CPU's name and
whether a device has native bf16 arithmetic."""

import platform
from pathlib import Path

import torch

NATIVE_BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}  # AVX512-BF16 and AMX-BF16 instructions (/proc/cpuinfo names)


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_model() -> str:
    """The CPU's marketing name (e.g. "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz")."""
    for line in _cpuinfo_lines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    return {flag for line in _cpuinfo_lines() if line.startswith("flags") for flag in line.partition(":")[2].split()}


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Native bf16 arithmetic: AVX512-BF16 or AMX on the CPU (through oneDNN), or a GPU that has it. Without it,
    bf16 autocast still runs, emulated and slower than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return (device.type == "cpu" and torch.backends.mkldnn.is_available()
            and bool(cpu_flags() & NATIVE_BF16_CPU_FLAGS))

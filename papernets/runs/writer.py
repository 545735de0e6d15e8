"""Writing the run folder (docs/ARCHITECTURE.md, "Training"): config.json, env.json, metrics.csv, summary.json.

Each file is written whole to a temporary name and renamed into place, so a reader never sees half a file.
`papernets.runs.reader` reads what this module writes; the names of the files are in `papernets.runs.names`.
"""

import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from papernets.errors import TrainingError
from papernets.hardware import cpu_model
from papernets.runs.names import CHECKPOINTS, METRICS_COLUMNS

MINIMUM_FREE_BYTES = 100 * 1024 * 1024


def write_text_atomically(path: Path, text: str):
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_json(path: Path, content: dict):
    write_text_atomically(path, json.dumps(content, indent=2, sort_keys=False) + "\n")


def default_run_name(model: str, dataset: str) -> str:
    return f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_folder(output_root: str | Path, run_name: str) -> Path:
    """Create `output_root/run_name/checkpoints`, refusing an unwritable folder or a nearly full disk."""
    run_dir = Path(output_root) / run_name
    try:
        (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"papernets")
        probe.unlink()
    except OSError as error:
        raise TrainingError(f"Cannot write to the output folder {run_dir} ({error.strerror or error}); "
                            "pass a writable folder with --output.") from None
    check_free_space(run_dir)
    return run_dir


def check_free_space(folder: Path):
    free = shutil.disk_usage(folder).free
    if free < MINIMUM_FREE_BYTES:
        raise TrainingError(f"Only {free / 2**20:.0f} MB free on the disk of {folder}; papernets needs at least "
                            f"{MINIMUM_FREE_BYTES // 2**20} MB for checkpoints, so free some space or pass "
                            "another --output.")


def newest_run(output_root: str | Path) -> Path:
    """The most recently modified run folder under `output_root` that holds a checkpoint."""
    root = Path(output_root)
    runs = [path.parent.parent for path in root.glob(f"*/{CHECKPOINTS}/last*.pt")]
    if not runs:
        raise TrainingError(f"No run with a checkpoint under {root} to resume; pass --resume RUN_DIR or the "
                            "--output folder the run was written to.")
    return max(runs, key=lambda run: max(path.stat().st_mtime for path in (run / CHECKPOINTS).glob("last*.pt")))


def format_metric(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_metrics(path: Path, rows: list[dict]):
    """All rows so far, rewritten whole: after a resume the file holds exactly the checkpoint's rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRICS_COLUMNS)
    for row in rows:
        writer.writerow([format_metric(row.get(column)) for column in METRICS_COLUMNS])
    write_text_atomically(path, buffer.getvalue())


def code_version() -> dict:
    """The git commit of the papernets checkout (and whether it had local changes), else the package version."""
    from importlib.metadata import PackageNotFoundError, version

    package_dir = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package_dir, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=package_dir,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return {"git_commit": commit, "git_dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        try:
            return {"package_version": version("papernets")}
        except PackageNotFoundError:
            return {"package_version": "unknown"}


def environment(device: torch.device, amp_dtype: torch.dtype | None, threads: int, world_size: int) -> dict:
    import torchvision

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "amp": str(amp_dtype).removeprefix("torch.") if amp_dtype else "off",
        "world_size": world_size,
        "command": sys.argv,
        **code_version(),
    }

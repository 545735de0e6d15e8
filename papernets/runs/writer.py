"""Writing the run folder (docs/ARCHITECTURE.md, "Training"): config.json, env.json, metrics.csv, summary.json.

Each file goes through `papernets.files.atomic_write`, so a reader never sees half a file and a link planted in
the folder is replaced, never written through. A new run claims a folder of its own with `mkdir` (atomic: two
runs started in the same second get different folders); only `--resume` reopens an existing one.
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
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from papernets.errors import CheckpointError, TrainingError
from papernets.files import write_text
from papernets.hardware import cpu_model
from papernets.runs.names import CHECKPOINTS, CONFIG_FILE, METRICS_COLUMNS, STEP_COLUMNS

MINIMUM_FREE_BYTES = 100 * 1024 * 1024


RUN_FOLDER_ADVICE = "free disk space or pass a writable folder with --output"
MAX_NAME_SUFFIX = 1000  # default names differ by time and seed; a thousand collisions means something is wrong


def write_json(path: Path, content: dict):
    write_text(path, json.dumps(content, indent=2, sort_keys=False) + "\n", RUN_FOLDER_ADVICE)


def default_run_name(model: str, dataset: str, seed: int) -> str:
    return f"{model}-{dataset}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def create_run_folder(output_root: str | Path, run_name: str, explicit: bool) -> Path:
    """Claim a new folder `output_root/run_name` with an atomic mkdir: an existing folder is never reused (an
    explicit `run_name` that exists is refused; a default name that exists gets the suffix -2, -3, ...)."""
    root = Path(output_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for suffix in range(1, MAX_NAME_SUFFIX + 1):
            run_dir = root / (run_name if suffix == 1 else f"{run_name}-{suffix}")
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                if explicit:
                    raise TrainingError(f"The run folder {run_dir} already exists; pass another --set run_name, or "
                                        f"--resume {run_dir} to continue that run.") from None
    except OSError as error:
        raise TrainingError(f"Cannot write to the output folder {root} ({error.strerror or error}); "
                            "pass a writable folder with --output.") from None
    raise TrainingError(f"{MAX_NAME_SUFFIX} run folders named {run_name} exist under {root}; pass another --output.")


def prepare_run_folder(run_dir: Path) -> Path:
    """An existing run folder made ready: its checkpoints folder, a write test, enough free disk."""
    try:
        (run_dir / CHECKPOINTS).mkdir(exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):  # a nameless file: nothing planted in the folder is opened
            pass
    except OSError as error:
        raise TrainingError(f"Cannot write to the output folder {run_dir} ({error.strerror or error}); "
                            "pass a writable folder with --output.") from None
    check_free_space(run_dir)
    return run_dir


def check_same_run(run_dir: Path, checkpoint: dict) -> None:
    """The run folder's config.json and the checkpoint to resume from describe the same run."""
    try:
        saved = json.loads((run_dir / CONFIG_FILE).read_text())
    except FileNotFoundError:
        return  # killed before config.json was written: the checkpoint alone describes the run
    except (OSError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{run_dir / CONFIG_FILE} cannot be read ({error}); the run folder is damaged, so "
                              "start a new run.") from None
    if not isinstance(saved, dict) or (saved.get("model"), saved.get("dataset")) != (checkpoint["model"],
                                                                                      checkpoint["dataset"]):
        found = (saved.get("model"), saved.get("dataset")) if isinstance(saved, dict) else "no config"
        raise CheckpointError(f"{run_dir} is a run of {found}, but its checkpoint trains {checkpoint['model']} on "
                              f"{checkpoint['dataset']}; the checkpoint does not belong to this run folder, so "
                              "resume the folder it came from or start a new run.")


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


def csv_text(columns: tuple[str, ...], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_metric(row.get(column)) for column in columns])
    return buffer.getvalue()


def write_metrics(path: Path, rows: list[dict]):
    """All rows so far, rewritten whole: after a resume the file holds exactly the checkpoint's rows."""
    write_text(path, csv_text(METRICS_COLUMNS, rows), RUN_FOLDER_ADVICE)


class StepLog:
    """steps.csv: one row every `log_every_steps` steps, appended as training goes. A resumed run first drops
    the rows after its checkpoint's step (and a row cut short by a kill), so no step appears twice."""

    def __init__(self, path: Path, through_step: int):
        self.path = path
        kept = []
        if path.is_file():
            with path.open(newline="") as file:
                kept = [row for row in csv.DictReader(file)
                        if None not in row.values() and row["step"].isdigit() and int(row["step"]) <= through_step]
        write_text(path, csv_text(STEP_COLUMNS, kept), RUN_FOLDER_ADVICE)

    def write(self, row: dict):
        with self.path.open("a", newline="") as file:
            csv.writer(file, lineterminator="\n").writerow([format_metric(row[column]) for column in STEP_COLUMNS])


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

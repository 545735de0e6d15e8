"""Reading a run folder as training wrote it (docs/ARCHITECTURE.md, "Training"): the files that reports,
`predict` and `compare` read, each checked once here so that a wrong folder gives one clear sentence."""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from papernets.errors import PapernetsError
from papernets.runs.names import (BEST_CHECKPOINT, CONFIG_FILE, ENVIRONMENT_FILE, LAST_CHECKPOINT, METRICS_COLUMNS,
                                  METRICS_FILE, SUMMARY_FILE)


class RunFolderError(PapernetsError):
    """A run folder that is missing, incomplete or holds a file that cannot be read."""


@dataclass
class Run:
    path: Path
    summary: dict
    config: dict
    environment: dict
    metrics: list[dict[str, float]]  # one row per epoch, columns as metrics.csv names them

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def best_checkpoint(self) -> Path:
        """The best-validation checkpoint, or the last one for a run that never improved on validation."""
        best = self.path / BEST_CHECKPOINT
        if best.is_file():
            return best
        last = self.path / LAST_CHECKPOINT
        if last.is_file():
            return last
        raise RunFolderError(
            f"{self.path} has neither {BEST_CHECKPOINT} nor {LAST_CHECKPOINT}; "
            "train the run to the end (or resume it) so that a checkpoint is saved.")

    def metric_column(self, column: str) -> list[float]:
        return [row[column] for row in self.metrics if column in row]


def _require_run_folder(path: Path) -> Path:
    if not path.is_dir():
        raise RunFolderError(f"Run folder {path} does not exist; pass the folder that `papernets train` wrote.")
    if not (path / SUMMARY_FILE).is_file():
        raise RunFolderError(
            f"{path} is not a finished run folder (no {SUMMARY_FILE}); "
            "pass the folder that `papernets train` wrote, after training finished.")
    return path


def _is_number(value) -> bool:
    return type(value) in (int, float)


def _is_fraction(value) -> bool:
    return _is_number(value) and 0 <= value <= 1


def _is_whole(value) -> bool:
    return type(value) is int


# What reports and `compare` read from summary.json and config.json: (required, test of the value). An optional
# field may be absent or null; any other key is shown as it is.
SUMMARY_FIELDS = {
    "model": (True, lambda value: isinstance(value, str)), "dataset": (True, lambda value: isinstance(value, str)),
    "test_accuracy": (True, _is_fraction), "wall_seconds": (True, lambda value: _is_number(value) and value >= 0),
    "recipe": (False, lambda value: isinstance(value, str)), "seed": (False, _is_whole),
    "epochs": (False, _is_whole), "iterations": (False, _is_whole), "best_val_accuracy": (False, _is_fraction),
    "best_epoch": (False, _is_whole), "final_val_accuracy": (False, _is_fraction), "test_loss": (False, _is_number),
    "test_top5_accuracy": (False, _is_fraction), "test_images": (False, _is_whole), "params": (False, _is_number),
    "macs": (False, _is_number), "images_per_s": (False, _is_number),
    "device": (False, lambda value: isinstance(value, str)),
    "precision": (False, lambda value: isinstance(value, str)), "world_size": (False, _is_whole),
}
CONFIG_FIELDS = {
    "dataset": (False, lambda value: isinstance(value, str)), "recipe": (False, lambda value: isinstance(value, str)),
    "seed": (False, _is_whole), "data_dir": (False, lambda value: isinstance(value, str)),
    "test_size": (False, lambda value: _is_whole(value) and value >= 0),
}


def _read_json(path: Path, fields: dict | None = None) -> dict:
    """A JSON object, with the `fields` reports read present (if required) and of the right type."""
    if not path.is_file():
        raise RunFolderError(f"{path} is missing; the run folder is incomplete, so train the run again.")
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{path} cannot be read as JSON ({error}); train the run again.") from None
    except RecursionError:
        raise RunFolderError(f"{path} nests JSON too deeply to read; papernets never writes that, so train the "
                             "run again.") from None
    if not isinstance(content, dict):
        raise RunFolderError(f"{path} does not hold a JSON object; train the run again.")
    for name, (required, is_valid) in (fields or {}).items():
        if content.get(name) is None and required:
            raise RunFolderError(f"{path} has no {name!r}; it is not what `papernets train` writes, so train the "
                                 "run again.")
        if content.get(name) is not None and not is_valid(content[name]):
            raise RunFolderError(f"{path} holds {str(content[name])[:40]!r} as {name!r}, which `papernets train` "
                                 "never writes; train the run again.")
    return content


def _number(value: str, column: str, path: Path) -> float:
    try:
        return float(value)
    except ValueError:
        raise RunFolderError(f"{path} holds {value[:40]!r} in column {column!r}, where `papernets train` writes "
                             "numbers; train the run again.") from None


def _read_metrics(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        raise RunFolderError(f"{path} is missing; the run folder is incomplete, so train the run again.")
    try:
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RunFolderError(f"{path} cannot be read as CSV ({error}); train the run again.") from None
    if any(None in row or column not in METRICS_COLUMNS for row in rows for column in row if column is not None):
        raise RunFolderError(f"{path} holds columns other than {', '.join(METRICS_COLUMNS)}; it is not what "
                             "`papernets train` writes, so train the run again.")
    return [{column: _number(value, column, path) for column, value in row.items() if value not in (None, "")}
            for row in rows]


def read_summary(run_dir: str | Path) -> dict:
    """Only summary.json: all that `compare` needs."""
    path = _require_run_folder(Path(run_dir))
    return _read_json(path / SUMMARY_FILE, SUMMARY_FIELDS)


def read_unfinished(run_dir: str | Path) -> tuple[dict, int] | None:
    """(config.json, epochs done) of a run that has started but not finished (no summary.json yet: training, or
    interrupted), or None when the folder is anything else."""
    path = Path(run_dir)
    if (path / SUMMARY_FILE).is_file() or not (path / CONFIG_FILE).is_file():
        return None
    epochs_done = len(_read_metrics(path / METRICS_FILE)) if (path / METRICS_FILE).is_file() else 0
    return _read_json(path / CONFIG_FILE), epochs_done


def read_run(run_dir: str | Path) -> Run:
    """Every file a report needs: summary.json, config.json, env.json and metrics.csv."""
    path = _require_run_folder(Path(run_dir))
    return Run(
        path=path,
        summary=_read_json(path / SUMMARY_FILE, SUMMARY_FIELDS),
        config=_read_json(path / CONFIG_FILE, CONFIG_FIELDS),
        environment=_read_json(path / ENVIRONMENT_FILE),
        metrics=_read_metrics(path / METRICS_FILE),
    )

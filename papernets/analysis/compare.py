"""`papernets compare`: one row per run folder (from its summary.json), sortable by any column, and the grouping
of runs that differ only in their seed (for accuracy as mean ± std over n runs)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from papernets.config import FieldKind, fields_of_kind
from papernets.runs.reader import read_summary, read_unfinished
from papernets.errors import ConfigError

# Config fields that do not change what is trained, and the seed: runs that differ only in these are repeats of
# one config. How long a run trained counts through its summary (`epochs`, `iterations`).
NOT_PART_OF_THE_EXPERIMENT = fields_of_kind(FieldKind.EXECUTION, FieldKind.RESUMABLE) | {"seed"}


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def _count(value: float | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def _millions(value: float | None) -> str:
    return "—" if value is None else f"{value / 1e6:,.2f} M"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} s"


def _text(value) -> str:
    return "—" if value is None else str(value)


@dataclass(frozen=True)
class Column:
    header: str
    summary_key: str | None         # None: the run folder's name
    format: Callable[[object], str]
    best_first_descending: bool      # the default order puts the best run first


COLUMNS = {
    "run": Column("run", None, _text, False),
    "model": Column("model", "model", _text, False),
    "dataset": Column("dataset", "dataset", _text, False),
    "recipe": Column("recipe", "recipe", _text, False),
    "seed": Column("seed", "seed", _text, False),
    "params": Column("params", "params", _count, False),
    "macs": Column("MACs", "macs", _millions, False),
    "best_val": Column("best val", "best_val_accuracy", _percent, True),
    "test": Column("test", "test_accuracy", _percent, True),
    "top5": Column("top-5", "test_top5_accuracy", _percent, True),
    "time": Column("time", "wall_seconds", _seconds, False),
    "images_per_s": Column("images/s", "images_per_s", lambda value: "—" if value is None else f"{value:,.0f}",
                           True),
}
COLUMN_ALIASES = {"best_val_accuracy": "best_val", "val": "best_val", "test_accuracy": "test",
                  "test_top5_accuracy": "top5", "top_5": "top5",
                  "wall_seconds": "time", "seconds": "time", "images/s": "images_per_s", "throughput": "images_per_s"}


def column_name(requested: str) -> str:
    """The column a user named (any case, `-` or `_`, header or summary.json key)."""
    name = requested.strip().lower().replace("-", "_").replace(" ", "_")
    name = COLUMN_ALIASES.get(name, name)
    if name not in COLUMNS:
        raise ConfigError(f"Unknown column {requested!r} for --sort; choose one of {', '.join(COLUMNS)}.")
    return name


@dataclass
class RunRow:
    path: Path
    summary: dict
    unfinished: str = ""  # "epoch 3 of 10" for a run without summary.json yet

    def value(self, column: str):
        key = COLUMNS[column].summary_key
        if key is None:
            return f"{self.path.name} (unfinished: {self.unfinished})" if self.unfinished else self.path.name
        return self.summary.get(key)


def read_rows(run_dirs: list[str | Path]) -> list[RunRow]:
    """One row per run folder; a run still training or interrupted (config.json, no summary.json) gets a row of
    what its config says, marked unfinished, instead of failing the whole table."""
    rows = []
    for run_dir in map(Path, run_dirs):
        unfinished = read_unfinished(run_dir)
        if unfinished is None:
            rows.append(RunRow(run_dir, read_summary(run_dir)))
            continue
        config, epochs_done = unfinished
        length = (f"epoch {epochs_done} of {config.get('epochs')}" if config.get("epochs")
                  else f"{epochs_done} epochs of {config.get('iterations')} iterations")
        summary = {key: config.get(key) for key in ("model", "dataset", "recipe", "seed")}
        rows.append(RunRow(run_dir, summary, unfinished=length))
    return rows


def sort_rows(rows: list[RunRow], column: str, reverse: bool = False) -> list[RunRow]:
    """Rows by one column: accuracies and images/s highest first, everything else lowest (or A) first; `reverse`
    flips that. Runs without the value go last either way."""
    name = column_name(column)
    descending = COLUMNS[name].best_first_descending != reverse
    present = [row for row in rows if row.value(name) is not None]
    missing = [row for row in rows if row.value(name) is None]
    numeric = all(isinstance(row.value(name), (int, float)) for row in present)
    ordered = sorted(present, key=lambda row: row.value(name) if numeric else str(row.value(name)).lower(),
                     reverse=descending)
    return ordered + missing


def table(rows: list[RunRow]) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the comparison table."""
    headers = [column.header for column in COLUMNS.values()]
    cells = [[column.format(row.value(name)) for name, column in COLUMNS.items()] for row in rows]
    names = [row.path.name for row in rows]
    for row, row_cells in zip(rows, cells):
        if names.count(row.path.name) > 1:  # runs of the same name under different output folders
            row_cells[0] = f"{row.path.resolve().parent.name}/{row.path.name}"
    return headers, cells


def format_text_table(headers: list[str], cells: list[list[str]]) -> str:
    """An aligned plain-text table: text left, numbers right."""
    widths = [max(len(text) for text in column) for column in zip(headers, *cells)]

    def is_number(text: str) -> bool:
        return text[:1].isdigit() or text == "—"

    def line(row: list[str]) -> str:
        return "  ".join(text.rjust(width) if is_number(text) else text.ljust(width)
                         for text, width in zip(row, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *map(line, cells)])


def experiment_key(summary: dict, config: dict) -> str:
    """What identifies a config up to its seed: model, dataset, recipe and every config value that matters."""
    settings = {key: value for key, value in config.items() if key not in NOT_PART_OF_THE_EXPERIMENT}
    identity = {"model": summary.get("model"), "dataset": summary.get("dataset"), "recipe": summary.get("recipe"),
                "epochs": summary.get("epochs"), "iterations": summary.get("iterations"), "config": settings}
    return json.dumps(identity, sort_keys=True, default=str)


def distinguishing_settings(configs: list[dict]) -> list[str]:
    """For configs of different groups, the settings in which each differs from the others ("lr=0.05")."""
    settings = [{key: value for key, value in config.items() if key not in NOT_PART_OF_THE_EXPERIMENT}
                for config in configs]
    keys = sorted({key for setting in settings for key in setting})
    differing = [key for key in keys if len({json.dumps(setting.get(key), sort_keys=True, default=str)
                                              for setting in settings}) > 1]
    return [", ".join(f"{key}={json.dumps(setting.get(key), default=str)}" for key in differing)
            for setting in settings]

"""`papernets compare`: one row per run folder, sorted by a column; unknown columns and folders are one-line
errors."""

import json

import pytest

from papernets.analysis import compare
from papernets.cli import main
from papernets.errors import ConfigError

RUNS = {
    # name: (model, params, MACs, best val, test, test top-5, wall seconds, images/s)
    "small": ("lenet5_modern", 61706, 416520, 0.90, 0.89, 0.995, 30.0, 9000.0),
    "medium": ("resnet20", 269722, 40_550_000, 0.93, 0.92, 0.998, 300.0, 1800.0),
    "large": ("resnet56", 853018, 125_490_000, 0.94, 0.935, 0.9975, 900.0, 650.0),
}


@pytest.fixture
def run_dirs(tmp_path):
    folders = []
    for name, (model, params, macs, best_val, test, top5, seconds, images_per_s) in RUNS.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "summary.json").write_text(json.dumps({
            "model": model, "dataset": "fashion-mnist", "recipe": "fast-fashion-mnist", "seed": 0, "epochs": 5,
            "best_val_accuracy": best_val, "test_accuracy": test, "test_top5_accuracy": top5,
            "wall_seconds": seconds, "params": params,
            "macs": macs, "images_per_s": images_per_s}))
        folders.append(folder)
    return folders


def names_in_order(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines()[2:]]


@pytest.mark.parametrize("column, expected", [
    ("test", ["large", "medium", "small"]),           # accuracy: best first
    ("best-val", ["large", "medium", "small"]),
    ("top-5", ["medium", "large", "small"]),
    ("params", ["small", "medium", "large"]),         # size: smallest first
    ("MACs", ["small", "medium", "large"]),
    ("time", ["small", "medium", "large"]),
    ("images/s", ["small", "medium", "large"]),       # throughput: fastest first
    ("model", ["small", "medium", "large"]),          # text: alphabetical (lenet5_modern, resnet20, resnet56)
    ("run", ["large", "medium", "small"]),
])
def test_compare_sorts_by_the_column(run_dirs, capsys, column, expected):
    assert main(["compare", *map(str, run_dirs), "--sort", column]) == 0
    assert names_in_order(capsys.readouterr().out) == expected


def test_reverse_flips_the_order(run_dirs, capsys):
    assert main(["compare", *map(str, run_dirs), "--sort", "test", "--reverse"]) == 0
    assert names_in_order(capsys.readouterr().out) == ["small", "medium", "large"]


def test_the_table_shows_every_column_formatted(run_dirs, capsys):
    assert main(["compare", str(run_dirs[1])]) == 0
    header, rule, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["run", "model", "dataset", "recipe", "seed", "params", "MACs", "best", "val", "test",
                              "top-5", "time", "images/s"]
    assert row.split() == ["medium", "resnet20", "fashion-mnist", "fast-fashion-mnist", "0", "269,722", "40.55",
                           "M", "93.00%", "92.00%", "99.80%", "300.0", "s", "1,800"]


def test_a_run_without_the_value_sorts_last(run_dirs):
    summary_path = run_dirs[0] / "summary.json"
    summary = json.loads(summary_path.read_text())
    del summary["images_per_s"]
    summary_path.write_text(json.dumps(summary))
    rows = compare.sort_rows(compare.read_rows(run_dirs), "images_per_s")
    assert [row.path.name for row in rows] == ["medium", "large", "small"]
    assert compare.table(rows)[1][-1][-1] == "—"


def test_unknown_column_is_one_line_and_exit_2(run_dirs, capsys):
    assert main(["compare", *map(str, run_dirs), "--sort", "accuracy"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "Unknown column 'accuracy'" in error and "best_val" in error
    with pytest.raises(ConfigError):
        compare.column_name("flops")


def test_a_folder_without_summary_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no summary.json" in error


def test_a_corrupt_summary_is_one_line_and_exit_2(run_dirs, capsys):
    (run_dirs[0] / "summary.json").write_text("{ not json")
    assert main(["compare", *map(str, run_dirs)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot be read as JSON" in error


def test_an_unfinished_run_gets_a_marked_row_instead_of_failing_the_table(run_dirs, tmp_path, capsys):
    training = tmp_path / "training"
    training.mkdir()
    (training / "config.json").write_text(json.dumps({"model": "resnet20", "dataset": "cifar10", "recipe": "",
                                                      "seed": 3, "epochs": 10, "iterations": 0}))
    (training / "metrics.csv").write_text("epoch,step,train_loss\n1,10,2.0\n2,20,1.5\n")
    assert main(["compare", *map(str, run_dirs), str(training)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]  # no test accuracy: sorted last
    assert last.startswith("training (unfinished: epoch 2 of 10)") and "resnet20" in last and "cifar10" in last

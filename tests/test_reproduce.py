"""`papernets reproduce`: the three experiments run end to end in their --quick form on generated files in the
real formats (MNIST and Fashion-MNIST IDX, CIFAR-10 pickles), keep finished runs, resume an interrupted one
exactly, refuse a folder of another configuration, and report paper vs ours with the evidence."""

import dataclasses
import json

import pytest

from papernets.analysis.reproduction_report import write_reproduction_report
from papernets.cli import main
from papernets.data import DATASETS
from papernets.errors import ConfigError
from papernets.training.engine import TrainingInterrupted, train
from papernets.training.reproduce import EXPERIMENTS, experiment_config, get_experiment, reproduce
from test_data_readers import write_cifar_python_folder, write_mnist_folder
from training_seams import sigterm_during_step
from test_training_engine import read_metrics


@pytest.fixture(autouse=True)
def private_places(tmp_path, monkeypatch):
    monkeypatch.delenv("PAPERNETS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def small(monkeypatch, name: str, train: int, test: int):
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], train_size=train, test_size=test))


@pytest.fixture
def mnist_files(tmp_path, monkeypatch):
    small(monkeypatch, "mnist", 600, 300)
    write_mnist_folder(tmp_path / "mnist", 600, 300)
    return tmp_path / "mnist"


def test_lenet5_mnist_quick_runs_end_to_end_through_the_command_line(tmp_path, mnist_files, capsys):
    output = tmp_path / "lenet"
    status = main(["reproduce", "lenet5-mnist", "--quick", "--seeds", "2", "--data-dir", str(mnist_files),
                   "--output", str(output)])
    out = capsys.readouterr().out
    assert status == 0 and "| lenet5 | 0.95% error | LeCun et al. 1998" in out and "(n=2) error" in out
    results = json.loads((output / "reproduction.json").read_text())
    (row,) = results["rows"]
    assert row["paper"] == 0.95 and row["seeds"] == [0, 1] and len(row["values"]) == 2
    assert row["difference"] == pytest.approx(row["mean"] - 0.95)
    assert results["config"]["optimizer"] == "sdlm" and results["config"]["loss"] == "map"
    assert results["config"]["batch_size"] == 16 and results["evidence"]["cpu_model"]
    assert results["command"][:4] == ["papernets", "reproduce", "lenet5-mnist", "--seeds"]
    report = (output / "report.md").read_text()
    assert "## Departures from the paper" in report and "Mini-batches of 16" in report and "git_commit" in report


def test_a_half_finished_reproduction_keeps_finished_runs_and_resumes_the_interrupted_one(tmp_path, mnist_files):
    experiment = get_experiment("lenet5-mnist")
    whole = tmp_path / "whole"
    write_reproduction_report(reproduce(experiment, whole, seeds=2, quick=True, data_dir=str(mnist_files),
                                        log=lambda line: None))

    parts = tmp_path / "parts"
    reproduce(experiment, parts, seeds=1, quick=True, data_dir=str(mnist_files), log=lambda line: None)
    interrupted = dataclasses.replace(experiment_config(experiment, "lenet5", 1, quick=True, data_dir=str(mnist_files)),
                                      output=str(parts), run_name="lenet5-seed1", report=False)
    with sigterm_during_step(10), pytest.raises(TrainingInterrupted):
        train(interrupted)
    kept = (parts / "lenet5-seed0" / "summary.json").stat().st_mtime_ns
    lines = []
    write_reproduction_report(reproduce(experiment, parts, seeds=2, quick=True, data_dir=str(mnist_files),
                                        log=lines.append))
    assert lines == ["[1/2] lenet5-seed0: done before, kept.", "[2/2] lenet5-seed1: resuming at epoch 1."]
    assert (parts / "lenet5-seed0" / "summary.json").stat().st_mtime_ns == kept
    assert read_metrics(parts / "lenet5-seed1") == read_metrics(whole / "lenet5-seed1")
    rows = [[{key: value for key, value in row.items() if key != "wall_seconds"}
             for row in json.loads((folder / "reproduction.json").read_text())["rows"]] for folder in (parts, whole)]
    assert rows[0] == rows[1]


def test_a_folder_of_another_configuration_is_refused(tmp_path, mnist_files):
    experiment = get_experiment("lenet5-mnist")
    reproduce(experiment, tmp_path / "out", quick=True, data_dir=str(mnist_files), log=lambda line: None)
    with pytest.raises(ConfigError, match="another configuration.*--output"):
        reproduce(experiment, tmp_path / "out", quick=False, data_dir=str(mnist_files), log=lambda line: None)


@pytest.mark.slow  # five ResNet depths trained: half a minute
def test_resnet_cifar10_table6_quick_on_generated_cifar_files(tmp_path, monkeypatch):
    small(monkeypatch, "cifar10", 5 * 40, 40)
    write_cifar_python_folder(tmp_path / "data" / "cifar-10-batches-py", 10, per_file=40)
    report = write_reproduction_report(reproduce(EXPERIMENTS["resnet-cifar10-table6"], tmp_path / "resnet",
                                                 quick=True, data_dir=str(tmp_path / "data"), log=lambda line: None))
    rows = json.loads((tmp_path / "resnet" / "reproduction.json").read_text())["rows"]
    assert [(row["model"], row["paper"]) for row in rows] == [
        ("resnet20", 8.75), ("resnet32", 7.51), ("resnet44", 7.17), ("resnet56", 6.97), ("resnet110", 6.61)]
    assert all(row["paper_source"].startswith("He et al. 2015, arXiv:1512.03385, Table 6") for row in rows)
    text = report.read_text()
    assert "No figure from this experiment is claimed" in text and "--seeds 5" in text
    resnet110 = json.loads((tmp_path / "resnet" / "resnet110-seed0" / "config.json").read_text())
    assert (resnet110["warmup_lr"], resnet110["momentum"], resnet110["weight_decay"]) == (0.01, 0.9, 1e-4)
    full = experiment_config(EXPERIMENTS["resnet-cifar10-table6"], "resnet110", 0, quick=False, data_dir=None)
    assert (full.warmup_steps, full.warmup_lr, full.epochs, full.batch_size) == (400, 0.01, 182, 128)


@pytest.mark.slow  # one run per model family: twenty seconds
def test_fashion_mnist_zoo_quick_has_one_row_per_family(tmp_path, monkeypatch):
    small(monkeypatch, "fashion-mnist", 200, 100)
    write_mnist_folder(tmp_path / "fashion", 200, 100)
    write_reproduction_report(reproduce(EXPERIMENTS["fashion-mnist-zoo"], tmp_path / "zoo", quick=True,
                                        data_dir=str(tmp_path / "fashion"), log=lambda line: None))
    rows = {row["model"]: row for row in json.loads((tmp_path / "zoo" / "reproduction.json").read_text())["rows"]}
    assert list(rows) == ["lenet5", "vgg16_bn", "googlenet", "resnet18", "mobilenet_v1", "mobilenet_v2",
                          "mobilenet_v3_small"]
    assert rows["resnet18"]["paper"] == 94.9 and rows["resnet18"]["metric"] == "test_accuracy"
    assert "zalandoresearch/fashion-mnist" in rows["googlenet"]["paper_source"]
    assert rows["vgg16_bn"]["paper"] == 93.5
    assert rows["mobilenet_v3_small"]["paper"] is None  # the benchmark lists no MobileNet v3, only baselines


def test_unknown_experiment_and_bad_seeds_are_one_clear_error(capsys, tmp_path):
    assert main(["reproduce", "lenet5-cifar"]) == 2
    assert "lenet5-mnist, resnet-cifar10-table6, fashion-mnist-zoo" in capsys.readouterr().err
    assert main(["reproduce", "lenet5-mnist", "--seeds", "0", "--output", str(tmp_path)]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err

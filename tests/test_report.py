"""Reports (`papernets report`, `write_report`, `write_comparison_report`).

A real short training run (LeNet-5 modern on a slice of Fashion-MNIST) is reported on and checked against its
own summary.json and metrics.csv; hand-built run folders check the arithmetic with figures worked out by hand.
"""

import base64
import csv
import json
import math
import re
import zipfile
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from papernets.analysis.report import write_comparison_report, write_report
from papernets.cli import main
from papernets.runs.names import PREDICTIONS_FILE
from papernets.runs.predictions import (LARGEST_INFLATED_BYTES, MOST_CONFIDENT_MISTAKES, Predictions,
                                        most_confident_mistakes)
from papernets.runs.reader import RunFolderError
from papernets.training.engine import evaluate_checkpoint
from conftest import dataset_flags

pytestmark = pytest.mark.real_data("fashion-mnist")
CLASS_NAMES = ["cat", "dog", "bird"]
TRAIN_SIZE, VAL_SIZE, TEST_SIZE = 1500, 500, 600
_trained_runs: dict[str, Path] = {}


def short_training_run(tmp_path_factory) -> Path:
    """A real `papernets train` run (LeNet-5 modern, one epoch on 1,500 Fashion-MNIST images) with its report;
    trained once per test session and shared with test_predict.py."""
    if "run" not in _trained_runs:
        output = tmp_path_factory.mktemp("runs")
        status = main(["train", "--model", "lenet5_modern", *dataset_flags("fashion-mnist"), "--epochs", "2",
                       "--batch-size", "50", "--lr", "0.05", "--amp", "off", "--seed", "0",
                       "--output", str(output), "--html", "--quiet",
                       "--set", f"train_size={TRAIN_SIZE}", f"val_size={VAL_SIZE}", f"test_size={TEST_SIZE}",
                       "warmup_steps=0", "channels_last=false", "run_name=lenet",
                       "threads=1"])  # 2 threads on a shared 2-core machine ran 40x slower (spinning OpenMP)
        assert status == 0
        _trained_runs["run"] = output / "lenet"
    return _trained_runs["run"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    return short_training_run(tmp_path_factory)


def write_hand_built_run(folder: Path, *, seed: int, test_accuracy: float, best_val_accuracy: float,
                         probs: np.ndarray, labels: np.ndarray) -> Path:
    """A finished run folder in the training contract's format, with predictions.npz already there."""
    folder.mkdir(parents=True)
    config = {"model": "lenet5_modern", "dataset": "fashion-mnist", "recipe": "hand-built", "seed": seed,
              "epochs": 2, "lr": 0.1, "output": str(folder.parent), "run_name": folder.name}
    summary = {"model": "lenet5_modern", "dataset": "fashion-mnist", "recipe": "hand-built", "seed": seed,
               "epochs": 2, "best_val_accuracy": best_val_accuracy, "final_val_accuracy": best_val_accuracy,
               "test_accuracy": test_accuracy, "wall_seconds": 12.5, "params": 61706, "macs": 416520,
               "images_per_s": 1234.0}
    environment = {"python": "3.11", "torch": "2.14.1", "device": "cpu", "device_name": "Test CPU",
                   "torch_threads": 2, "world_size": 1, "amp": "off", "git_commit": "0123abcd", "git_dirty": False}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "env.json").write_text(json.dumps(environment))
    with (folder / "metrics.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s",
                         "seconds"])
        writer.writerow([1, 10, 1.5, 0.5, 1.2, best_val_accuracy - 0.1, 0.1, 1200.0, 6.0])
        writer.writerow([2, 20, 0.9, 0.7, 0.8, best_val_accuracy, 0.01, 1268.0, 6.5])
    wrong = most_confident_mistakes(probs, labels, MOST_CONFIDENT_MISTAKES)
    Predictions(probs=probs.astype(np.float32), labels=labels.astype(np.int64), class_names=CLASS_NAMES,
                mistake_indices=wrong, mistake_images=np.full((len(wrong), 1, 28, 28), 128, np.uint8)
                ).save(folder / PREDICTIONS_FILE)
    return folder


def hand_built_predictions() -> tuple[np.ndarray, np.ndarray]:
    """Four predictions whose ECE over 15 bins is worked out by hand below."""
    probs = np.array([[0.95, 0.03, 0.02],   # right, confidence 0.95, bin (14/15, 1]
                      [0.95, 0.03, 0.02],   # wrong (label 1), same bin
                      [0.62, 0.30, 0.08],   # right, confidence 0.62, bin (9/15, 10/15]
                      [0.18, 0.72, 0.10]])  # right, confidence 0.72, bin (10/15, 11/15]
    labels = np.array([0, 1, 0, 1])
    return probs, labels


def key_number(report: str, quantity: str) -> str:
    match = re.search(rf"^\| {re.escape(quantity)} \| ([^|]+) \|$", report, flags=re.MULTILINE)
    assert match, f"no row {quantity!r} in the report's key numbers"
    return match.group(1).strip()


def table_after(report: str, heading: str) -> list[list[str]]:
    """The first Markdown table after a heading, as rows of cells (header and rule left out)."""
    section = report[report.index(heading):]
    lines = section.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


@pytest.fixture(scope="module")
def hand_built_report(tmp_path_factory) -> str:
    probs, labels = hand_built_predictions()
    run = write_hand_built_run(tmp_path_factory.mktemp("hand-built") / "run", seed=0, test_accuracy=0.75,
                               best_val_accuracy=0.8, probs=probs, labels=labels)
    return write_report(run).read_text()


def test_ece_and_entropy_in_the_report_equal_the_hand_computed_values(hand_built_report):
    probs, labels = hand_built_predictions()
    report = hand_built_report
    # Bins: {0.95 right, 0.95 wrong}: |0.5 - 0.95| = 0.45, weight 2/4; {0.62 right}: 0.38, 1/4; {0.72}: 0.28, 1/4.
    expected_ece = 2 / 4 * 0.45 + 1 / 4 * 0.38 + 1 / 4 * 0.28
    assert expected_ece == pytest.approx(0.39)
    assert key_number(report, "expected calibration error") == f"{expected_ece * 100:.2f}%"
    expected_entropy = np.mean([-sum(p * math.log(p) for p in row) for row in probs])
    assert key_number(report, "mean predictive entropy") == f"{expected_entropy:.4f} nats"
    bins = {row[0]: row for row in table_after(report, "## Calibration")}
    assert bins["(0.933, 1.000]"][1:4] == ["2", "95.00%", "50.00%"]
    assert bins["(0.600, 0.667]"][1:4] == ["1", "62.00%", "100.00%"]
    assert sum(int(row[1]) for row in bins.values()) == len(labels)


def test_confusion_counts_and_per_class_scores_of_hand_built_predictions(hand_built_report):
    _, labels = hand_built_predictions()
    per_class = {row[0]: row for row in table_after(hand_built_report, "## Test set")}
    # cat: 2 images, both right; predicted cat 3 times (one was a dog) -> precision 2/3.
    assert per_class["cat"][1:6] == ["2", "2", "100.00%", "66.67%", "0.800"]
    # dog: 2 images, 1 right (the other predicted cat); precision 1/1.
    assert per_class["dog"][1:7] == ["2", "1", "50.00%", "100.00%", "0.667", "cat (1)"]
    assert per_class["bird"][1:5] == ["0", "0", "—", "—"]
    assert sum(int(row[1]) for row in per_class.values()) == len(labels)


def test_mean_and_sample_std_over_seeds_in_the_comparison_report(tmp_path):
    probs, labels = hand_built_predictions()
    runs = [write_hand_built_run(tmp_path / f"seed{seed}", seed=seed, test_accuracy=accuracy,
                                 best_val_accuracy=accuracy + 0.01, probs=probs, labels=labels)
            for seed, accuracy in [(0, 0.90), (1, 0.92), (2, 0.94)]]
    path = write_comparison_report(runs, html=True)
    assert path == tmp_path / "comparison.md"
    report = path.read_text()
    across_seeds = table_after(report, "## Across seeds")
    assert len(across_seeds) == 1
    # mean 92.00; sample std sqrt(((-2)^2 + 0 + 2^2) / 2) = 2.00
    assert across_seeds[0][3:7] == ["—", "0, 1, 2", "3", "92.00 ± 2.00% (n=3)"]
    assert across_seeds[0][7] == "93.00 ± 2.00% (n=3)"
    paper_rows = table_after(report, "## Paper vs these runs")
    zalando_small_net = next(row for row in paper_rows if "2-conv" in row[0])
    assert zalando_small_net[1:3] == ["baseline", "not stated"]  # a different model, for scale
    assert zalando_small_net[4:] == ["92.50%", "92.00 ± 2.00% (n=3) after 2 epochs", "-0.50 pp"]
    runs_table = table_after(report, "## Runs")
    assert [row[0] for row in runs_table] == ["seed2", "seed1", "seed0"]  # by test accuracy, best first
    html = (tmp_path / "comparison.html").read_text()
    assert "data:image/png;base64," in html and "92.00 ± 2.00% (n=3)" in html


def test_a_different_config_is_a_different_group(tmp_path):
    probs, labels = hand_built_predictions()
    first = write_hand_built_run(tmp_path / "a", seed=0, test_accuracy=0.9, best_val_accuracy=0.9,
                                 probs=probs, labels=labels)
    second = write_hand_built_run(tmp_path / "b", seed=1, test_accuracy=0.8, best_val_accuracy=0.8,
                                  probs=probs, labels=labels)
    config = json.loads((second / "config.json").read_text())
    (second / "config.json").write_text(json.dumps({**config, "lr": 0.05}))
    report = write_comparison_report([first, second], output=tmp_path / "out").read_text()
    groups = table_after(report, "## Across seeds")
    assert [row[3] for row in groups] == ["lr=0.1", "lr=0.05"]
    assert [row[5:7] for row in groups] == [["1", "90.00%"], ["1", "80.00%"]]
    assert "### lenet5_modern on fashion-mnist, recipe hand-built, lr=0.05 (seeds 1)" in report


def test_a_run_without_a_validation_split_is_reported(tmp_path):
    probs, labels = hand_built_predictions()
    run = write_hand_built_run(tmp_path / "run", seed=0, test_accuracy=0.75, best_val_accuracy=0.8,
                               probs=probs, labels=labels)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "best_val_accuracy": None,
                                                  "final_val_accuracy": None}))
    rows = (run / "metrics.csv").read_text().splitlines()
    without_validation = [rows[0]] + [",".join("" if column in (4, 5) else value
                                               for column, value in enumerate(row.split(","))) for row in rows[1:]]
    (run / "metrics.csv").write_text("\n".join(without_validation) + "\n")
    report = write_report(run).read_text()
    assert key_number(report, "best validation accuracy") == "—"
    assert [row[3:5] for row in table_after(report, "## Learning curves")] == [["—", "—"], ["—", "—"]]
    comparison = write_comparison_report([run, run], output=tmp_path / "out").read_text()
    assert table_after(comparison, "## Across seeds")[0][7] == "—"


def test_report_of_a_folder_that_is_not_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no summary.json" in error


# ---------------------------------------------------------------------------------------------------------
# A real short training run.


def test_training_writes_the_report_with_its_images(trained_run):
    for name in ("report.md", "report.html", "predictions.npz"):
        assert (trained_run / name).is_file(), name
    report = (trained_run / "report.md").read_text()
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert images == ["learning_curves.png", "confusion_matrix.png", "confident_mistakes.png",
                      "reliability_diagram.png"]
    for name in images:
        with Image.open(trained_run / name) as image:
            image.verify()
        with Image.open(trained_run / name) as image:
            assert image.format == "PNG"
            assert image.width >= 300 and image.height >= 300, (name, image.size)
    html = (trained_run / "report.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == len(images)
    assert base64.b64decode(embedded[0]) == (trained_run / images[0]).read_bytes()
    assert "<table>" in html and "T-shirt/top" in html
    assert html.count("<details><summary>all ") == 2  # config and environment tables folded away


def test_report_numbers_equal_summary_and_metrics(trained_run):
    report = (trained_run / "report.md").read_text()
    summary = json.loads((trained_run / "summary.json").read_text())
    assert key_number(report, "test accuracy (best-validation checkpoint)") == f"{summary['test_accuracy'] * 100:.2f}%"
    assert key_number(report, "best validation accuracy") == f"{summary['best_val_accuracy'] * 100:.2f}%"
    assert key_number(report, "final validation accuracy") == f"{summary['final_val_accuracy'] * 100:.2f}%"
    assert key_number(report, "parameters") == f"{summary['params']:,}" == "61,706"
    assert key_number(report, "training images/s") == f"{summary['images_per_s']:,.0f}"
    assert key_number(report, "test images evaluated") == f"{summary['test_images']:,}" == f"{TEST_SIZE:,}"
    with (trained_run / "metrics.csv").open() as file:
        metrics = list(csv.DictReader(file))
    epochs = table_after(report, "## Learning curves")
    assert len(epochs) == len(metrics) == summary["epochs"] == 2
    for shown, row in zip(epochs, metrics):
        assert shown[0] == row["epoch"]
        assert shown[1] == f"{float(row['train_loss']):.4f}" and shown[3] == f"{float(row['val_loss']):.4f}"
        assert shown[2] == f"{float(row['train_acc']) * 100:.2f}%" and shown[4] == f"{float(row['val_acc']) * 100:.2f}%"
        assert shown[5] == f"{float(row['lr']):.4g}"
    paper = table_after(report, "## Paper vs this run")
    assert paper[0][5] == f"{summary['test_accuracy'] * 100:.2f}% after {summary['epochs']} epochs"
    assert paper[0][6] == f"{summary['test_accuracy'] * 100 - 92.5:+.2f} pp"
    assert "zalandoresearch/fashion-mnist" in paper[0][0]


def test_confusion_matrix_covers_the_test_set_and_matches_the_summary(trained_run):
    report = (trained_run / "report.md").read_text()
    summary = json.loads((trained_run / "summary.json").read_text())
    per_class = table_after(report, "## Test set")
    assert [row[0] for row in per_class] == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                            "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert sum(int(row[1].replace(",", "")) for row in per_class) == TEST_SIZE
    right = sum(int(row[2].replace(",", "")) for row in per_class)
    assert right == round(summary["test_accuracy"] * TEST_SIZE)  # the same checkpoint, the same test images
    with np.load(trained_run / PREDICTIONS_FILE) as saved:
        assert saved["probs"].shape == (TEST_SIZE, 10) and saved["labels"].shape == (TEST_SIZE,)
        assert np.allclose(saved["probs"].sum(axis=1), 1, atol=1e-5)
        assert (saved["probs"].argmax(axis=1) == saved["labels"]).sum() == right
        assert len(saved["mistake_indices"]) == min(MOST_CONFIDENT_MISTAKES, TEST_SIZE - right)


def test_evidence_section_names_seed_code_version_and_hardware(trained_run):
    report = (trained_run / "report.md").read_text()
    evidence = {row[0]: row[1] for row in table_after(report, "## Evidence")}
    environment = json.loads((trained_run / "env.json").read_text())
    assert evidence["seed"] == "0" and evidence["model"] == "lenet5_modern"
    assert evidence["code version"].startswith(environment.get("git_commit", "papernets"))
    assert environment["device_name"] in evidence["hardware"]
    config = {row[0]: row[1] for row in table_after(report, "### Config")}
    assert config["train_size"] == str(TRAIN_SIZE) and config["lr"] == "0.05"


def test_the_report_is_rebuilt_from_saved_predictions(trained_run, monkeypatch):
    import papernets.evaluation as evaluation

    def refuse(*args, **kwargs):
        raise AssertionError("the report evaluated the checkpoint instead of reading predictions.npz")

    monkeypatch.setattr(evaluation, "logits_batches", refuse)
    before = (trained_run / "report.md").read_text()
    assert main(["report", str(trained_run)]) == 0
    assert (trained_run / "report.md").read_text() == before


@pytest.mark.slow
def test_a_run_folder_without_predictions_gets_them_from_its_best_checkpoint(trained_run, tmp_path):
    """A report only reads predictions.npz; `papernets report` on an older run folder without it evaluates the
    best checkpoint through the one evaluation path first, giving what training saved."""
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    (copy / PREDICTIONS_FILE).unlink()
    with pytest.raises(RunFolderError, match="predictions.npz is missing"):
        write_report(copy)
    assert main(["report", str(copy)]) == 0
    saved, evaluated = Predictions.load(trained_run / PREDICTIONS_FILE), Predictions.load(copy / PREDICTIONS_FILE)
    assert np.array_equal(saved.labels, evaluated.labels)
    assert np.allclose(saved.probs, evaluated.probs, atol=1e-6)
    assert np.array_equal(saved.mistake_indices, evaluated.mistake_indices)


@pytest.mark.slow
def test_report_equals_summary_on_the_fast_recipe_with_bf16_channels_last_and_flip_averaging(tmp_path):
    """The path the fast recipe trains on (bf16 autocast, channels_last, flip test-time averaging): the test
    accuracy in summary.json, the report's confusion matrix, predictions.npz and `papernets eval` agree exactly,
    since all of them are the engine's one test pass or the one evaluation loop."""
    assert main(["train", "--recipe", "fast-fashion-mnist", *dataset_flags("fashion-mnist"), "--epochs", "1",
                 "--output", str(tmp_path), "--quiet",
                 "--set", "train_size=2048", "val_size=512", f"test_size={TEST_SIZE}", "warmup_steps=2",
                 "amp=bf16", "channels_last=true", "eval_tta_flip=true", "run_name=fast", "threads=1"]) == 0
    run = tmp_path / "fast"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["precision"] == "bf16"
    report = (run / "report.md").read_text()
    right = sum(int(row[2].replace(",", "")) for row in table_after(report, "## Test set"))
    assert right == round(summary["test_accuracy"] * TEST_SIZE)
    assert key_number(report, "test top-5 accuracy") == f"{summary['test_top5_accuracy'] * 100:.2f}%"
    predictions = Predictions.load(run / PREDICTIONS_FILE)
    assert (predictions.probs.argmax(axis=1) == predictions.labels).mean() == summary["test_accuracy"]
    top5 = np.argsort(-predictions.probs, axis=1, kind="stable")[:, :5]
    assert (top5 == predictions.labels[:, None]).any(axis=1).mean() == pytest.approx(summary["test_top5_accuracy"])
    evaluated = evaluate_checkpoint(run, data_dir=str(dataset_flags("fashion-mnist")[-1]))
    assert (evaluated["accuracy"], evaluated["top5_accuracy"]) == (summary["test_accuracy"],
                                                                   summary["test_top5_accuracy"])


def test_a_predictions_file_that_would_inflate_past_any_run_is_refused_before_inflating(tmp_path):
    bomb = tmp_path / "predictions.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("probs.npy", "w", force_zip64=True) as member:
            for _ in range(LARGEST_INFLATED_BYTES // (1 << 20) + 1):
                member.write(bytes(1 << 20))
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(RunFolderError, match="would inflate to"):
        Predictions.load(bomb)

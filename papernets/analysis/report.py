"""Reports on run folders: `write_report(run_dir)` for one run (report.md, its PNGs, optionally report.html),
`write_comparison_report(run_dirs)` for several.

A run's report holds its learning curves, the best checkpoint's confusion matrix and per-class precision and
recall on the test set, the test images it was most confidently wrong on, its calibration (expected
calibration error, reliability diagram, mean predictive entropy), the evidence (config, seed, code version,
hardware, wall time, images/s) and the shipped "paper vs this run" table. The test-set predictions are the
ones training's test pass saved in predictions.npz (the probabilities summary.json's test accuracy counts);
a report never evaluates a model.
"""

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from papernets import stats
from papernets.analysis import compare, plots
from papernets.analysis.document import Document
from papernets.analysis.paper_results import COMPARISON_HEADERS, RunAccuracy, comparison_rows
from papernets.files import write_text
from papernets.runs.names import PREDICTIONS_FILE
from papernets.runs.predictions import Predictions
from papernets.runs.reader import Run, RunFolderError, read_run
from papernets.text import plural

REPORT_FILE = "report.md"
REPORT_ADVICE = "free disk space or make the folder writable, then run `papernets report` again"
COMPARISON_FILE = "comparison.md"
CALIBRATION_BINS = 15
LEARNING_CURVES_PNG = "learning_curves.png"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"
MISTAKES_PNG = "confident_mistakes.png"
RELIABILITY_PNG = "reliability_diagram.png"
VALIDATION_CURVES_PNG = "comparison_validation_accuracy.png"
DIFFERENCE_NOTE = ("Difference: the run's test accuracy minus the published one, in percentage points (pp); for a "
                   "published range, the distance to its nearest end. Each row cites its source; reproductions' "
                   "recipes differ from papernets' recipes.")


def percent(fraction: float | None) -> str:
    """A fraction as a percentage; "—" for a figure the run did not measure (no validation split)."""
    return "—" if fraction is None else f"{fraction * 100:.2f}%"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts (true class, predicted class)."""
    return np.bincount(labels * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def per_class_rows(matrix: np.ndarray, class_names: list[str]) -> list[list[str]]:
    """Per class: test images, recall (= the class's accuracy), precision, F1 and the most frequent confusion."""
    true_totals = matrix.sum(axis=1)
    predicted_totals = matrix.sum(axis=0)
    rows = []
    for index, name in enumerate(class_names):
        correct = matrix[index, index]
        recall = correct / true_totals[index] if true_totals[index] else None        # no test image of the class
        precision = correct / predicted_totals[index] if predicted_totals[index] else None  # never predicted
        f1 = None
        if precision is not None and recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
        confusions = matrix[index].copy()
        confusions[index] = 0
        confused_with = (f"{class_names[int(confusions.argmax())]} ({int(confusions.max())})"
                         if confusions.max() > 0 else "—")
        rows.append([name, f"{int(true_totals[index]):,}", f"{int(correct):,}", percent(recall), percent(precision),
                     "—" if f1 is None else f"{f1:.3f}", confused_with])
    return rows


@dataclass(frozen=True)
class Calibration:
    ece: float
    bins: stats.CalibrationBins
    mean_entropy: float        # nats, over all test images
    mean_entropy_right: float  # over the right predictions (NaN when there are none)
    mean_entropy_wrong: float

    @classmethod
    def of(cls, predictions: Predictions) -> "Calibration":
        ece, bins = stats.expected_calibration_error(predictions.probs, predictions.labels, n_bins=CALIBRATION_BINS)
        entropies = stats.entropy(predictions.probs.astype(np.float64), axis=1)
        right = predictions.probs.argmax(axis=1) == predictions.labels
        return cls(ece=float(ece), bins=bins, mean_entropy=float(entropies.mean()),
                   mean_entropy_right=float(entropies[right].mean()) if right.any() else math.nan,
                   mean_entropy_wrong=float(entropies[~right].mean()) if (~right).any() else math.nan)


def _flatten(values: dict, prefix: str = "") -> list[tuple[str, str]]:
    items = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", json.dumps(value) if isinstance(value, (list, dict, bool))
                          or value is None else str(value)))
    return items


def _hardware(environment: dict) -> str:
    """From env.json (papernets.runs.writer.environment): device, threads, processes, autocast."""
    if "device" not in environment:
        return "not recorded"
    device = environment["device"]
    name = environment.get("device_name")
    parts = [f"{name} ({device})" if name else device]
    if environment.get("torch_threads"):
        threads = environment["torch_threads"]
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    if environment.get("world_size", 1) > 1:
        parts.append(f"{environment['world_size']} processes")
    if environment.get("amp"):
        parts.append(f"autocast {environment['amp']}")
    return ", ".join(parts)


def _code_version(environment: dict) -> str:
    if environment.get("git_commit"):
        return environment["git_commit"] + (" (with uncommitted changes)" if environment.get("git_dirty") else "")
    return f"papernets {environment.get('package_version', 'version not recorded')} (not a git checkout)"


def _images_per_second(run: Run) -> float | None:
    if run.summary.get("images_per_s") is not None:
        return float(run.summary["images_per_s"])
    values = run.metric_column("images_per_s")
    return float(np.mean(values)) if values else None


def _key_numbers(document: Document, run: Run, predictions: Predictions, calibration: Calibration) -> None:
    summary = run.summary
    rows = [["test accuracy (best-validation checkpoint)", percent(summary["test_accuracy"])],
            ["test error", percent(1 - summary["test_accuracy"])]]
    if summary.get("test_top5_accuracy") is not None:
        rows.append(["test top-5 accuracy", percent(summary["test_top5_accuracy"])])
    rows.append(["best validation accuracy", percent(summary.get("best_val_accuracy"))])
    if summary.get("final_val_accuracy") is not None:
        rows.append(["final validation accuracy", percent(summary["final_val_accuracy"])])
    rows += [["test images evaluated", f"{len(predictions.labels):,}"],
             ["expected calibration error", percent(calibration.ece)],
             ["mean predictive entropy", f"{calibration.mean_entropy:.4f} nats"]]
    if summary.get("params") is not None:
        rows.append(["parameters", f"{int(summary['params']):,}"])
    if summary.get("macs") is not None:
        rows.append(["MACs per image", f"{summary['macs'] / 1e6:,.2f} M"])
    rows += [["epochs", str(summary.get("epochs", len(run.metrics)))],
             ["wall time", duration(summary["wall_seconds"])]]
    images_per_second = _images_per_second(run)
    if images_per_second is not None:
        rows.append(["training images/s", f"{images_per_second:,.0f}"])
    document.table(["quantity", "value"], rows)


def _paper_comparison(document: Document, model: str, dataset: str, accuracy: RunAccuracy, epochs) -> None:
    rows = comparison_rows(model, dataset, accuracy, epochs)
    if rows:
        document.table(COMPARISON_HEADERS, rows)
    else:
        document.paragraph(f"No published figure for `{model}` on `{dataset}` is in the shipped table "
                           "(papernets/analysis/paper_results.toml).")


def _learning_curves(document: Document, run: Run, title: str) -> None:
    document.heading("Learning curves")
    columns = ["epoch", "train_loss", "train_acc", "lr"]  # val_* are empty without a validation split
    missing = [column for column in columns if any(column not in row for row in run.metrics)]
    if not run.metrics or missing:
        raise RunFolderError(f"{run.path / 'metrics.csv'} lacks {', '.join(missing) or 'rows'}; train the run again.")
    path = plots.plot_learning_curves(run.metrics, title, run.path / LEARNING_CURVES_PNG)
    document.image(path, "Train and validation loss and accuracy, and the learning rate, per epoch.")
    document.table(["epoch", "train loss", "train acc", "val loss", "val acc", "lr", "images/s", "seconds"],
                   [[f"{int(row['epoch'])}", f"{row['train_loss']:.4f}", percent(row["train_acc"]),
                     f"{row['val_loss']:.4f}" if "val_loss" in row else "—", percent(row.get("val_acc")),
                     f"{row['lr']:.4g}", f"{row['images_per_s']:,.0f}" if "images_per_s" in row else "—",
                     f"{row['seconds']:.1f}" if "seconds" in row else "—"] for row in run.metrics])


def _test_set(document: Document, run: Run, predictions: Predictions, title: str) -> None:
    classes = len(predictions.class_names)
    predicted = predictions.probs.argmax(axis=1)
    matrix = confusion_matrix(predictions.labels, predicted, classes)
    document.heading("Test set: confusion matrix and per-class scores")
    document.paragraph(f"The best-validation checkpoint on {len(predictions.labels):,} test images: "
                       f"{int(np.trace(matrix)):,} right, accuracy {percent(np.trace(matrix) / matrix.sum())}.")
    path = plots.plot_confusion_matrix(matrix, predictions.class_names, title, run.path / CONFUSION_MATRIX_PNG)
    document.image(path, "Confusion matrix: rows are true classes, columns predicted classes.")
    document.table(["class", "test images", "right", "recall (class accuracy)", "precision", "F1",
                    "most often mistaken for"], per_class_rows(matrix, predictions.class_names))

    document.heading("Most confidently wrong test images")
    indices = predictions.mistake_indices
    names = predictions.class_names
    path = plots.plot_mistakes(
        predictions.mistake_images, [names[predictions.labels[index]] for index in indices],
        [names[predicted[index]] for index in indices],
        [float(predictions.probs[index, predicted[index]]) for index in indices],
        f"{title}: the {len(indices)} most confident mistakes", run.path / MISTAKES_PNG)
    document.image(path, "Wrong predictions, most confident first, with true and predicted labels.")


def _calibration(document: Document, run: Run, calibration: Calibration, classes: int, title: str) -> None:
    document.heading("Calibration")
    document.paragraph(
        f"Expected calibration error (ECE, {CALIBRATION_BINS} equal-width confidence bins, Guo et al. 2017): "
        f"**{percent(calibration.ece)}**. Mean predictive entropy: **{calibration.mean_entropy:.4f} nats** "
        f"(a uniform guess over {classes} classes has {math.log(classes):.4f}): "
        f"{calibration.mean_entropy_right:.4f} on right predictions, {calibration.mean_entropy_wrong:.4f} on "
        "wrong ones.")
    bins = calibration.bins
    path = plots.plot_reliability(np.append(bins.lower, bins.upper[-1]), np.nan_to_num(bins.accuracy),
                                  np.nan_to_num(bins.confidence), bins.count, calibration.ece, title,
                                  run.path / RELIABILITY_PNG)
    document.image(path, "Reliability diagram: accuracy per confidence bin; the diagonal is perfect calibration, "
                         "bars above it are underconfident, bars below it overconfident.")
    document.table(["confidence bin", "test images", "mean confidence", "accuracy",
                    "gap (confidence − accuracy)"],
                   [[f"({lower:.3f}, {upper:.3f}]", f"{int(count):,}",
                     "—" if count == 0 else percent(confidence), "—" if count == 0 else percent(accuracy),
                     "—" if count == 0 else f"{(confidence - accuracy) * 100:+.2f} pp"]
                    for lower, upper, count, confidence, accuracy
                    in zip(bins.lower, bins.upper, bins.count, bins.confidence, bins.accuracy)])


def _evidence(document: Document, run: Run) -> None:
    summary, environment = run.summary, run.environment
    document.heading("Evidence")
    images_per_second = _images_per_second(run)
    document.table(["evidence", "value"], [
        ["model", str(summary.get("model"))], ["dataset", str(summary.get("dataset"))],
        ["recipe", str(summary.get("recipe", run.config.get("recipe")))],
        ["seed", str(summary.get("seed", run.config.get("seed")))],
        ["code version", _code_version(environment)],
        ["hardware", _hardware(environment)],
        ["wall time", duration(summary["wall_seconds"])],
        ["training images/s", "not recorded" if images_per_second is None else f"{images_per_second:,.0f}"],
        ["run folder", str(run.path)]])
    document.heading("Config (config.json)", level=3)
    settings = _flatten(run.config)
    document.table(["setting", "value"], [list(item) for item in settings],
                   folded=f"all {len(settings)} settings of the resolved config")
    document.heading("Environment (env.json)", level=3)
    fields = _flatten(environment)
    document.table(["field", "value"], [list(item) for item in fields], folded=f"all {len(fields)} fields")


def _accuracy_over_runs(accuracies: list[float | None]) -> str:
    measured = [accuracy for accuracy in accuracies if accuracy is not None]
    return str(RunAccuracy.of(measured)) if measured else "—"


def _write(document: Document, folder: Path, markdown_name: str, html: bool) -> Path:
    markdown_path = folder / markdown_name
    write_text(markdown_path, document.markdown(), REPORT_ADVICE)
    if html:
        write_text(markdown_path.with_suffix(".html"), document.html(), REPORT_ADVICE)
    return markdown_path


def write_report(run_dir: str | Path, html: bool = False) -> Path:
    """Write report.md (and report.html with embedded images when asked) into a run folder; return report.md."""
    run = read_run(run_dir)
    predictions = Predictions.load(run.path / PREDICTIONS_FILE)
    model, dataset = run.summary["model"], run.summary["dataset"]
    title = f"{model} on {dataset}"
    document = Document(f"{title} — run {run.name}")
    document.paragraph(
        f"Test accuracy **{percent(run.summary['test_accuracy'])}** from the best-validation checkpoint; best "
        f"validation accuracy {percent(run.summary.get('best_val_accuracy'))}; "
        f"{plural(run.summary.get('epochs', len(run.metrics)), 'epoch')} in "
        f"{duration(run.summary['wall_seconds'])}; "
        f"recipe `{run.summary.get('recipe', run.config.get('recipe'))}`, seed {run.summary.get('seed')}.")

    calibration = Calibration.of(predictions)
    document.heading("Key numbers")
    _key_numbers(document, run, predictions, calibration)
    document.heading("Paper vs this run")
    _paper_comparison(document, model, dataset, RunAccuracy.of([run.summary["test_accuracy"]]),
                      run.summary.get("epochs"))
    document.paragraph(DIFFERENCE_NOTE)
    _learning_curves(document, run, title)
    _test_set(document, run, predictions, title)
    _calibration(document, run, calibration, len(predictions.class_names), title)
    _evidence(document, run)
    document.paragraph(f"Test predictions are those of training's test pass, kept in `{PREDICTIONS_FILE}`. "
                       "Rebuild this report with `papernets report " + str(run.path) + "`.")
    return _write(document, run.path, REPORT_FILE, html)


def write_comparison_report(run_dirs: list[str | Path], output: str | Path | None = None,
                            html: bool = False) -> Path:
    """Compare several runs in comparison.md (and .html) in `output`, by default the first run's parent folder.

    Runs that differ only in their seed (and in settings that do not change what is trained) form one group,
    reported as mean ± sample std over its n runs, also in the "paper vs these runs" table.
    """
    runs = [read_run(run_dir) for run_dir in run_dirs]
    folder = Path(output) if output is not None else runs[0].path.resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"Cannot create the report folder {folder} ({error.strerror}); "
                             "pass a writable folder with --output.") from None
    document = Document(f"Comparison of {len(runs)} runs")

    document.heading("Runs")
    rows = compare.sort_rows([compare.RunRow(run.path, run.summary) for run in runs], "test")
    headers, cells = compare.table(rows)
    document.table(headers, cells)

    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        groups[compare.experiment_key(run.summary, run.config)].append(run)
    members_by_group = list(groups.values())
    differences = compare.distinguishing_settings([members[0].config for members in members_by_group])
    document.heading("Across seeds")
    document.paragraph("Runs of one config that differ only in the seed (and in where and how fast they ran) form "
                       "a group: accuracy as mean ± sample standard deviation over its n runs.")
    group_rows = []
    for members, difference in zip(members_by_group, differences):
        first = members[0].summary
        group_rows.append([
            str(first.get("model")), str(first.get("dataset")), str(first.get("recipe")), difference or "—",
            ", ".join(str(run.summary.get("seed")) for run in members), str(len(members)),
            str(RunAccuracy.of([run.summary["test_accuracy"] for run in members])),
            _accuracy_over_runs([run.summary.get("best_val_accuracy") for run in members]),
            duration(float(np.mean([run.summary["wall_seconds"] for run in members])))])
    document.table(["model", "dataset", "recipe", "settings that differ", "seeds", "n", "test accuracy",
                    "best val accuracy", "mean wall time"], group_rows)

    document.heading("Paper vs these runs")
    document.paragraph(DIFFERENCE_NOTE)
    for members, difference in zip(members_by_group, differences):
        first = members[0].summary
        seeds = ", ".join(str(run.summary.get("seed")) for run in members)
        settings = f", {difference}" if difference else ""
        document.heading(f"{first.get('model')} on {first.get('dataset')}, recipe {first.get('recipe')}{settings} "
                         f"(seeds {seeds})", level=3)
        _paper_comparison(document, first["model"], first["dataset"],
                          RunAccuracy.of([run.summary["test_accuracy"] for run in members]), first.get("epochs"))

    document.heading("Validation accuracy")
    curves = {f"{run.name} ({run.summary.get('model')}, seed {run.summary.get('seed')})":
              ([row["epoch"] for row in run.metrics if "val_acc" in row], run.metric_column("val_acc"))
              for run in runs}
    path = plots.plot_validation_curves(curves, f"Validation accuracy of {len(runs)} runs",
                                        folder / VALIDATION_CURVES_PNG)
    document.image(path, "Validation accuracy per epoch, one line per run.")
    return _write(document, folder, COMPARISON_FILE, html)

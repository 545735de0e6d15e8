"""The report's figures as PNG files: learning curves, confusion matrix, most confident mistakes, reliability
diagram, and validation curves of several runs side by side.

Figures are drawn with matplotlib's object API (`Figure`, rendered by Agg), so no window or global pyplot
state is involved and reports can be written on machines without a display.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from papernets.files import atomic_write

DPI = 110
TRAIN_COLOR = "#1f77b4"
VALIDATION_COLOR = "#d62728"
SAVE_ADVICE = "free disk space or make the folder writable, then run `papernets report` again"


def _save(figure: Figure, path: Path) -> Path:
    with atomic_write(path, SAVE_ADVICE) as file:
        figure.savefig(file, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


def plot_learning_curves(metrics: list[dict[str, float]], title: str, path: Path) -> Path:
    """Loss, accuracy and learning rate per epoch (metrics.csv rows)."""
    epochs = [row["epoch"] for row in metrics]
    figure = Figure(figsize=(15, 4.6), layout="constrained")
    loss_axes, accuracy_axes, lr_axes = figure.subplots(1, 3)
    marker = "o" if len(epochs) <= 30 else None
    validated = [row for row in metrics if "val_acc" in row]  # none without a validation split
    for axes, quantity, scale, label in ((loss_axes, "loss", 1, "cross-entropy loss"),
                                         (accuracy_axes, "acc", 100, "accuracy (%)")):
        axes.plot(epochs, [row[f"train_{quantity}"] * scale for row in metrics], marker=marker,
                  color=TRAIN_COLOR, label="train")
        if validated:
            axes.plot([row["epoch"] for row in validated], [row[f"val_{quantity}"] * scale for row in validated],
                      marker=marker, color=VALIDATION_COLOR, label="validation")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    loss_axes.set_title("Loss")
    accuracy_axes.set_title("Accuracy")
    if validated:
        best = max(validated, key=lambda row: row["val_acc"])
        at_the_end = best is validated[-1] and len(validated) > 1
        accuracy_axes.annotate(f"best val {best['val_acc']:.2%}", xy=(best["epoch"], best["val_acc"] * 100),
                               xytext=(-12 if at_the_end else 0, -40), textcoords="offset points",
                               ha="right" if at_the_end else "center",
                               arrowprops={"arrowstyle": "->", "color": VALIDATION_COLOR})
    lr_axes.plot(epochs, [row["lr"] for row in metrics], marker=marker, color="#2ca02c")
    lr_axes.set_title("Learning rate")
    lr_axes.set_xlabel("epoch")
    lr_axes.set_ylabel("learning rate")
    lr_axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    lr_axes.grid(alpha=0.3)
    for axes in (loss_axes, accuracy_axes, lr_axes):
        axes.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(title, fontsize=14)
    return _save(figure, path)


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], title: str, path: Path) -> Path:
    """Counts and row-normalised fractions side by side; rows are true classes, columns predictions."""
    classes = len(class_names)
    row_totals = matrix.sum(axis=1, keepdims=True)
    fractions = matrix / np.maximum(row_totals, 1)
    side = max(6.5, 0.55 * classes + 2.5)
    figure = Figure(figsize=(2 * side + 1, side), layout="constrained")
    count_axes, fraction_axes = figure.subplots(1, 2)
    annotate = classes <= 20
    for axes, values, panel_title, text_format in (
            (count_axes, matrix, f"Counts ({int(matrix.sum()):,} test images)", "{:d}"),
            (fraction_axes, fractions, "Row-normalised (recall on the diagonal)", "{:.2f}")):
        image = axes.imshow(values, cmap="Blues", vmin=0, vmax=values.max() or 1)
        figure.colorbar(image, ax=axes, shrink=0.8)
        axes.set_title(panel_title)
        axes.set_xlabel("predicted class")
        axes.set_ylabel("true class")
        if annotate:
            axes.set_xticks(range(classes), class_names, rotation=45, ha="right", rotation_mode="anchor")
            axes.set_yticks(range(classes), class_names)
            threshold = values.max() / 2
            for true_class in range(classes):
                for predicted_class in range(classes):
                    value = values[true_class, predicted_class]
                    axes.text(predicted_class, true_class,
                              text_format.format(int(value) if text_format == "{:d}" else value),
                              ha="center", va="center", fontsize=8,
                              color="white" if value > threshold else "black")
    figure.suptitle(title, fontsize=14)
    return _save(figure, path)


def plot_mistakes(images: np.ndarray, true_names: list[str], predicted_names: list[str],
                  confidences: list[float], title: str, path: Path, columns: int = 6) -> Path:
    """A grid of uint8 images (N, C, H, W) with their true and predicted labels."""
    count = len(images)
    rows = max(1, -(-count // columns))
    figure = Figure(figsize=(2.2 * columns, 2.6 * rows + 0.6), layout="constrained")
    grid = np.atleast_2d(figure.subplots(rows, columns, squeeze=False))
    for index, axes in enumerate(grid.flat):
        axes.set_axis_off()
        if index >= count:
            continue
        image = images[index]
        if image.shape[0] == 1:
            axes.imshow(image[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            axes.imshow(image.transpose(1, 2, 0), interpolation="nearest")  # (C, H, W) -> (H, W, C)
        axes.set_title(f"true: {true_names[index]}\npredicted: {predicted_names[index]}\n"
                       f"({confidences[index]:.1%} sure)", fontsize=9, color="#8b0000")
    if count == 0:
        grid.flat[0].text(0.5, 0.5, "no mistakes on the test set", ha="center", va="center", fontsize=12)
    figure.suptitle(title, fontsize=14)
    return _save(figure, path)


def plot_reliability(bin_edges: np.ndarray, accuracy: np.ndarray, confidence: np.ndarray, counts: np.ndarray,
                     ece: float, title: str, path: Path) -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with the bins' sizes below."""
    figure = Figure(figsize=(7, 8), layout="constrained")
    reliability_axes, count_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    lower, upper = bin_edges[:-1], bin_edges[1:]
    widths = upper - lower
    filled = counts > 0
    reliability_axes.bar(lower[filled], accuracy[filled], width=widths[filled], align="edge",
                         color=TRAIN_COLOR, edgecolor="black", linewidth=0.6, label="accuracy in bin")
    gaps = confidence[filled] - accuracy[filled]
    reliability_axes.bar(lower[filled], np.abs(gaps), bottom=np.minimum(accuracy[filled], confidence[filled]),
                         width=widths[filled], align="edge", fill=False, hatch="///", edgecolor=VALIDATION_COLOR,
                         linewidth=0.8, label="gap to the bin's mean confidence")
    reliability_axes.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    reliability_axes.set_xlim(0, 1)
    reliability_axes.set_ylim(0, 1)
    reliability_axes.set_ylabel("accuracy")
    reliability_axes.set_title(f"Expected calibration error {ece:.2%} ({len(counts)} bins)")
    reliability_axes.legend(loc="upper left")
    reliability_axes.grid(alpha=0.3)
    count_axes.bar(lower, counts, width=widths, align="edge", color="#7f7f7f", edgecolor="black", linewidth=0.6)
    count_axes.set_yscale("log" if counts.max(initial=0) > 100 else "linear")
    count_axes.set_xlabel("confidence (top-class probability)")
    count_axes.set_ylabel("test images")
    count_axes.grid(alpha=0.3)
    figure.suptitle(title, fontsize=14)
    return _save(figure, path)


def plot_validation_curves(curves: dict[str, tuple[list[float], list[float]]], title: str, path: Path) -> Path:
    """Validation accuracy per epoch for several runs: {run label: (epochs, val accuracies as fractions)}."""
    figure = Figure(figsize=(10, 5.5), layout="constrained")
    axes = figure.subplots()
    for label, (epochs, accuracies) in curves.items():
        axes.plot(epochs, [accuracy * 100 for accuracy in accuracies], marker="o" if len(epochs) <= 30 else None,
                  label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy (%)")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    axes.set_title(title, fontsize=14)
    return _save(figure, path)

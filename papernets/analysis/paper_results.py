"""The shipped "paper vs this run" table (paper_results.toml): published test figures per model and dataset,
each with its source, and the comparison of a run's (or several seeds') test accuracy against them."""

import fnmatch
import statistics
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from papernets.text import plural

PAPER_RESULTS_FILE = Path(__file__).with_name("paper_results.toml")


@dataclass(frozen=True)
class PublishedResult:
    models: tuple[str, ...]  # fnmatch patterns over registered model names
    dataset: str
    metric: str              # "test_error" or "test_accuracy", as the source printed it, in percent
    low: float               # the figure, or the low end of a range
    high: float              # equal to `low` unless the source gives a range
    kind: str                # "paper", "reproduction" or "baseline"
    source: str
    std: float | None = None
    runs: int | None = None
    trained: str = "not stated"  # how the source trained (length, augmentation), so a gap reads in context

    def applies_to(self, model: str, dataset: str) -> bool:
        return dataset == self.dataset and any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)

    @property
    def as_printed(self) -> str:
        name = "error" if self.metric == "test_error" else "accuracy"
        figure = f"{self.low:.2f}%" if self.low == self.high else f"{self.low:.2f}–{self.high:.2f}%"
        if self.std is not None:
            figure = f"{self.low:.2f} ± {self.std:.2f}% (n={self.runs})"
        return f"{figure} {name}"

    @property
    def accuracy_range(self) -> tuple[float, float]:
        """Test accuracy in percent (low, high)."""
        if self.metric == "test_error":
            return 100 - self.high, 100 - self.low
        return self.low, self.high

    def difference(self, accuracy_percent: float) -> float:
        """Percentage points from the published accuracy (or from the nearest end of its range) to the run's;
        0 inside a range."""
        low, high = self.accuracy_range
        if accuracy_percent < low:
            return accuracy_percent - low
        if accuracy_percent > high:
            return accuracy_percent - high
        return 0.0


@cache
def published_results() -> tuple[PublishedResult, ...]:
    with PAPER_RESULTS_FILE.open("rb") as file:
        rows = tomllib.load(file)["result"]
    return tuple(
        PublishedResult(models=tuple(row["models"]), dataset=row["dataset"], metric=row["metric"],
                        low=row.get("value", row.get("low")), high=row.get("value", row.get("high")),
                        kind=row["kind"], source=row["source"], std=row.get("std"), runs=row.get("runs"),
                        trained=row.get("trained", "not stated"))
        for row in rows)


def results_for(model: str, dataset: str) -> list[PublishedResult]:
    """Published figures for a model on a dataset: the paper's first, then reproductions, then baselines."""
    order = {"paper": 0, "reproduction": 1, "baseline": 2}
    matching = [result for result in published_results() if result.applies_to(model, dataset)]
    return sorted(matching, key=lambda result: order.get(result.kind, len(order)))


@dataclass(frozen=True)
class RunAccuracy:
    """A test figure over n runs of one config (different seeds), in percent: accuracy, or for a paper that
    reports error, error."""

    mean: float
    std: float | None  # sample standard deviation; None for a single run
    runs: int

    @classmethod
    def of(cls, accuracies: list[float]) -> "RunAccuracy":
        """From accuracies given as fractions in [0, 1]."""
        return cls.of_percents([accuracy * 100 for accuracy in accuracies])

    @classmethod
    def of_percents(cls, percents: list[float]) -> "RunAccuracy":
        std = statistics.stdev(percents) if len(percents) > 1 else None
        return cls(mean=statistics.fmean(percents), std=std, runs=len(percents))

    def __str__(self) -> str:
        if self.std is None:
            return f"{self.mean:.2f}%"
        return f"{self.mean:.2f} ± {self.std:.2f}% (n={self.runs})"


def comparison_rows(model: str, dataset: str, accuracy: RunAccuracy, epochs: int | None = None) -> list[list[str]]:
    """Rows of the "paper vs this run" table: source, kind, how the source trained, published figure, as
    accuracy, this run (with its epochs), difference."""
    this_run = f"{accuracy} after {plural(epochs, 'epoch')}" if epochs else str(accuracy)
    rows = []
    for result in results_for(model, dataset):
        low, high = result.accuracy_range
        published = f"{low:.2f}%" if low == high else f"{low:.2f}–{high:.2f}%"
        difference = result.difference(accuracy.mean)
        difference_text = "within the range" if low != high and difference == 0 else f"{difference:+.2f} pp"
        rows.append([result.source, result.kind, result.trained, result.as_printed, published, this_run,
                     difference_text])
    return rows


COMPARISON_HEADERS = ["source", "kind", "source's training", "published figure", "as test accuracy", "this run",
                      "difference"]

"""The report of a reproduction (`papernets reproduce`): `report.md` and `reproduction.json` in its folder.

One row per model: the paper's figure (from `paper_results.toml`, with its source), ours as mean ± sample std
over the seeds in the paper's metric, the difference, the seeds and the wall time; then every run, and the
evidence: the resolved config, the code version and the hardware, as the runs' env.json recorded them.
"""

import json
from pathlib import Path

from papernets.analysis.paper_results import RunAccuracy, results_for
from papernets.files import write_text
from papernets.runs.reader import read_run

REPORT_FILE = "report.md"
RESULTS_FILE = "reproduction.json"
# Config fields that differ between the runs of one reproduction by design.
PER_RUN_FIELDS = ("seed", "run_name", "model")


def _as_metric(accuracy: float, metric: str) -> float:
    """A test accuracy (fraction) in the paper's metric, in percent."""
    return 100 * (1 - accuracy) if metric == "test_error" else 100 * accuracy


def model_rows(experiment, runs: list) -> list[dict]:
    # A baseline (another model's figure, e.g. human performance) is no figure to reproduce.
    figures = {model: next((result for result in results_for(model, experiment.dataset) if result.kind != "baseline"),
                           None) for model in experiment.models}
    other_metric = next((figure.metric for figure in figures.values() if figure), "test_error")
    rows = []
    for model, published in figures.items():
        model_runs = [run for run in runs if run.summary["model"] == model]
        metric = published.metric if published else other_metric
        values = [_as_metric(run.summary["test_accuracy"], metric) for run in model_runs]
        ours = RunAccuracy.of_percents(values)
        rows.append({
            "model": model, "metric": metric, "paper": published.low if published else None,
            "paper_high": published.high if published else None,
            "paper_source": published.source if published else None,
            "paper_kind": published.kind if published else None,
            "mean": ours.mean, "std": ours.std, "seeds": [run.summary["seed"] for run in model_runs], "values": values,
            "difference": ours.mean - published.low if published else None,
            "wall_seconds": sum(run.summary["wall_seconds"] for run in model_runs),
        })
    return rows


def write_reproduction_report(reproduction) -> Path:
    """`report.md` and `reproduction.json` in the reproduction's folder (a `training.reproduce.Reproduction`)."""
    experiment, folder, quick, command = (reproduction.experiment, reproduction.folder, reproduction.quick,
                                          reproduction.command)
    runs = [read_run(folder / name) for name in reproduction.run_names]
    rows = model_rows(experiment, runs)
    first = runs[0]
    config = {name: value for name, value in first.config.items() if name not in PER_RUN_FIELDS}
    environment = first.environment
    evidence = {name: environment.get(name) for name in ("git_commit", "git_dirty", "package_version", "torch",
                                                          "python", "platform", "cpu_model", "cpu_count",
                                                          "torch_threads", "device", "device_name", "amp")}
    write_text(folder / RESULTS_FILE, json.dumps(
        {"experiment": experiment.name, "quick": quick, "command": command, "rows": rows,
         "config": config, "evidence": evidence}, indent=2) + "\n")

    lines = [f"# Reproduction: {experiment.name}{' (--quick: a run-through, not a result)' if quick else ''}",
             "", experiment.title, "", f"Command: `{' '.join(command)}`", ""]
    if not experiment.claims_figure:
        lines += ["No figure from this experiment is claimed by papernets: it has not been run on the real data "
                  "here.", ""]
    lines += ["| Model | Paper | Source | Ours (mean ± std) | Difference | Seeds | Wall time |",
              "|---|---|---|---|---|---|---|"]
    for row in rows:
        name = "error" if row["metric"] == "test_error" else "accuracy"
        paper = f"{row['paper']:.2f}% {name}" if row["paper"] is not None else "none published"
        difference = f"{row['difference']:+.2f} pp" if row["difference"] is not None else "–"
        lines.append(f"| {row['model']} | {paper} | {row['paper_source'] or '–'} | "
                     f"{RunAccuracy(row['mean'], row['std'], len(row['values']))} {name} | {difference} | "
                     f"{len(row['seeds'])} | {row['wall_seconds'] / 60:.1f} min |")
    lines += ["", "## Every run", "", "| Run | Test accuracy | Best epoch | Epochs | Wall time |",
              "|---|---|---|---|---|"]
    for run in runs:
        summary = run.summary
        lines.append(f"| {run.path.name} | {100 * summary['test_accuracy']:.2f}% | {summary['best_epoch'] or '–'} "
                     f"| {summary['epochs']} | {summary['wall_seconds']:.0f} s |")
    lines += ["", "## Departures from the paper", ""] + [f"- {item}" for item in experiment.deviations]
    lines += ["", "## Evidence", "", "Code and hardware (from the first run's env.json):", ""]
    lines += [f"- {name}: {value}" for name, value in evidence.items() if value is not None]
    lines += ["", "Resolved config (every run; the seed differs):", "", "```json",
              json.dumps(config, indent=2, sort_keys=True), "```", ""]
    return write_text(folder / REPORT_FILE, "\n".join(lines))

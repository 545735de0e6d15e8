"""Time to accuracy of papernets' fast MNIST and Fashion-MNIST recipes: each recipe for n seeds through the
command line (`papernets train --recipe R --seed S`), the training time the run records (summary.json
`wall_seconds`: the training steps and per-epoch validation, without start-up, data loading or the test pass), the
wall time of the whole process (Python start, data loading, training, test evaluation; the report is skipped), and
test accuracy as mean +- std over the seeds, against each recipe's target.

The published points below are printed as references; they are other people's numbers, not measured here.

    .venv/bin/python benchmarks/time_to_accuracy.py [--recipe fast-mnist] [--recipe fast-fashion-mnist] ...
                                                    [--seeds 3] [--threads 0] [--output runs/time-to-accuracy]
                                                    [--set FIELD=VALUE ...]

`--set` passes the same overrides to every run (as `papernets train --set` takes them), so that a variant of a
recipe is measured exactly as the recipe is; the table names the overrides beside the recipe.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, append_entry, hardware, load_average, markdown_table, mean_std  # noqa: E402

# Published points per data set (docs/REFERENCE.md quotes each source).
PUBLISHED = {
    "mnist": ("LeNet-5 99.05% (0.95% test error, LeCun et al. 1998, Sec. III.B); 99% in 0.76 s on one GPU "
              "(tuomaso/train-mnist-fast README)"),
    "fashion-mnist": ("ResNet18 94.9%, MobileNet 95.0%, WRN-28-10 + random erasing 96.3%, 2 conv layers < 100K "
                      "params 92.5% (Zalando's benchmark table, zalandoresearch/fashion-mnist README; submitted, "
                      "not verified)"),
}
# recipe -> (data set, target mean test accuracy in %, target training seconds), issues 12 and 15.
TARGETS = {
    "fast-mnist": ("mnist", 99.0, 15),
    "fast-mnist-1min": ("mnist", 99.4, 60),
    "fast-fashion-mnist": ("fashion-mnist", 93.0, 60),
    "fast-fashion-mnist-5min": ("fashion-mnist", 94.0, 300),
}


def run_once(recipe: str, seed: int, output: Path, device: str, threads: int, overrides: list[str]) -> dict:
    papernets = Path(sys.executable).with_name("papernets")
    command = [str(papernets) if papernets.exists() else sys.executable, *([] if papernets.exists() else ["-m", "papernets"]),
               "train", "--recipe", recipe, "--seed", str(seed), "--output", str(output), "--device", device,
               "--no-report", "--quiet", "--set", f"run_name={recipe}-seed{seed}", f"threads={threads}", *overrides]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed with status {result.returncode}: "
                         f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no message'}")
    summary = json.loads((output / f"{recipe}-seed{seed}" / "summary.json").read_text())
    return {"wall": wall, "train_seconds": summary["wall_seconds"], "test": summary["test_accuracy"],
            "val": summary["best_val_accuracy"], "epochs": summary["epochs"], "model": summary["model"],
            "dataset": summary["dataset"]}


def target_text(recipe: str, test_mean: float, train_mean: float) -> str:
    if recipe not in TARGETS:
        return ""
    _, accuracy, seconds = TARGETS[recipe]
    met = test_mean >= accuracy and train_mean <= seconds
    return f"{accuracy:.1f}% in <= {seconds} s: {'met' if met else 'not met'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", action="append", help="a recipe name (repeatable; default: every recipe with a "
                        f"target: {', '.join(TARGETS)})")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per recipe, 0..n-1 (default 3)")
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "time-to-accuracy")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads per run (default 0: all cores; 1 is steadier on a shared machine)")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE", dest="overrides",
                        help="config overrides for every run, e.g. --set val_size=0 epochs=6")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to docs/BENCHMARKS.md")
    args = parser.parse_args()
    recipes = args.recipe or list(TARGETS)
    threads = f"; runs use {args.threads} thread(s)" if args.threads else ""
    print(f"{hardware(args.device)}{threads}; {load_average()}", flush=True)

    rows = []
    for recipe in recipes:
        runs = []
        for seed in range(args.seeds):
            run = run_once(recipe, seed, args.output, args.device, args.threads, args.overrides)
            runs.append(run)
            print(f"{recipe} seed {seed}: test {100 * run['test']:.2f}%, val {100 * run['val']:.2f}%, "
                  f"wall {run['wall']:.1f} s (training {run['train_seconds']:.1f} s)", flush=True)
        test_mean, test_std = mean_std([100 * run["test"] for run in runs])
        wall_mean, wall_std = mean_std([run["wall"] for run in runs])
        train_mean, train_std = mean_std([run["train_seconds"] for run in runs])
        name = f"{recipe} ({', '.join(args.overrides)})" if args.overrides else recipe
        rows.append([name, runs[0]["dataset"], runs[0]["model"], runs[0]["epochs"], len(runs),
                     f"{test_mean:.2f} +- {test_std:.2f}", f"{train_mean:.1f} +- {train_std:.1f}",
                     f"{wall_mean:.1f} +- {wall_std:.1f}", target_text(recipe, test_mean, train_mean)])
    table = markdown_table(["recipe", "data set", "model", "epochs", "seeds", "test accuracy %", "training s",
                            "wall s (process)", "target"], rows)
    datasets = dict.fromkeys(row[1] for row in rows)
    references = "Published references (not measured here): " + "; ".join(
        f"{name}: {PUBLISHED[name]}" for name in datasets if name in PUBLISHED) + "."
    print(table)
    print(references)
    if not args.no_append:
        threads = f"Each run used {args.threads} torch thread(s).\n\n" if args.threads else ""
        append_entry("Time to accuracy (benchmarks/time_to_accuracy.py)", f"{threads}{table}\n\n{references}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

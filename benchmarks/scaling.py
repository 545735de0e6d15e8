"""How papernets' training path scales on this machine: images/s against batch size (32 to 1024, the same number
of images each), and the time of one epoch against the share of Fashion-MNIST used (10% to 100%), with a
least-squares line through the epoch times to say whether they grow linearly.

Every point is a real `papernets.training.engine.train` run (BatchLoader, bf16 autocast, channels_last) with
no validation split, so an epoch's time is its training steps and the end-of-epoch checkpoint.

    .venv/bin/python benchmarks/scaling.py [--model resnet20] [--images-per-batch-point 8192]
"""

import argparse
import csv
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import append_entry, hardware, markdown_table  # noqa: E402

from papernets.config import load_config  # noqa: E402
from papernets.training.engine import train  # noqa: E402

BATCH_SIZES = (32, 64, 128, 256, 512, 1024)
DATASET_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)
FASHION_TRAIN_IMAGES = 60_000


def one_epoch(model: str, workdir: Path, *, batch_size: int, train_size: int = 0, iterations: int = 0) -> dict:
    """The first metrics.csv row of a run: one epoch of `train_size` images, or `iterations` steps."""
    overrides = {"model": model, "dataset": "fashion-mnist", "batch_size": batch_size, "lr": 0.05,
                 "momentum": 0.9, "nesterov": True, "amp": "auto", "channels_last": True, "val_size": 0,
                 "test_size": 256, "train_size": train_size, "output": str(workdir),
                 "run_name": f"b{batch_size}-n{train_size}-i{iterations}", "report": False, "quiet": True}
    overrides.update({"iterations": iterations} if iterations else {"epochs": 1})
    run_dir = train(load_config(None, overrides))
    with open(run_dir / "metrics.csv") as file:
        return {key: float(value) for key, value in next(csv.DictReader(file)).items() if value}


def linear_fit(sizes: list[float], seconds: list[float]) -> tuple[float, float, float]:
    """(intercept, slope, R^2) of seconds = intercept + slope * size by least squares."""
    count = len(sizes)
    mean_size, mean_seconds = sum(sizes) / count, sum(seconds) / count
    covariance = sum((size - mean_size) * (second - mean_seconds) for size, second in zip(sizes, seconds))
    variance = sum((size - mean_size) ** 2 for size in sizes)
    slope = covariance / variance
    intercept = mean_seconds - slope * mean_size
    residual = sum((second - intercept - slope * size) ** 2 for size, second in zip(sizes, seconds))
    total = sum((second - mean_seconds) ** 2 for second in seconds)
    return intercept, slope, 1 - residual / total if total > 0 else 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20", help="a registered model (default resnet20)")
    parser.add_argument("--images-per-batch-point", type=int, default=8192,
                        help="training images per batch-size point (default 8192)")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(DATASET_FRACTIONS), metavar="F",
                        help="shares of the 60,000 training images for the epoch-time points (default 0.1 ... 1.0)")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to docs/BENCHMARKS.md")
    args = parser.parse_args()
    print(hardware(), flush=True)

    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        batch_rows = []
        for batch_size in BATCH_SIZES:
            row = one_epoch(args.model, workdir, batch_size=batch_size,
                            iterations=max(4, args.images_per_batch_point // batch_size))
            batch_rows.append([batch_size, f"{row['images_per_s']:,.0f}"])
            print(f"batch {batch_size}: {row['images_per_s']:,.0f} images/s", flush=True)
        size_rows, sizes, seconds = [], [], []
        for fraction in args.fractions:
            train_size = int(fraction * FASHION_TRAIN_IMAGES)
            row = one_epoch(args.model, workdir, batch_size=256, train_size=train_size)
            sizes.append(train_size)
            seconds.append(row["seconds"])
            size_rows.append([f"{fraction:.0%}", f"{train_size:,}", f"{row['seconds']:.1f}",
                              f"{row['images_per_s']:,.0f}"])
            print(f"{fraction:.0%} of Fashion-MNIST ({train_size:,} images): {row['seconds']:.1f} s", flush=True)

    intercept, slope, r_squared = linear_fit(sizes, seconds)
    largest_deviation = max(abs(second - intercept - slope * size) / second for size, second in zip(sizes, seconds))
    # Linear: the line explains the times (R^2 >= 0.99) and no point's images/s strays more than 15% from the
    # median (a single short epoch can deviate by a few tenths of a second from the line without any trend).
    speeds = sorted(size / second for size, second in zip(sizes, seconds))
    median_speed = speeds[len(speeds) // 2]
    linear = r_squared >= 0.99 and all(abs(speed / median_speed - 1) <= 0.15 for speed in speeds)
    verdict = (f"Epoch time = {intercept:.2f} s + {1e3 * slope:.3f} ms per image (R^2 = {r_squared:.4f}, largest "
               f"deviation from the line {100 * largest_deviation:.1f}%, images/s {speeds[0]:,.0f} to "
               f"{speeds[-1]:,.0f}): {'linear in the data set size' if linear else 'NOT linear'}; the intercept is "
               "the fixed cost of an epoch (checkpoint, first-step kernel selection).")
    batch_table = markdown_table([f"batch size ({args.model}, bf16, channels_last)", "images/s"], batch_rows)
    size_table = markdown_table(["share of Fashion-MNIST", "images", "epoch s", "images/s"], size_rows)
    print(batch_table)
    print(size_table)
    print(verdict)
    if not args.no_append:
        append_entry("Scaling (benchmarks/scaling.py)", f"{batch_table}\n\n{size_table}\n\n{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

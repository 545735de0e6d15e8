"""Training speed of the faithful LeNet-5 (`lenet5`) against `lenet5_modern`, side by side in one run, and what
it means for `papernets reproduce lenet5-mnist` (20 passes x 60,000 images x 3 seeds; LeCun et al. 1998,
Sec. III.B) at its batch of 16 and at the paper's batch of 1.

- Each model trains as the `lenet5-mnist` reproduction trains it (papernets/training/reproduce.py: recipe
  `lenet-lecun1998`, fp32, one thread): lenet5 with SDLM steps (its curvature estimated first, as before each
  pass) and the MAP loss; lenet5_modern with plain SGD and cross-entropy. One step is the engine's
  `train_step`: the step's learning rate, forward, loss, zero_grad, backward, optimizer step.
- model step: that step on real MNIST batches from papernets' BatchLoader, built before timing; the two models
  alternate in rounds, so that load on the machine falls on both alike. Wall and CPU time (1 thread: CPU time
  is the process's own work, less sensitive to other processes) per step, median over the rounds.
- engine: `papernets.training.engine.train` itself for `--engine-steps` steps (loader, check_finite,
  batch_sums, progress, after_step included); images/s from its metrics.csv. Its work around train_step, per
  part in CPU time (two separate end-to-end timings differ by more than it under load): the loader's next
  batch, check_finite and batch_sums, and their share of a lenet5 step.
- The reproduction's estimated wall time: 20 x 60,000 x 3 images at the engine's images/s (curvature estimates
  and evaluation passes not included).
- `--profile`: torch.profiler's top operators of `--profile-steps` faithful steps at `--profile-batch`.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lenet_speed.py [--rounds 5] [--profile] [--no-append]
"""

import argparse
import csv
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import append_entry, hardware, load_average, markdown_table  # noqa: E402

from papernets.training.reproduce import get_experiment, experiment_config  # noqa: E402

MODELS = ("lenet5", "lenet5_modern")
BATCHES = (1, 16, 64)
REPRODUCTION = get_experiment("lenet5-mnist")
PASSES, TRAIN_IMAGES = 20, 60_000                 # Sec. III.B: 20 passes through the 60,000 training images
ROUND_SECONDS = 0.5                               # each round times one model for about this long


class Trainer:
    """One model with the reproduction's optimizer, loss and schedule, stepping through prepared batches."""

    def __init__(self, model_name: str, batch_size: int, data, batch_count: int):
        from papernets.data import BatchLoader
        from papernets.training.engine import build_model, curvature_images
        from papernets.training.optim import LearningRateSchedule, build_optimizer
        from papernets.training.sdlm import SDLM, estimate_curvature

        self.config = replace(experiment_config(REPRODUCTION, model_name, 0, quick=False, data_dir=None),
                              batch_size=batch_size)
        self.model, _, _ = build_model(self.config, data)
        self.optimizer = build_optimizer(self.model, self.config)
        if isinstance(self.optimizer, SDLM):
            self.optimizer.set_curvature(estimate_curvature(self.model, curvature_images(data, self.config, 0, "cpu")))
        loader = BatchLoader(data.train.images, data.train.labels, batch_size=batch_size, seed=0, augment=None,
                             mean=data.mean, std=data.std, shuffle=True, drop_last=True)
        self.schedule = LearningRateSchedule(self.config, len(loader), self.config.epochs * len(loader))
        self.batches = [batch for _, batch in zip(range(batch_count), loader.batches(0))]
        self.model.train()
        self.global_step = 0

    def step(self):
        """The engine's train_step (papernets/training/engine.py) without autocast (amp off)."""
        from papernets.training.losses import training_loss
        from papernets.training.optim import set_lr

        images, labels = self.batches[self.global_step % len(self.batches)]
        set_lr(self.optimizer, self.schedule.lr(self.global_step))
        loss = training_loss(self.model(images), labels, loss=self.config.loss, rubbish_j=self.config.map_rubbish_j)
        self.optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        self.optimizer.step()
        self.global_step += 1

    def time_steps(self, steps: int) -> tuple[float, float]:
        """(wall, CPU) seconds per step over `steps` steps."""
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def model_step_times(batch_size: int, data, rounds: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per step of each model, the models alternating round by round."""
    trainers = {name: Trainer(name, batch_size, data, batch_count=256) for name in MODELS}
    steps = {}
    for name, trainer in trainers.items():                        # warm-up, and steps per round
        trainer.time_steps(5)
        wall, _ = trainer.time_steps(20)
        steps[name] = max(5, round(ROUND_SECONDS / wall))
    times = {name: [] for name in MODELS}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            times[name].append(trainer.time_steps(steps[name]))
    return {name: (statistics.median(wall for wall, _ in pairs), statistics.median(cpu for _, cpu in pairs))
            for name, pairs in times.items()}


def engine_images_per_s(model_name: str, batch_size: int, steps: int, workdir: Path) -> float:
    """images/s of `engine.train` over `steps` steps of the reproduction's configuration (its first pass)."""
    from papernets.training.engine import train

    config = replace(experiment_config(REPRODUCTION, model_name, 0, quick=False, data_dir=None),
                     batch_size=batch_size, epochs=0, iterations=steps, test_size=batch_size, output=str(workdir),
                     run_name=f"{model_name}-b{batch_size}", report=False, checkpoint_every_steps=0)
    run_dir = train(config)
    with open(run_dir / "metrics.csv") as file:
        return float(next(csv.DictReader(file))["images_per_s"])


def engine_parts_us(batch_size: int, data, calls: int = 500) -> dict[str, float]:
    """Microseconds of CPU time per step of the engine's work around train_step: the loader's next batch and the
    loop's check_finite and batch_sums (engine.py), on a real batch and loss; best of 5 repeats."""
    from papernets.data import BatchLoader
    from papernets.training.engine import LoopState, batch_sums, check_finite
    from papernets.training.losses import training_loss

    loader = BatchLoader(data.train.images, data.train.labels, batch_size=batch_size, seed=0, augment=None,
                         mean=data.mean, std=data.std, shuffle=True, drop_last=True)
    batches = loader.batches(0)
    images, labels = next(batches)
    loss = training_loss(torch.randn(batch_size, 10), labels, loss="map", rubbish_j=1.0)
    state, sums = LoopState(), torch.zeros(3, dtype=torch.float64)
    calls = min(calls, len(loader) // 6)
    parts = {"loader": lambda: next(batches), "check_finite": lambda: check_finite(loss.total, 0, state, Path()),
             "batch_sums": lambda: sums.add_(batch_sums(loss, labels))}
    best = {}
    for name, call in parts.items():
        for _ in range(5):
            started = time.process_time()
            for _ in range(calls):
                call()
            best[name] = min(best.get(name, float("inf")), (time.process_time() - started) / calls * 1e6)
    return best


def profile(batch_size: int, steps: int, data, rows: int = 20) -> str:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    trainer = Trainer("lenet5", batch_size, data, batch_count=steps)
    trainer.time_steps(10)
    with torch_profile(activities=[ProfilerActivity.CPU]) as profiler:
        trainer.time_steps(steps)
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 3 * 3600 else f"{seconds / 3600:.1f} h"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds per batch size")
    parser.add_argument("--engine-steps", type=int, default=0,
                        help="steps of engine.train per batch size (default: about 10 s of lenet5's)")
    parser.add_argument("--profile", action="store_true", help="print the top operators of the faithful step")
    parser.add_argument("--profile-batch", type=int, default=16)
    parser.add_argument("--profile-steps", type=int, default=200)
    parser.add_argument("--no-append", action="store_true", help="do not append to docs/BENCHMARKS.md")
    args = parser.parse_args()

    from papernets.training.engine import prepare_data

    torch.set_num_threads(1)
    print(f"{hardware()}; {load_average()} at the start")
    data = prepare_data(experiment_config(REPRODUCTION, "lenet5", 0, quick=False, data_dir=None))
    seeds = REPRODUCTION.seeds
    rows, estimates, engine_rows = [], [], []
    with tempfile.TemporaryDirectory() as workdir:
        for batch_size in BATCHES:
            step_times = model_step_times(batch_size, data, args.rounds)
            engine = {}
            for name in MODELS:
                steps = args.engine_steps or max(50, round(10 / step_times["lenet5"][0]))
                engine[name] = engine_images_per_s(name, batch_size, steps, Path(workdir))
            for name in MODELS:
                wall, cpu = step_times[name]
                rows.append([batch_size, name, f"{batch_size / wall:,.0f}", f"{batch_size / cpu:,.0f}",
                             f"{wall * 1e3:.2f}", f"{engine[name]:,.0f}"])
            faithful, modern = step_times["lenet5"], step_times["lenet5_modern"]
            parts = engine_parts_us(batch_size, data)
            engine_rows.append([batch_size, *(f"{value:.1f}" for value in parts.values()),
                                f"{sum(parts.values()) / (faithful[1] * 1e6 + sum(parts.values())):.1%}"])
            rows.append([batch_size, "ratio lenet5 / lenet5_modern", f"{modern[0] / faithful[0]:.2f}",
                         f"{modern[1] / faithful[1]:.2f}", "", f"{engine['lenet5'] / engine['lenet5_modern']:.2f}"])
            total_images = PASSES * TRAIN_IMAGES * seeds
            estimates.append([batch_size, f"{engine['lenet5']:,.0f}", duration(total_images / engine["lenet5"]),
                              duration(PASSES * TRAIN_IMAGES / engine["lenet5"])])
            print(f"batch {batch_size} done; {load_average()}", flush=True)
    table = markdown_table(["batch", "model", "model step images/s (wall)", "images/s (CPU time)",
                            "ms per step (wall)", "engine images/s"], rows)
    estimate = markdown_table(["batch", "lenet5 engine images/s",
                               f"reproduction ({PASSES} passes x {TRAIN_IMAGES:,} x {seeds} seeds)",
                               "one seed"], estimates)
    engine_table = markdown_table(["batch", "loader next batch (us)", "check_finite (us)", "batch_sums (us)",
                                   "share of a lenet5 step (CPU)"], engine_rows)
    body = (f"One thread, fp32; lenet5 with SDLM + MAP loss, lenet5_modern with SGD + cross-entropy (the "
            f"`lenet-lecun1998` recipe as `papernets reproduce lenet5-mnist` runs it); real MNIST batches. "
            f"Model step: median of {args.rounds} alternating rounds; engine: engine.train's metrics.csv. "
            f"Load average at the end: {load_average()}.\n\n{table}\n\nEstimated training time of the "
            f"reproduction at lenet5's engine images/s (the reproduction uses batch 16; the paper batch 1):\n\n"
            f"{estimate}\n\nThe engine's work around each step, CPU time (the difference between the engine's "
            f"images/s and the model step's, per part):\n\n{engine_table}\n")
    print(body)
    if args.profile:
        print(f"Top operators of {args.profile_steps} lenet5 steps at batch {args.profile_batch} (self CPU time):")
        print(profile(args.profile_batch, args.profile_steps, data))
    if not args.no_append:
        append_entry("LeNet-5 training speed (benchmarks/lenet_speed.py)", body)


if __name__ == "__main__":
    main()

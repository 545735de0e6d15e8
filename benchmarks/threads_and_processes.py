"""Threads, processes and machine load for ResNet-20 training on CPU (issue 15), quiet and under a load that
the script starts itself (`--load N` busy-loop processes, default 2), each configuration a fresh subprocess
(so OMP_WAIT_POLICY, read when OpenMP starts, takes effect):

- model alone (bf16 autocast, channels_last, batch 256 in memory): 1 process x 1 thread; 1 process x 2
  threads with OMP_WAIT_POLICY unset, active, passive; 2 processes x 1 thread (DDP over gloo on this machine,
  each half of the batch), OMP_WAIT_POLICY unset and passive;
- the engine (`papernets.training.engine.train`, Fashion-MNIST, batch 256, 2 threads) with the data loader's
  per-batch switch to one thread (`BatchLoader._cpu_single_threaded`) on and off, and that loader alone
  (building augmented batches, no model) in a 2-thread process, switch on and off;
- the CLI: `papernets train ... --set threads=2` against
  `torchrun --standalone --nproc-per-node 2 -m papernets train ... --set threads=1`.

Each configuration runs `--rounds` times, the rounds interleaved, and keeps its best images/s (the least
disturbed by whatever else the machine runs). Ratios: the loader's rows against the loader with its switch,
every other row against 1 process x 2 threads.

    .venv/bin/python benchmarks/threads_and_processes.py [--steps 30] [--rounds 2] [--load 2] [--no-append]
"""

import argparse
import contextlib
import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, append_entry, hardware, load_average, markdown_table  # noqa: E402
from papernets.distributed import free_port  # noqa: E402

BATCH = 256
TIMEOUT = 900  # seconds for one configuration, compiles none


def model_alone_worker(steps: int) -> None:
    """One rank of the model-alone run (RANK/WORLD_SIZE in the environment); rank 0 prints images/s."""
    import torch.distributed as dist
    from torch import nn

    from train_throughput import default_step

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:
        dist.init_process_group("gloo")
    step = default_step(batch=BATCH // world_size, wrap=nn.parallel.DistributedDataParallel if world_size > 1 else None)

    for _ in range(3):
        step()
    if world_size > 1:
        dist.barrier()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if world_size > 1:
        dist.barrier()
    seconds = time.perf_counter() - started
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"images_per_s": steps * BATCH / seconds}))
    if world_size > 1:
        dist.destroy_process_group()


def engine_config(steps: int, output: str, threads: int) -> list[str]:
    """`papernets train` arguments: ResNet-20 on Fashion-MNIST, `steps` steps, no validation split."""
    return ["--model", "resnet20", "--dataset", "fashion-mnist", "-b", str(BATCH), "--output", output, "--quiet",
            "--no-report", "--set", f"iterations={steps}", "val_size=0", f"test_size={BATCH}", f"threads={threads}",
            f"run_name=threads-{time.time_ns()}"]


def without_loader_switch() -> None:
    """Turns the loader's per-batch switch to one thread off in this process."""
    from papernets.data.loader import BatchLoader

    BatchLoader._cpu_single_threaded = lambda self: contextlib.nullcontext()


def engine_worker(steps: int, loader_single_threaded: bool) -> None:
    """The engine with 2 threads, the loader's per-batch one-thread switch on or off; prints images/s."""
    from papernets.cli import main as papernets_main

    if not loader_single_threaded:
        without_loader_switch()
    with tempfile.TemporaryDirectory() as output:
        papernets_main(["train", *engine_config(steps, output, threads=2)])
        print(json.dumps({"images_per_s": metrics_images_per_s(output)}))


def loader_worker(batches: int, loader_single_threaded: bool) -> None:
    """The engine's training BatchLoader alone (Fashion-MNIST, crop and flip, channels_last) building `batches`
    batches with 2 threads; prints images/s."""
    import torch

    from papernets.config import load_config
    from papernets.data import BatchLoader
    from papernets.training.engine import augmentation_for, prepare_data

    if not loader_single_threaded:
        without_loader_switch()
    torch.set_num_threads(2)
    config = load_config(None, {"model": "resnet20", "dataset": "fashion-mnist", "batch_size": BATCH,
                                "iterations": batches, "val_size": 0})
    data = prepare_data(config)
    loader = BatchLoader(data.train.images, data.train.labels, batch_size=BATCH, seed=0,
                         augment=augmentation_for(config, data.input_size), mean=data.mean, std=data.std,
                         device=torch.device("cpu"), channels_last=True, shuffle=True, drop_last=True)
    epochs = itertools.count()
    stream = itertools.chain.from_iterable(loader.batches(epoch) for epoch in epochs)  # as many as asked for
    next(stream)
    started = time.perf_counter()
    for _ in range(batches):
        next(stream)
    print(json.dumps({"images_per_s": batches * BATCH / (time.perf_counter() - started)}))


def metrics_images_per_s(output: str) -> float:
    """images/s of the first (only) epoch of the single run under `output`."""
    (metrics,) = Path(output).glob("*/metrics.csv")
    with open(metrics) as file:
        return float(next(csv.DictReader(file))["images_per_s"])


def run_json(commands: list[list[str]], environment: dict[str, str]) -> float:
    """Start `commands` together (the ranks of one run), wait for all; images/s from the line rank 0 prints."""
    processes = [subprocess.Popen(command, cwd=ROOT, env={**environment, "RANK": str(rank)}, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for rank, command in enumerate(commands)]
    outputs = [process.communicate(timeout=TIMEOUT) for process in processes]
    for process, (_, errors) in zip(processes, outputs):
        if process.returncode:
            raise RuntimeError(f"a benchmark subprocess failed:\n{errors[-3000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])["images_per_s"]


def model_alone(steps: int, *, threads: int, processes: int, wait_policy: str | None) -> float:
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "WORLD_SIZE": str(processes),
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    environment.pop("OMP_WAIT_POLICY", None)
    if wait_policy:
        environment["OMP_WAIT_POLICY"] = wait_policy
    command = [sys.executable, __file__, "--worker", "model", "--steps", str(steps)]
    return run_json([command] * processes, environment)


def engine(steps: int, *, loader_single_threaded: bool, loader_alone: bool = False) -> float:
    worker = ("loader" if loader_alone else "engine") + ("" if loader_single_threaded else "-no-switch")
    command = [sys.executable, __file__, "--worker", worker, "--steps", str(steps)]
    return run_json([command], {**os.environ, "OMP_NUM_THREADS": "2"})


def cli(steps: int, *, processes: int) -> float:
    """`papernets train` with 2 threads, or under torchrun as `processes` ranks of 1 thread; images/s from
    metrics.csv."""
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as output:
        if processes == 1:
            command = [str(bin_dir / "papernets"), "train", *engine_config(steps, output, threads=2)]
        else:
            command = [str(bin_dir / "torchrun"), "--standalone", f"--nproc-per-node={processes}", "-m", "papernets",
                       "train", *engine_config(steps, output, threads=1)]
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=TIMEOUT)
        return metrics_images_per_s(output)


CONFIGURATIONS = [  # (row name, function of steps -> images/s)
    ("model alone, 1 process x 1 thread", lambda steps: model_alone(steps, threads=1, processes=1, wait_policy=None)),
    ("model alone, 1 process x 2 threads", lambda steps: model_alone(steps, threads=2, processes=1, wait_policy=None)),
    ("model alone, 1 process x 2 threads, OMP_WAIT_POLICY=active",
     lambda steps: model_alone(steps, threads=2, processes=1, wait_policy="active")),
    ("model alone, 1 process x 2 threads, OMP_WAIT_POLICY=passive",
     lambda steps: model_alone(steps, threads=2, processes=1, wait_policy="passive")),
    ("model alone, 2 processes x 1 thread (DDP, gloo, 128 each)",
     lambda steps: model_alone(steps, threads=1, processes=2, wait_policy=None)),
    ("model alone, 2 processes x 1 thread (DDP), OMP_WAIT_POLICY=passive",
     lambda steps: model_alone(steps, threads=1, processes=2, wait_policy="passive")),
    ("engine, 2 threads, loader switches to 1 thread per batch (default)",
     lambda steps: engine(steps, loader_single_threaded=True)),
    ("engine, 2 threads, loader keeps 2 threads", lambda steps: engine(steps, loader_single_threaded=False)),
    ("loader alone, 2 threads, switches to 1 thread per batch (default)",
     lambda steps: engine(10 * steps, loader_single_threaded=True, loader_alone=True)),
    ("loader alone, 2 threads, keeps 2 threads",
     lambda steps: engine(10 * steps, loader_single_threaded=False, loader_alone=True)),
    ("CLI: papernets train, threads=2", lambda steps: cli(steps, processes=1)),
    ("CLI: torchrun --nproc-per-node 2, threads=1", lambda steps: cli(steps, processes=2)),
]


@contextlib.contextmanager
def busy_loops(count: int):
    """`count` processes spinning on the CPU for as long as the block runs."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(1 if count else 0)
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per configuration (default 30)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration, best kept (default 2)")
    parser.add_argument("--load", type=int, default=2, help="busy-loop processes of the loaded runs (default 2)")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to docs/BENCHMARKS.md")
    parser.add_argument("--worker", choices=["model", "engine", "engine-no-switch", "loader", "loader-no-switch"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "model":
        model_alone_worker(args.steps)
        return 0
    if args.worker:
        worker = loader_worker if args.worker.startswith("loader") else engine_worker
        worker(args.steps, loader_single_threaded=not args.worker.endswith("-no-switch"))
        return 0

    print(hardware(), flush=True)
    results = {}
    loads = {}
    for load in (0, args.load):
        with busy_loops(load):
            for _ in range(args.rounds):
                for name, function in CONFIGURATIONS:
                    speed = function(args.steps)
                    results[name, load] = max(speed, results.get((name, load), 0.0))
                    print(f"{name}, {load} busy loops: {speed:,.0f} images/s", flush=True)
            loads[load] = load_average()
    names = [name for name, _ in CONFIGURATIONS]
    model_baseline = "model alone, 1 process x 2 threads"
    loader_baseline = next(name for name in names if name.startswith("loader"))  # the switch on
    rows = []
    for name in names:
        baseline = loader_baseline if name.startswith("loader") else model_baseline
        rows.append([name] + [cell for load in (0, args.load) for cell in
                              (f"{results[name, load]:,.0f}", f"{results[name, load] / results[baseline, load]:.2f}x")])
    table = markdown_table(["ResNet-20, batch 256, bf16, channels_last", "images/s, quiet", "ratio",
                            f"images/s, {args.load} busy loops", "ratio"], rows)
    body = (f"{table}\n\nBest of {args.rounds} interleaved runs of {args.steps} timed steps per configuration; "
            f"{loads[0]} after the quiet runs, {loads[args.load]} after the loaded ones (busy loops included).")
    print(body)
    if not args.no_append:
        append_entry("Threads, processes and load (benchmarks/threads_and_processes.py)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

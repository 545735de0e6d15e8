"""Kill anywhere: SIGKILL a short real training at random moments, resume it each time, and check that every
run ends with exactly the weights and metrics of a run that was never interrupted.

    .venv/bin/python reliability/kill_anywhere.py --kills 24 --seed 0

Each run is `papernets train` (lenet5_modern on a Fashion-MNIST subset, 3 epochs, a checkpoint after every
step so that kills also land in checkpoint writes) in a process of its own, on the CPU, fp32, one thread.
Processes are forked from a server that has imported torch already, so a restart costs milliseconds instead of
seconds; each one is still a separate OS process, killed with SIGKILL at a random moment of its life. The
process records what it is doing (starting, a training step, evaluation, a checkpoint write, the final files)
in shared memory, so the report says where each kill landed.

After a kill the run continues with `papernets train --resume RUN_DIR` (or starts again when it died before
its first checkpoint existed). A trial ends when a run finishes; its final weights (model.safetensors, best.pt,
last.pt), metrics.csv and summary.json are then compared bit for bit with the reference run, the timing
columns (`images_per_s`, `seconds`, `wall_seconds`) excepted. Exit status 0 only if every trial matched.
"""

import argparse
import csv
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PHASES = ("starting", "training step", "evaluation", "checkpoint write", "final files")
AIMED_PHASES = PHASES[1:]
TIMING_FIELDS = ("images_per_s", "seconds", "wall_seconds")
PRELOAD = ["torch", "papernets.cli", "papernets.training.engine", "papernets.data", "papernets.models",
           "papernets.models.summary"]


@dataclass(frozen=True)
class Workload:
    """The `papernets train` flags of one small, deterministic run: LeNet-5's paper recipe (a fixed file, so
    that changes to the fast recipes do not change this workload) with a larger batch and rate, and momentum
    so that the optimizer has state to lose."""

    epochs: int = 3
    train_size: int = 2000
    val_size: int = 500
    test_size: int = 500
    batch_size: int = 64
    checkpoint_every_steps: int = 1

    def command(self, output: Path, run_name: str, seed: int = 0) -> list[str]:
        return ["train", "--recipe", "lenet-lecun1998", "--model", "lenet5_modern", "--dataset", "fashion-mnist",
                "--epochs", str(self.epochs), "-b", str(self.batch_size), "--lr", "0.05", "--seed", str(seed),
                "--output", str(output), "--quiet", "--no-report",
                "--set", "schedule=constant", "momentum=0.9", "augmentation.pad=2", "augmentation.crop=true",
                f"train_size={self.train_size}", f"val_size={self.val_size}", f"test_size={self.test_size}",
                "threads=1", "amp=off", f"checkpoint_every_steps={self.checkpoint_every_steps}", f"run_name={run_name}"]


def resume_command(run_dir: Path) -> list[str]:
    return ["train", "--resume", str(run_dir), "--quiet", "--no-report"]


# ---------------------------------------------------------------------------------------------------------
# The child process: `papernets.cli.main(argv)`, with its phase written to shared memory.

def _record_phases(phase, steps) -> None:
    """Wrap the engine's evaluation, checkpoint writes, final files and training batches so that `phase.value`
    always says which of PHASES the process is in, and `steps.value` counts the training steps this process
    began. The wrapped functions run unchanged."""
    from papernets.data import BatchLoader
    from papernets.runs import checkpoint
    from papernets.training import engine

    def entering(index: int, function, restore: bool = True):
        def wrapper(*args, **kwargs):
            previous, phase.value = phase.value, index
            try:
                return function(*args, **kwargs)
            finally:
                if restore:
                    phase.value = previous
        return wrapper

    engine.evaluate = entering(PHASES.index("evaluation"), engine.evaluate)
    checkpoint.save_checkpoint = entering(PHASES.index("checkpoint write"), checkpoint.save_checkpoint)
    # From model.safetensors on, everything is final files: summary.json, then the exit.
    engine.save_safetensors = entering(PHASES.index("final files"), engine.save_safetensors, restore=False)
    training_batches = BatchLoader.batches

    def batches(self, *args, **kwargs):
        for batch in training_batches(self, *args, **kwargs):
            phase.value = PHASES.index("training step")
            steps.value += 1
            yield batch

    BatchLoader.batches = batches


def run_cli(argv: list[str], log_path: str, cache_dir: str, phase, steps) -> None:
    """Child process: stdout and stderr to `log_path`, then `papernets <argv>`; its status is the exit code."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ["XDG_CACHE_HOME"] = cache_dir
    _record_phases(phase, steps)
    from papernets.cli import main

    sys.exit(main(argv))


class ProcessServer:
    """Starts `papernets` commands as processes forked from a server that has imported torch."""

    def __init__(self, workdir: Path):
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)
        self.workdir = Path(workdir)
        self.cache_dir = str(self.workdir / "cache")
        self.count = 0

    def start(self, argv: list[str]) -> "Child":
        self.count += 1
        phase, steps = self.context.Value("i", 0, lock=False), self.context.Value("i", 0, lock=False)
        log_path = self.workdir / f"process-{self.count}.log"
        process = self.context.Process(target=run_cli, args=(argv, str(log_path), self.cache_dir, phase, steps))
        process.start()
        return Child(process, phase, steps, log_path, time.perf_counter())

    def run(self, argv: list[str], timeout: float = 900) -> tuple[int, float, str]:
        """Run to the end: (exit code, seconds, log text)."""
        child = self.start(argv)
        child.process.join(timeout)
        if child.process.is_alive():
            child.process.kill()
            child.process.join()
            raise RuntimeError(f"`papernets {' '.join(argv)}` did not finish in {timeout} s; see {child.log_path}")
        return child.process.exitcode, time.perf_counter() - child.started, child.log_path.read_text()


@dataclass(frozen=True)
class KillPlan:
    """When to kill: `delay` seconds after the start, once `after_steps` training steps have begun, at a moment
    the process is in `phase` (any phase when None)."""

    delay: float = 0.0
    phase: str | None = None
    after_steps: int = 0


@dataclass
class Child:
    process: multiprocessing.Process
    phase: object  # shared int: index into PHASES
    steps: object  # shared int: training steps begun
    log_path: Path
    started: float

    def doing(self) -> str:
        return PHASES[self.phase.value]

    def wait_for(self, plan: KillPlan, poll_seconds: float = 0.0001) -> bool:
        """Wait until the plan's moment (True) or until the process ends before it (False)."""
        self.process.join(plan.delay)
        while self.process.is_alive():
            if self.steps.value >= plan.after_steps and (plan.phase is None or self.doing() == plan.phase):
                return True
            time.sleep(poll_seconds)
        return False


# ---------------------------------------------------------------------------------------------------------
# Comparing a finished run with the reference.

def read_metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as file:
        return [{key: value for key, value in row.items() if key not in TIMING_FIELDS} for row in csv.DictReader(file)]


def read_summary(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {key: value for key, value in summary.items() if key not in TIMING_FIELDS}


def differences(reference: Path, run_dir: Path) -> list[str]:
    """What differs between two finished run folders, bit for bit, timing excepted (empty: identical)."""
    import torch
    from safetensors.torch import load_file

    from papernets.errors import PapernetsError
    from papernets.runs.checkpoint import load_checkpoint

    def same_tensors(first: dict, second: dict) -> bool:
        return first.keys() == second.keys() and all(
            first[name].dtype == second[name].dtype and torch.equal(first[name], second[name]) for name in first)

    found = []
    try:
        if not same_tensors(load_file(reference / "model.safetensors"), load_file(run_dir / "model.safetensors")):
            found.append("model.safetensors")
        for name in ("best.pt", "last.pt"):
            states = [load_checkpoint(folder / "checkpoints" / name)["model_state"] for folder in (reference, run_dir)]
            if not same_tensors(*states):
                found.append(f"checkpoints/{name}")
        if read_metrics(reference) != read_metrics(run_dir):
            found.append("metrics.csv")
        if read_summary(reference) != read_summary(run_dir):
            found.append("summary.json")
    except (OSError, ValueError, KeyError, PapernetsError) as error:
        found.append(f"unreadable run folder ({type(error).__name__}: {error})")
    return found


# ---------------------------------------------------------------------------------------------------------
# Trials: kill, resume, ..., finish, compare.

@dataclass
class Kill:
    delay: float          # seconds after the process started
    phase: str            # what it was doing
    resumed: bool         # whether the killed process was itself a resumed run
    checkpoint_left: str  # what was on disk afterwards: the step of the newest checkpoint, or "none"
    aimed: bool           # aimed at a phase rather than at a random moment


@dataclass
class Trial:
    run_dir: Path
    kills: list[Kill] = field(default_factory=list)
    restarts_from_scratch: int = 0
    exit_code: int | None = None
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.exit_code == 0 and not self.differences


def checkpoint_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("last*.pt"))


def newest_step(run_dir: Path) -> str:
    from papernets.errors import CheckpointError
    from papernets.runs.checkpoint import load_newest_valid

    if not checkpoint_files(run_dir):
        return "none"
    try:
        return f"step {load_newest_valid(run_dir / 'checkpoints' / 'last.pt', warn=lambda line: None)['global_step']}"
    except CheckpointError:
        return "no valid checkpoint"


def run_trial(server: ProcessServer, workload: Workload, output: Path, name: str, reference: Path,
              plans: list[KillPlan]) -> Trial:
    """Start the run; kill it as each plan says in turn (resuming it each time), then let it finish."""
    run_dir = output / name
    trial = Trial(run_dir)
    pending = list(plans)
    resumed = False
    while True:
        argv = resume_command(run_dir) if resumed else workload.command(output, name)
        child = server.start(argv)
        process = child.process
        plan = pending.pop(0) if pending else None
        if plan is not None and child.wait_for(plan):
            doing = child.doing()
            os.kill(process.pid, signal.SIGKILL)
            process.join()
            if process.exitcode == -signal.SIGKILL:
                trial.kills.append(Kill(round(time.perf_counter() - child.started, 3), doing, resumed,
                                        newest_step(run_dir), aimed=plan.phase is not None))
                # Died before its first checkpoint: nothing to resume, so the run starts again (never with --resume,
                # which refuses a run folder without a valid checkpoint), in a fresh folder, since `train` never
                # reuses one.
                resumed = bool(checkpoint_files(run_dir))
                if not resumed:
                    trial.restarts_from_scratch += 1
                    shutil.rmtree(run_dir, ignore_errors=True)
                continue
        process.join()
        trial.exit_code = process.exitcode
        if process.exitcode != 0:
            trial.differences = [f"exit code {process.exitcode}: {child.log_path.read_text().strip()[-500:]}"]
        else:
            trial.differences = differences(reference, run_dir)
        return trial


def leftover_temporary_files(output: Path) -> int:
    return sum(1 for _ in output.glob("*/checkpoints/.*.tmp"))


def kill_anywhere(workdir: Path, kills: int, targeted: int = 0, seed: int = 0, workload: Workload = Workload(),
                  kills_per_trial: int = 3, report=print) -> list[Trial]:
    """Trials until `kills` kills at random moments and `targeted` kills aimed at a training step, an evaluation,
    a checkpoint write and the final files in turn (after a random number of steps) have landed."""
    workdir = Path(workdir)
    output = workdir / "runs"
    output.mkdir(parents=True, exist_ok=True)
    server = ProcessServer(workdir)
    code, duration, log = server.run(workload.command(output, "reference"))
    if code != 0:
        raise RuntimeError(f"the reference run failed (exit {code}): {log.strip()[-1000:]}")
    report(f"reference run: {duration:.1f} s; random kill delays drawn uniformly from 0 to {duration:.1f} s")
    steps_per_epoch = workload.train_size // workload.batch_size
    rng = random.Random(seed)
    trials = []

    def landed(aimed: bool) -> int:
        return sum(kill.aimed == aimed for trial in trials for kill in trial.kills)

    while (landed(False) < kills or landed(True) < targeted) and all(trial.identical for trial in trials):
        if landed(False) < kills:
            count = min(kills_per_trial, kills - landed(False))
            plans = [KillPlan(delay=rng.uniform(0, duration)) for _ in range(count)]
        else:
            phases = rng.sample(AIMED_PHASES, len(AIMED_PHASES))
            plans = [KillPlan(phase=phase, after_steps=0 if phase == "final files" else rng.randint(1, steps_per_epoch))
                     for phase in phases[:targeted - landed(True)]]
        trial = run_trial(server, workload, output, f"trial-{len(trials) + 1}", output / "reference", plans)
        trials.append(trial)
        where = ", ".join(f"{kill.phase}{' (aimed)' if kill.aimed else ''} at {kill.delay:.2f} s, "
                          f"{kill.checkpoint_left} left" for kill in trial.kills)
        verdict = "identical" if trial.identical else "DIFFERENT: " + "; ".join(trial.differences)
        report(f"trial {len(trials)}: {len(trial.kills)} kills [{where or 'none landed'}] -> {verdict}")
    return trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=24, help="SIGKILLs at random moments (default 24)")
    parser.add_argument("--targeted", type=int, default=8, help="further SIGKILLs aimed at a training step, an "
                        "evaluation, a checkpoint write and the final files in turn (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--kills-per-trial", type=int, default=3, help="kills before a run may finish")
    parser.add_argument("--workdir", type=Path, help="where the runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kill-anywhere-") as temporary:
        workdir = args.workdir or Path(temporary)
        trials = kill_anywhere(workdir, args.kills, args.targeted, seed=args.seed,
                               kills_per_trial=args.kills_per_trial)
        all_kills = [kill for trial in trials for kill in trial.kills]
        by_phase = {phase: sum(kill.phase == phase for kill in all_kills) for phase in PHASES}
        identical = sum(trial.identical for trial in trials)
        print("kills by phase: " + ", ".join(f"{phase} {count}" for phase, count in by_phase.items()))
        print(f"kills of resumed runs: {sum(kill.resumed for kill in all_kills)}; restarts from scratch (killed "
              f"before the first checkpoint): {sum(trial.restarts_from_scratch for trial in trials)}; temporary "
              f"checkpoint files left by kills: {leftover_temporary_files(workdir / 'runs')}")
        print(f"{len(all_kills)} kills in {len(trials)} trials, {time.perf_counter() - started:.0f} s")
        print(f"runs finished and bitwise identical to the uninterrupted run: {identical}/{len(trials)}")
        survived = sum(len(trial.kills) for trial in trials if trial.identical)
        print(f"kills survived: {survived}/{len(all_kills)}")
    return 0 if identical == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())

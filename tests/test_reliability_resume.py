"""Nothing is lost: SIGKILL anywhere, death right after any checkpoint write, corrupt checkpoints, SIGTERM mid
epoch and a NaN loss all end in a run bitwise equal to an uninterrupted one, or in a clear error; the same seed
gives the same metrics. The heavy version of the kill test is reliability/kill_anywhere.py (docs/RELIABILITY.md).
"""

import shutil
import sys
from pathlib import Path

import pytest
import torch

from papernets.cli import main
from papernets.config import TrainConfig, validate
from papernets.errors import CheckpointError
from papernets.runs import checkpoint as checkpoints
from papernets.runs.checkpoint import load_checkpoint, load_newest_valid, previous_path
from papernets.training.engine import train
from generated_data import generated_dataset
from training_seams import nan_loss_at_step, sigterm_during_step

# reliability/ holds scripts, not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from kill_anywhere import (KillPlan, ProcessServer, Workload, differences, read_metrics,  # noqa: E402
                           resume_command, run_trial)

pytestmark = pytest.mark.slow  # child processes killed and resumed, many training runs

# 2 epochs of 16 steps on Fashion-MNIST images, a checkpoint every 4 steps.
WORKLOAD = Workload(epochs=2, train_size=1024, val_size=256, test_size=256, checkpoint_every_steps=4)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> ProcessServer:
    return ProcessServer(tmp_path_factory.mktemp("processes"))


@pytest.fixture(scope="module")
def reference(server, tmp_path_factory, fashion_mnist_dir) -> Path:
    """The uninterrupted run every interrupted one must equal."""
    output = tmp_path_factory.mktemp("reference")
    code, _, log = server.run(WORKLOAD.command(output, "reference"))
    assert code == 0, log
    return output / "reference"


def test_sigkill_in_a_checkpoint_write_an_evaluation_and_a_step_loses_nothing(server, reference, tmp_path):
    plans = [KillPlan(phase="checkpoint write", after_steps=6), KillPlan(phase="evaluation"),
             KillPlan(phase="training step", after_steps=3)]
    trial = run_trial(server, WORKLOAD, tmp_path, "killed", reference, plans)
    assert [kill.phase for kill in trial.kills] == ["checkpoint write", "evaluation", "training step"]
    assert trial.restarts_from_scratch == 0 and trial.exit_code == 0
    assert trial.differences == []


def test_sigterm_mid_epoch_saves_exits_143_and_the_resume_continues_from_that_save(server, reference, tmp_path):
    child = server.start(WORKLOAD.command(tmp_path, "run"))
    assert child.wait_for(KillPlan(phase="training step", after_steps=7))
    child.process.terminate()  # SIGTERM
    child.process.join()
    log = child.log_path.read_text()
    assert child.process.exitcode == 143, log
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert 7 <= saved["global_step"] < 16 and saved["step"] == saved["global_step"]  # inside epoch 1
    assert f"Interrupted by SIGTERM at step {saved['global_step']}" in log and "--resume" in log
    resumed = server.start(resume_command(tmp_path / "run") + ["--no-report"])
    resumed.process.join()
    assert resumed.process.exitcode == 0, resumed.log_path.read_text()
    assert differences(reference, tmp_path / "run") == []


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, fashion_mnist_dir) -> Path:
    """The workload stopped after step 10: last.pt at step 10, last.prev.pt at step 8."""
    output = tmp_path_factory.mktemp("stopped")
    with pytest.MonkeyPatch.context() as patch, sigterm_during_step(10):
        patch.setenv("XDG_CACHE_HOME", str(output / "cache"))
        assert main(WORKLOAD.command(output, "stopped")) == 143
    return output / "stopped"


def flip_one_bit(path: Path, position: float):
    data = bytearray(path.read_bytes())
    data[int(len(data) * position)] ^= 0x10
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "zero-length": lambda path: path.write_bytes(b""),
    "bit-flipped": lambda path: flip_one_bit(path, 0.6),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_resume_reports_a_corrupt_checkpoint_and_resumes_from_the_previous_one(
        corruption, stopped_run, reference, tmp_path, capsys):
    run_dir = shutil.copytree(stopped_run, tmp_path / "run")
    last = run_dir / "checkpoints" / "last.pt"
    CORRUPTIONS[corruption](last)
    assert main(resume_command(run_dir)) == 0
    error = capsys.readouterr().err
    assert f"warning: Checkpoint {last}" in error, error
    assert differences(reference, run_dir) == []


def test_with_no_valid_checkpoint_resume_stops_with_a_clear_error_and_touches_nothing(stopped_run, tmp_path, capsys):
    run_dir = shutil.copytree(stopped_run, tmp_path / "run")
    last = run_dir / "checkpoints" / "last.pt"
    CORRUPTIONS["bit-flipped"](last)
    CORRUPTIONS["truncated"](previous_path(last))
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    assert main(resume_command(run_dir)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["warning", "warning", "error"]
    assert "error: No valid checkpoint to resume from" in lines[-1] and "without --resume" in lines[-1]
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize("position", [0.0, 0.001, 0.25, 0.5, 0.75, 0.999])
def test_a_flipped_bit_anywhere_is_refused_or_changes_nothing_that_is_loaded(stopped_run, tmp_path, position):
    path = shutil.copy(stopped_run / "checkpoints" / "last.pt", tmp_path / "last.pt")
    original = load_checkpoint(path)
    flip_one_bit(path, position)
    try:
        loaded = load_checkpoint(path)
    except CheckpointError:
        return
    assert loaded["checksum"] == original["checksum"]  # a flip in zip padding or metadata: same payload


def test_a_nan_loss_names_epoch_and_step_keeps_the_last_good_checkpoint_and_resumes(reference, tmp_path, capsys):
    with nan_loss_at_step(22):
        assert main(WORKLOAD.command(tmp_path, "run")) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "epoch 2, step 6 (global step 22)" in error, error
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert last["global_step"] == 20
    assert all(torch.isfinite(tensor).all() for tensor in last["model_state"].values() if tensor.is_floating_point())
    assert main(resume_command(tmp_path / "run")) == 0
    assert differences(reference, tmp_path / "run") == []


# In-process runs on generated data, for the cases that need many runs.


def generated_config(output: Path, **fields) -> TrainConfig:
    """3 epochs of 6 steps with a checkpoint every 2 steps."""
    values = dict(model="lenet5_modern", dataset="generated", epochs=3, batch_size=32, lr=0.02, val_size=64,
                  threads=1, amp="off", quiet=True, report=False, output=str(output), checkpoint_every_steps=2,
                  augmentation={"pad": 1, "crop": True, "flip": False, "cutout": 0})
    return validate(TrainConfig(**{**values, **fields}))


class SimulatedDeath(BaseException):
    """Stands for SIGKILL in-process: no `except Exception` in the engine can stop it."""


def test_dying_right_after_any_checkpoint_write_resumes_exactly(tmp_path, monkeypatch):
    reference = train(generated_config(tmp_path, run_name="reference"), dataset=generated_dataset())
    real_save = checkpoints.save_checkpoint
    writes = []
    monkeypatch.setattr(checkpoints, "save_checkpoint", lambda *args, **kwargs: writes.append(args[1]) or
                        real_save(*args, **kwargs))
    train(generated_config(tmp_path, run_name="count"), dataset=generated_dataset())
    assert {Path(path).name for path in writes} == {"last.pt", "best.pt"}

    for death in range(1, len(writes) + 1):
        def save_then_die(*args, remaining=[death], **kwargs):
            path = real_save(*args, **kwargs)
            remaining[0] -= 1
            if remaining[0] == 0:
                raise SimulatedDeath
            return path

        run_name = f"died-after-write-{death}"
        monkeypatch.setattr(checkpoints, "save_checkpoint", save_then_die)
        with pytest.raises(SimulatedDeath):
            train(generated_config(tmp_path, run_name=run_name), dataset=generated_dataset())
        monkeypatch.setattr(checkpoints, "save_checkpoint", real_save)
        run_dir = tmp_path / run_name
        resume = load_newest_valid(run_dir / "checkpoints" / "last.pt")
        train(generated_config(tmp_path, run_name=run_name), dataset=generated_dataset(), resume=resume,
              run_dir=run_dir)
        assert differences(reference, run_dir) == [], f"died after checkpoint write {death} ({writes[death - 1]})"


def test_same_seed_same_metrics_and_different_seed_different_metrics(tmp_path):
    runs = [train(generated_config(tmp_path, run_name=f"seed-{seed}-{copy}", seed=seed, checkpoint_every_steps=0),
                  dataset=generated_dataset()) for seed, copy in ((0, "a"), (0, "b"), (1, "a"))]
    first, again, other = (read_metrics(run) for run in runs)
    assert first == again and differences(runs[0], runs[1]) == []
    assert first != other

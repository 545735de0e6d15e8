"""Short real training runs: Fashion-MNIST subsets and tiny generated data through `papernets train`/`eval`
and `train()`: learning, the run folder, eval = summary, exact resume (test hook and SIGTERM), NaN stop,
distillation, refusals before any work.

Timing columns (images_per_s, seconds) are the only ones allowed to differ between an interrupted-and-resumed
run and an uninterrupted one."""

import csv
import json
import os
import signal
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from papernets.cli import main
from papernets.config import TrainConfig, validate
from papernets.errors import PapernetsError, TrainingError
from papernets.runs.checkpoint import load_checkpoint
from papernets.runs.names import TIMING_COLUMNS
from papernets.training import progress
from papernets.training.engine import TrainingInterrupted, train
from conftest import dataset_flags
from generated_data import generated_dataset
from training_seams import nan_loss_at_step, sigterm_during_step

REPO = Path(__file__).resolve().parents[1]
# A recipe of the tests' own, so that tuning the fast recipes cannot change what these tests see.
TEST_RECIPE = """# Test recipe: plain SGD with a cosine decay, for short runs on small subsets.
epochs = 2
batch_size = 32
optimizer = "sgd"
lr = 0.05
momentum = 0.9
weight_decay = 5e-4
schedule = "cosine"
"""
# A Fashion-MNIST subset small enough for CI: 2,000 training images, 500 validation, 1,000 test.
FASHION_SUBSET = ["--set", "train_size=2000", "val_size=500", "test_size=1000", "threads=1"]


def write_test_recipe(folder: Path) -> str:
    path = folder / "test-recipe.toml"
    path.write_text(TEST_RECIPE)
    return str(path)



def generated_config(output: Path, **fields) -> TrainConfig:
    values = dict(model="lenet5_modern", dataset="generated", epochs=2, batch_size=32, lr=0.05, val_size=64,
                  threads=1, amp="off", quiet=True, report=False, output=str(output), run_name="run",
                  augmentation={"pad": 0, "crop": False, "flip": False, "cutout": 0})
    return validate(TrainConfig(**{**values, **fields}))


def read_metrics(run_dir: Path, without_timing: bool = True, name: str = "metrics.csv") -> list[dict]:
    with open(run_dir / name, newline="") as file:
        rows = list(csv.DictReader(file))
    return [{key: value for key, value in row.items() if not (without_timing and key in TIMING_COLUMNS)}
            for row in rows]


def assert_same_weights(run_a: Path, run_b: Path):
    weights_a, weights_b = load_file(run_a / "model.safetensors"), load_file(run_b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory, fashion_mnist_dir) -> Path:
    """lenet5_modern, 2 epochs on 2,000 Fashion-MNIST images, through the command line."""
    output = tmp_path_factory.mktemp("fashion")
    status = main(["train", "--model", "lenet5_modern", *dataset_flags("fashion-mnist"), "--recipe",
                   write_test_recipe(output.parent), "--output", str(output), "--quiet", "--no-report",
                   *FASHION_SUBSET])
    assert status == 0
    (run_dir,) = output.iterdir()
    return run_dir


def test_fashion_run_learns_and_writes_the_run_folder(fashion_run):
    for name in ("config.json", "env.json", "metrics.csv", "summary.json", "model.safetensors",
                 "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (fashion_run / name).is_file(), name
    rows = read_metrics(fashion_run, without_timing=False)
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    summary = json.loads((fashion_run / "summary.json").read_text())
    for key in ("model", "dataset", "recipe", "seed", "epochs", "best_val_accuracy", "final_val_accuracy",
                "test_accuracy", "wall_seconds", "params", "macs", "images_per_s"):
        assert key in summary, key
    assert summary["test_accuracy"] > 0.6  # chance is 0.1
    assert summary["params"] == 61_706 and summary["test_images"] == 1000
    environment = json.loads((fashion_run / "env.json").read_text())
    assert environment["torch"] == torch.__version__ and environment["torch_threads"] == 1
    assert "git_commit" in environment or "package_version" in environment
    best = load_checkpoint(fashion_run / "checkpoints" / "best.pt")
    assert best["epoch"] == summary["best_epoch"] and best["class_names"][0] == "T-shirt/top"


def test_eval_reproduces_the_summarys_test_accuracy(fashion_run, capsys):
    summary = json.loads((fashion_run / "summary.json").read_text())
    assert main(["eval", "--checkpoint", str(fashion_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 1000
    assert result["accuracy"] == summary["test_accuracy"]


@pytest.mark.real_data("fashion-mnist")
def test_distillation_from_a_trained_teacher(fashion_run, tmp_path):
    status = main(["train", "--model", "lenet5_modern", *dataset_flags("fashion-mnist"), "--epochs", "1",
                   "--recipe", write_test_recipe(tmp_path), "--teacher", str(fashion_run / "checkpoints" / "best.pt"),
                   "--output", str(tmp_path), "--quiet", "--no-report", *FASHION_SUBSET, "distill_temperature=4",
                   "distill_alpha=0.7", "seed=1"])
    assert status == 0
    (run_dir,) = [path for path in tmp_path.iterdir() if path.is_dir() and path.name != "cache"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["teacher"].endswith("best.pt") and config["distill_alpha"] == 0.7
    assert json.loads((run_dir / "summary.json").read_text())["test_accuracy"] > 0.4


def test_resnet20_with_bf16_and_channels_last_learns_on_generated_data(tmp_path):
    run_dir = train(generated_config(tmp_path, model="resnet20", amp="auto", channels_last=True, epochs=3,
                                     label_smoothing=0.1, no_weight_decay_on_bn_bias=True, schedule="cosine",
                                     nesterov=True, eval_tta_flip=True), dataset=generated_dataset())
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = read_metrics(run_dir)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert summary["test_accuracy"] > 0.6  # chance is 0.25


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory) -> tuple[Path, TrainConfig]:
    """The reference for exact resume: resnet20 (BatchNorm, momentum), 3 epochs of 8 steps, never stopped; bf16
    autocast where the CPU has it, and channels_last, as the fast recipes train."""
    output = tmp_path_factory.mktemp("reference")
    config = generated_config(output, model="resnet20", epochs=3, batch_size=32, schedule="cosine",
                              momentum=0.9, augmentation={"pad": 2, "crop": True, "flip": True, "cutout": 2},
                              val_size=32, run_name="reference", amp="auto", channels_last=True, log_every_steps=3)
    return train(config, dataset=generated_dataset(train_count=288)), config


def test_resume_after_stops_mid_epoch_is_exact(uninterrupted_run, tmp_path):
    reference, config = uninterrupted_run
    dataset = generated_dataset(train_count=288)
    stopped = replace(config, output=str(tmp_path), run_name="stopped")
    with sigterm_during_step(5), pytest.raises(TrainingInterrupted, match="resume"):
        train(stopped, dataset=dataset)
    run_dir = tmp_path / "stopped"
    for stop_at in (13, None):  # mid epoch 2, then to the end
        resume = load_checkpoint(run_dir / "checkpoints" / "last.pt")
        if stop_at:
            with sigterm_during_step(stop_at), pytest.raises(TrainingInterrupted, match="at step 13"):
                train(stopped, dataset=dataset, resume=resume, run_dir=run_dir)
        else:
            train(stopped, dataset=dataset, resume=resume, run_dir=run_dir)
    assert_same_weights(reference, run_dir)
    assert read_metrics(run_dir) == read_metrics(reference)
    assert len(read_metrics(run_dir)) == 3
    # steps.csv: every third step once, each row as in the run that was never stopped (timing aside)
    steps = read_metrics(run_dir, name="steps.csv")
    assert [int(row["step"]) for row in steps] == list(range(3, 25, 3))
    assert steps == read_metrics(reference, name="steps.csv")


@pytest.mark.slow
@pytest.mark.real_data("fashion-mnist")
def test_sigterm_saves_a_checkpoint_and_the_resumed_run_is_exact(tmp_path):
    arguments = ["train", "--model", "lenet5_modern", *dataset_flags("fashion-mnist"), "--recipe",
                 write_test_recipe(tmp_path), "--epochs", "3", "-b", "64", "--output", str(tmp_path), "--no-report",
                 "--set", "train_size=4000", "val_size=256", "test_size=256", "threads=1", "amp=off"]
    command = [sys.executable, "-m", "papernets", *arguments, "run_name=run"]
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=REPO, env=environment)
    for line in process.stderr:
        if line.startswith("epoch 1/3"):
            process.send_signal(signal.SIGTERM)
            break
    remaining = process.stderr.read()
    assert process.wait(timeout=120) == 143, remaining
    assert "--resume" in remaining and len(remaining.strip().splitlines()) == 1
    run_dir = tmp_path / "run"
    stopped_at = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert stopped_at["epoch"] >= 1
    assert main(["train", "--resume", str(run_dir), "--quiet", "--no-report"]) == 0
    assert main([*arguments, "run_name=straight", "--quiet"]) == 0
    assert_same_weights(tmp_path / "straight", run_dir)
    assert read_metrics(run_dir) == read_metrics(tmp_path / "straight")


def test_nan_loss_stops_with_the_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    config = generated_config(tmp_path, checkpoint_every_steps=2)
    with nan_loss_at_step(4), pytest.raises(TrainingError, match=r"nan at epoch 1, step 4 \(global step 4\)"):
        train(config, dataset=generated_dataset())
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert last["global_step"] == 2
    assert all(torch.isfinite(tensor).all() for tensor in last["model_state"].values()
               if tensor.is_floating_point())


def test_a_model_that_cannot_take_the_images_is_refused_before_any_work(tmp_path):
    config = generated_config(tmp_path, model="lenet5")
    with pytest.raises(PapernetsError) as error:
        train(config, dataset=generated_dataset(size=40))
    assert "40x40" in str(error.value) and len(str(error.value).splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_unwritable_output_and_full_disk_are_reported_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(TrainingError, match="Cannot write to the output folder"):
        train(generated_config(blocker), dataset=generated_dataset())
    from papernets.runs import writer

    monkeypatch.setattr(writer.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 10 * 2**20})())
    with pytest.raises(TrainingError, match="MB free"):
        train(generated_config(tmp_path / "out"), dataset=generated_dataset())
    assert not (tmp_path / "out" / "run" / "metrics.csv").exists()


def test_tensorboard_without_its_package_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(PapernetsError, match="pip install tensorboard"):
        train(generated_config(tmp_path, tensorboard=True), dataset=generated_dataset())


def test_without_a_terminal_progress_is_plain_lines_within_and_after_each_epoch(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "PLAIN_LINE_SECONDS", 0.0)  # a line after every step
    train(generated_config(tmp_path, quiet=False, epochs=1, batch_size=64), dataset=generated_dataset())
    lines = capsys.readouterr().err.splitlines()
    within = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in within] == ["1/3", "2/3", "3/3"]  # 192 training images, batch 64
    assert all("(epoch 1/1): train_loss " in line and line.endswith(" img/s") for line in within)
    assert sum(line.startswith("epoch 1/1: train_loss") for line in lines) == 1
    assert not any("\r" in line for line in lines)  # no progress bar without a terminal


def test_tensorboard_gets_step_curves_by_global_step_and_epoch_rows_at_their_last_step(tmp_path, monkeypatch):
    scalars = []

    class RecordingWriter:  # torch.utils.tensorboard.SummaryWriter's interface, as the engine uses it
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            scalars.append((tag, step))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=RecordingWriter))
    run_dir = train(generated_config(tmp_path, tensorboard=True, log_every_steps=2), dataset=generated_dataset())
    steps = [step for tag, step in scalars if tag == "step/batch_loss"]
    assert steps == [2, 4, 6, 8, 10, 12]  # 2 epochs of 6 steps
    assert [int(row["step"]) for row in read_metrics(run_dir, name="steps.csv")] == steps
    assert [step for tag, step in scalars if tag == "epoch/val_acc"] == [6, 12]

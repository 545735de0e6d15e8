"""torchrun: two gloo processes on the CPU train lenet5_modern (no BatchNorm, so no per-rank statistics) to
the same weights as one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from papernets.cli import main
from conftest import dataset_flags

REPO = Path(__file__).resolve().parents[1]
RECIPE = """# Test recipe: plain SGD with momentum and a cosine decay.
epochs = 2
batch_size = 64
optimizer = "sgd"
lr = 0.05
momentum = 0.9
weight_decay = 5e-4
schedule = "cosine"
"""
pytestmark = [pytest.mark.real_data("fashion-mnist"), pytest.mark.slow]  # torchrun: two processes start


def run_arguments() -> list[str]:
    return ["train", "--model", "lenet5_modern", *dataset_flags("fashion-mnist"), "--quiet", "--no-report", "--amp",
            "off", "--set", "train_size=512", "val_size=256", "test_size=256", "threads=1"]


# (before the command line, after it): torchrun, or `papernets train --procs 2` starting the ranks itself.
LAUNCHERS = {
    "torchrun": ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
                  "papernets"], []),
    "procs": ([sys.executable, "-m", "papernets"], ["--procs", "2"]),
}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_two_gloo_processes_match_one_process(tmp_path, launcher):
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    run = [*run_arguments(), "--recipe", str(recipe), "--output", str(tmp_path)]
    before, after = LAUNCHERS[launcher]
    command = [*before, *run, "--set", "run_name=ddp", *after]
    finished = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert main([*run, "--set", "run_name=single"]) == 0

    ddp, single = tmp_path / "ddp", tmp_path / "single"
    weights_ddp, weights_single = load_file(ddp / "model.safetensors"), load_file(single / "model.safetensors")
    assert weights_ddp.keys() == weights_single.keys()
    for name in weights_ddp:
        torch.testing.assert_close(weights_ddp[name], weights_single[name], rtol=1e-5, atol=1e-6)
    summary_ddp = json.loads((ddp / "summary.json").read_text())
    summary_single = json.loads((single / "summary.json").read_text())
    assert summary_ddp["world_size"] == 2 and summary_single["world_size"] == 1
    assert abs(summary_ddp["test_accuracy"] - summary_single["test_accuracy"]) <= 2 / 256
    # The test pass's probabilities, gathered from both ranks into the split's order, are the single process's.
    with np.load(ddp / "predictions.npz") as gathered, np.load(single / "predictions.npz") as alone:
        assert np.array_equal(gathered["labels"], alone["labels"]) and gathered["probs"].shape == (256, 10)
        np.testing.assert_allclose(gathered["probs"], alone["probs"], atol=1e-4)
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir() and path.name != "cache") == [
        "ddp", "single"]


def test_a_rank_that_fails_stops_the_run_with_its_one_line_error(tmp_path):
    """`--procs 2` where the ranks cannot find the data: each rank's one-line error, no traceback, exit 2, and no
    rank left waiting for the other."""
    command = [sys.executable, "-m", "papernets", "train", "--procs", "2", "--model", "lenet5_modern", "--dataset",
               "fashion-mnist", "--data-dir", str(tmp_path / "nowhere"), "--output", str(tmp_path / "runs"),
               "--quiet", "--set", "threads=1"]
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2, finished.stderr[-3000:]
    assert "Traceback" not in finished.stderr
    assert all(line.startswith("error: ") and "nowhere" in line for line in finished.stderr.strip().splitlines())

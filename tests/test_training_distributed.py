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


def test_two_gloo_processes_match_one_process(tmp_path):
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    run = [*run_arguments(), "--recipe", str(recipe), "--output", str(tmp_path)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "papernets", *run, "--set", "run_name=ddp"]
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

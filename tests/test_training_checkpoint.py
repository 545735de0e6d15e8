"""Checkpoints: checksum, weights_only loading, atomic writes, the previous copy as a fallback, RNG states."""

import random

import numpy as np
import pytest
import torch

from generated_data import valid_checkpoint
from papernets.errors import CheckpointError, WriteError
from papernets.runs import checkpoint
from papernets.runs.checkpoint import (capture_rng_state, load_checkpoint, load_newest_valid,
                                       model_from_checkpoint, previous_path, restore_rng_state,
                                       save_checkpoint)


def payload(global_step: int) -> dict:
    torch.manual_seed(global_step)
    return {**valid_checkpoint(global_step, num_classes=10, size=28), "weights": torch.randn(5, 3),
            "nested": {"list": [1, 2.5, None, "text"], "bf16": torch.ones(3, dtype=torch.bfloat16)}}


def test_round_trip_with_checksum_and_previous_copy(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(payload(1), path)
    save_checkpoint(payload(2), path)
    newest, previous = load_checkpoint(path), load_checkpoint(previous_path(path))
    assert (newest["global_step"], previous["global_step"]) == (2, 1)
    assert torch.equal(newest["weights"], payload(2)["weights"])
    assert len(newest["checksum"]) == 64
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.prev.pt", "last.pt"]


def test_a_changed_payload_fails_the_checksum(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(payload(1), path)
    tampered = torch.load(path, weights_only=True)
    tampered["weights"][0, 0] += 1
    torch.save(tampered, path)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_pickled_code_is_refused_never_loaded_unsafely(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "payload": np.random.default_rng(0)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)


def test_a_failure_during_the_write_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(payload(1), path)

    def failing_save(obj, file):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", failing_save)
    with pytest.raises(WriteError, match="No space left on device.*previous checkpoint is intact"):
        save_checkpoint(payload(2), path)
    assert load_checkpoint(path)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "last.pt"
    (tmp_path / ".last.pt.99999.tmp").write_bytes(b"half a checkpoint")
    save_checkpoint(payload(1), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_resume_falls_back_to_the_newest_valid_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(payload(1), path)
    save_checkpoint(payload(2), path)
    size = path.stat().st_size
    with open(path, "r+b") as file:
        file.truncate(size // 2)
    warnings = []
    assert load_newest_valid(path, warn=warnings.append)["global_step"] == 1
    assert len(warnings) == 1 and "corrupt or truncated" in warnings[0]
    previous_path(path).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="No valid checkpoint to resume from"):
        load_newest_valid(path, warn=warnings.append)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_states_survive_weights_only_round_trip(tmp_path):
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached Gaussian in Python's state
    path = tmp_path / "rng.pt"
    save_checkpoint({**valid_checkpoint(), "rng": capture_rng_state()}, path)
    expected = (random.random(), random.gauss(0, 1), np.random.rand(), torch.rand(1).item())
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    restore_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), random.gauss(0, 1), np.random.rand(), torch.rand(1).item()) == expected


def test_model_from_checkpoint_rebuilds_the_model_in_eval_mode(tmp_path):
    from papernets.models import create_model

    torch.manual_seed(0)
    model = create_model("lenet5_modern", num_classes=10, input_size=(1, 28, 28))
    save_checkpoint({**payload(1), "model_state": model.state_dict()}, tmp_path / "best.pt")
    rebuilt, loaded = model_from_checkpoint(tmp_path / "best.pt")
    assert not rebuilt.training and loaded["model"] == "lenet5_modern"
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(rebuilt(x), model.eval()(x))
    wrong = {**payload(1), "model_state": {"nothing": torch.zeros(1)}}
    save_checkpoint(wrong, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        model_from_checkpoint(tmp_path / "wrong.pt")



"""Fuzzing in CI: a few hundred hypothesis-driven inputs over the targets of reliability/fuzz.py (IDX, CIFAR
binary and python readers, tar extraction, checkpoint loader and payload schema, image headers, recipe and --set
loader, config ranges). Each input must parse or
raise the target's documented error; the 100,000-input run is `reliability/fuzz.py` (docs/RELIABILITY.md).
Below them, the inputs that crashed papernets before it was fixed, kept as regression tests."""

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papernets.config import load_config, parse_overrides
from papernets.data.readers import read_cifar_python
from papernets.errors import CheckpointError, ConfigError, DatasetError
from papernets.runs import checkpoint
from papernets.runs.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
import fuzz  # noqa: E402  (a script folder, not part of the installed package)

EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    return fuzz.build_targets(tmp_path_factory.mktemp("fuzz"))


operations = st.lists(st.tuples(st.sampled_from(fuzz.MUTATIONS), st.floats(0, 1, exclude_max=True),
                                st.binary(min_size=1, max_size=16)), min_size=1, max_size=4)


def assert_no_crash(target, value):
    assert fuzz.run_one(target, value) is None


@pytest.mark.parametrize("name", ["idx", "cifar-binary", "cifar-python", "tar", "checkpoint", "image-header"])
@EXAMPLES
@given(data=st.data())
def test_mutated_files_parse_or_raise_the_documented_error(targets, name, data):
    target = targets[name]
    seed_file = data.draw(st.sampled_from(target.seeds))
    value = data.draw(st.one_of(st.binary(max_size=200),
                                operations.map(lambda ops: fuzz.apply_mutations(seed_file, ops))))
    assert_no_crash(target, value)


@pytest.mark.parametrize("name", ["cifar-structured", "checkpoint-forged", "checkpoint-schema", "recipe",
                                  "overrides", "config-ranges"])
@EXAMPLES
@given(rng=st.randoms(use_true_random=False))
def test_generated_inputs_parse_or_raise_the_documented_error(targets, name, rng):
    target = targets[name]
    assert_no_crash(target, target.generate(rng))


def test_the_fuzzer_reports_an_undocumented_exception():
    def check(value):
        raise KeyError(value)

    target = fuzz.Target("demo", (DatasetError,), lambda rng: b"", check)
    assert fuzz.run_one(target, b"x").startswith("KeyError at test_reliability_fuzz.py")
    assert fuzz.run_one(fuzz.Target("demo", (KeyError,), lambda rng: b"", check), b"x") is None


def test_mutations_do_what_they_say():
    data = bytes(range(10))
    assert fuzz.apply_mutations(data, [("truncate", 0.5, b"x")]) == data[:5]
    assert fuzz.apply_mutations(data, [("header", 0.0, b"\xff\xff")]) == b"\xff\xff" + data[2:]
    assert fuzz.apply_mutations(data, [("insert", 0.0, b"ab")]) == b"ab" + data
    assert fuzz.apply_mutations(data, [("flip", 0.0, b"\x00")]) == b"\x01" + data[1:]


# Inputs that crashed papernets (an exception other than the documented error) before the fixes.

def test_a_set_that_gives_a_field_a_value_and_a_sub_field_is_a_config_error():
    with pytest.raises(ConfigError, match="set one or the other"):
        load_config("lenet-lecun1998", parse_overrides(["lr=0.1", "lr.decay=2"]))


def test_a_cifar_label_beyond_64_bits_is_a_dataset_error(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [2**70, 1]}, protocol=2))
    with pytest.raises(DatasetError, match="holds label 1180591620717411303424"):
        read_cifar_python(path, "labels", 10)


def test_a_checkpoint_nested_thousands_deep_is_refused_not_a_recursion_error(tmp_path):
    nested = []
    for _ in range(3000):
        nested = [nested]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # torch.save pickles recursively
    try:
        torch.save({"format": checkpoint.FORMAT, "payload": nested}, tmp_path / "deep.pt")
    finally:
        sys.setrecursionlimit(limit)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(tmp_path / "deep.pt")


@pytest.mark.parametrize("fields", [
    {"model": "lenet5_modern"},
    {"model": "lenet5_modern", "model_options": {}, "num_classes": "ten", "input_size": [1, 28, 28],
     "model_state": {}},
    {"model": "lenet5_modern", "model_options": {}, "num_classes": 10**9, "input_size": [1, 28, 28],
     "model_state": {}},
    {"model": "lenet5_modern", "model_options": {}, "num_classes": 10, "input_size": [1, 28],
     "model_state": {}},
    {"model": "lenet5_modern", "model_options": {}, "num_classes": 10, "input_size": [1, 28, 28],
     "model_state": {"conv.weight": "not a tensor"}},
], ids=["fields-missing", "classes-not-a-number", "a-billion-classes", "two-numbers-for-the-size", "not-tensors"])
def test_a_forged_checkpoint_with_a_valid_checksum_is_refused_before_building_a_model(fields, tmp_path):
    path = save_checkpoint(fields, tmp_path / "forged.pt")
    # The checksum holds (it proves a file undamaged, not written by papernets); the schema, checked where every
    # checkpoint is read, refuses the file.
    for read in (load_checkpoint, model_from_checkpoint):
        with pytest.raises(CheckpointError, match="use a file written by `papernets train`"):
            read(path)


def test_a_zero_length_checkpoint_is_a_checkpoint_error_with_a_reason(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"corrupt or truncated \(EOFError\)"):
        load_checkpoint(tmp_path / "empty.pt")


def test_a_pickle_naming_a_huge_memo_index_costs_no_memory(tmp_path):
    """Found by reliability/fuzz.py, which the kernel killed at 20 GB: the C unpickler allocates and zeroes a
    memo array as long as the largest index a file names (LONG_BINPUT, 5 bytes). Measured in a child process:
    with the C unpickler this index costs 800 MB."""
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"\x80\x02K\x01r" + (100_000_000).to_bytes(4, "little") + b".")  # 1, memo[1e8] = 1
    program = ("import resource, sys\n"
               "from papernets.data.readers import read_cifar_python\n"
               "from papernets.errors import DatasetError\n"
               "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
               "try:\n"
               "    read_cifar_python(sys.argv[1], 'labels', 10)\n"
               "except DatasetError as error:\n"
               "    print(error, file=sys.stderr)\n"
               "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    result = subprocess.run([sys.executable, "-c", program, str(path)], capture_output=True, text=True, timeout=120)
    assert "not the dict of a CIFAR batch" in result.stderr, result.stderr
    assert int(result.stdout) < 100  # megabytes

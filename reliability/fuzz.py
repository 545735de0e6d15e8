"""Fuzzing the readers: mutated and random inputs for every parser of untrusted bytes or text in papernets, each
of which must either succeed or raise its documented error type (never anything else, never a traceback).

    .venv/bin/python reliability/fuzz.py --inputs 100000 --seed 0      # about a minute on one core

Targets (each starts from small valid files written here, so that one input costs well under a millisecond):
- idx:               `read_idx`, `read_idx_pair` on IDX files, plain and gzipped          -> DatasetError
- cifar-binary:      `read_cifar_binary` on CIFAR-10/100 binary batches                   -> DatasetError
- cifar-python:      `read_cifar_python` on pickled batches (protocols 0, 2, 5)           -> DatasetError
- cifar-structured:  pickles of random batch-like objects (wrong types, sizes, huge labels) -> DatasetError
- tar:               `extract_tar_safely` on mutated archives                             -> DatasetError
- checkpoint:        `model_from_checkpoint` on mutated checkpoint files                  -> CheckpointError
- checkpoint-forged: checkpoints with a valid checksum around random fields               -> CheckpointError, ModelError
- checkpoint-schema: a real checkpoint's payload with fields deleted, retyped or reshaped
                     (valid checksum), read and restored as eval and `train --resume` do     -> CheckpointError, ModelError
- image-header:      `read_image` on mutated PNG/JPEG/GIF/BMP/TIFF/WEBP/PPM files and
                     headers declaring huge sizes                                         -> ImageFileError
- recipe:            `load_config` on mutated and randomly assembled TOML recipes          -> ConfigError
- overrides:         `load_config(recipe, parse_overrides(...))` on random --set strings   -> ConfigError
- config-ranges:     --set values at and beyond every field's range (and nested deep); a
                     config that loads must lie within every range                        -> ConfigError

A mutation is a list of operations (truncate, flip bits, overwrite, insert, delete, random header), applied to a
valid file; a fraction of inputs are random bytes outright. The last line printed is the count of crashes,
meaning exceptions that are not the target's documented type, and inputs after which the process's peak memory
grew by more than 500 MB (the process runs under a 6 GB address-space limit, so that a memory bomb fails rather
than the machine); each distinct crash is printed once, with the input saved under --crashes.
"""

import argparse
import contextlib
import gzip
import io
import pickle
import random
import resource
import string
import struct
import sys
import tarfile
import tempfile
import time
import traceback
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

MUTATIONS = ("truncate", "flip", "overwrite", "insert", "delete", "header", "duplicate")


def apply_mutations(data: bytes, operations: list[tuple[str, float, bytes]]) -> bytes:
    """`data` changed by each (kind, position in [0, 1), bytes) operation in turn; the same function serves the
    random fuzzer below and the hypothesis tests (tests/test_reliability_fuzz.py)."""
    buffer = bytearray(data)
    for kind, position, payload in operations:
        at = min(int(position * (len(buffer) + 1)), len(buffer))
        if kind == "truncate":
            del buffer[at:]
        elif kind == "flip" and buffer:
            index = min(at, len(buffer) - 1)
            buffer[index] ^= 1 << (payload[0] % 8 if payload else 0)
        elif kind == "overwrite":
            buffer[at:at + len(payload)] = payload
        elif kind == "insert":
            buffer[at:at] = payload
        elif kind == "delete":
            del buffer[at:at + max(1, len(payload))]
        elif kind == "header":
            buffer[:len(payload)] = payload
        elif kind == "duplicate":
            buffer[at:at] = buffer[at:at + 64 + len(payload)]
    return bytes(buffer)


def random_operations(rng: random.Random) -> list[tuple[str, float, bytes]]:
    def some_bytes() -> bytes:
        size = rng.choice((1, 1, 2, 4, 8, rng.randint(0, 64)))
        if rng.random() < 0.3:  # values that tend to matter in headers: 0, 0xff, small and huge counts
            return bytes(rng.choice((0, 1, 2, 3, 8, 0x7F, 0x80, 0xFF)) for _ in range(size))
        return rng.randbytes(size)

    return [(rng.choice(MUTATIONS), rng.random(), some_bytes()) for _ in range(rng.choice((1, 1, 1, 2, 3, 6)))]


# ---------------------------------------------------------------------------------------------------------
# Valid seed files.

def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def cifar_batch(count: int, classes: int, rng: np.random.Generator) -> dict:
    key = b"labels" if classes == 10 else b"fine_labels"
    batch = {b"batch_label": b"training batch 1 of 5", key: rng.integers(0, classes, count).tolist(),
             b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * count}
    if classes == 100:
        batch[b"coarse_labels"] = rng.integers(0, 20, count).tolist()
    return batch


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def checkpoint_bytes(workdir: Path) -> bytes:
    """A real checkpoint, as `papernets train` writes it: lenet5_modern trained for one epoch on 64 random
    1x12x12 images of 3 classes."""
    from papernets.data import Dataset
    from papernets.runs.names import LAST_CHECKPOINT
    from papernets.config import load_config
    from papernets.training.engine import train

    rng = np.random.default_rng(0)
    dataset = Dataset(name="generated", train_images=rng.integers(0, 256, (64, 1, 12, 12), dtype=np.uint8),
                      train_labels=rng.integers(0, 3, 64), test_images=rng.integers(0, 256, (16, 1, 12, 12),
                                                                                   dtype=np.uint8),
                      test_labels=rng.integers(0, 3, 16), class_names=("a", "b", "c"), source=workdir)
    config = load_config(None, {"model": "lenet5_modern", "dataset": "generated", "epochs": 1, "batch_size": 32,
                                "val_size": 16, "output": str(workdir / "runs"), "quiet": True, "report": False,
                                "threads": 1, "amp": "off", "run_name": "seed",
                                "augmentation": {"pad": 0, "crop": False, "flip": False, "cutout": 0}})
    return (train(config, dataset=dataset) / LAST_CHECKPOINT).read_bytes()


def image_bytes() -> list[bytes]:
    """Small valid images in every format `predict` decodes."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    images = []
    for image_format, mode in (("PNG", "RGB"), ("PNG", "L"), ("JPEG", "RGB"), ("BMP", "RGB"), ("GIF", "P"),
                               ("TIFF", "RGB"), ("WEBP", "RGB"), ("PPM", "RGB")):
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buffer, format=image_format)
        images.append(buffer.getvalue())
    return images


def declared_size_header(rng: random.Random) -> bytes:
    """A PNG or GIF header declaring a random (often huge) size, with little or no pixel data behind it."""
    width, height = (rng.choice((1, 255, 8192, 8193, 30000, 65535, 2**31 - 1)) for _ in range(2))
    if rng.random() < 0.5:
        header = struct.pack(">IIBBBBB", width, height, rng.choice((1, 8, 16)), rng.choice((0, 2, 3, 6)), 0, 0, 0)
        chunk = b"IHDR" + header
        return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
                + rng.randbytes(rng.randint(0, 64)))
    width, height = min(width, 65535), min(height, 65535)
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b"\x2c"
            + struct.pack("<HHHHB", 0, 0, width, height, 0) + rng.randbytes(rng.randint(0, 32)))


def recipe_text() -> str:
    from papernets.config import RECIPES_DIR

    return (RECIPES_DIR / "fast-fashion-mnist.toml").read_text()


# ---------------------------------------------------------------------------------------------------------
# Targets: each turns one input into a call of the parser under test.

@dataclass
class Target:
    name: str
    expected: tuple                                        # the documented error types
    generate: Callable[[random.Random], object]            # one random input
    check: Callable[[object], None]                        # parse it; raises only `expected` if all is well
    seeds: tuple[bytes, ...] = ()                          # the valid files mutations start from


def build_targets(workdir: Path) -> dict[str, Target]:
    """The targets, with their seed files written into `workdir` (a tmpfs is fastest)."""
    from papernets.analysis.predict import ImageFileError, read_image
    from papernets.data.locate import extract_tar_safely
    from papernets.data.readers import read_cifar_binary, read_cifar_python, read_idx, read_idx_pair
    from papernets.errors import CheckpointError, ConfigError, DatasetError, ModelError
    from papernets.runs.checkpoint import model_from_checkpoint, save_checkpoint
    from papernets.config import FIELD_TYPES, load_config, parse_overrides

    workdir = Path(workdir)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8), rng.integers(0, 10, 3).astype(np.uint8)
    idx_seeds = [idx_bytes(images), idx_bytes(labels), gzip.compress(idx_bytes(images), mtime=0)]
    binary_seeds = [np.concatenate([labels[:, None], rng.integers(0, 256, (3, 3072), dtype=np.uint8)], 1).tobytes(),
                    np.concatenate([labels[:, None] % 2, labels[:, None], np.zeros((3, 3072), np.uint8)], 1).tobytes()]
    pickle_seeds = [pickle.dumps(cifar_batch(2, classes, rng), protocol=protocol)
                    for classes in (10, 100) for protocol in (0, 2, 5)]
    tar_seeds = [tar_bytes({"cifar-10-batches-py/data_batch_1": b"abc", "cifar-10-batches-py/readme": b"x" * 40})]
    checkpoint_seed = checkpoint_bytes(workdir)
    image_seeds = image_bytes()
    recipe_seed = recipe_text()
    labels_file = workdir / "labels-idx1-ubyte"
    labels_file.write_bytes(idx_bytes(labels))

    def file_with(name: str, data: bytes) -> Path:
        path = workdir / name
        path.write_bytes(data)
        return path

    def mutated(seeds: list[bytes]) -> Callable[[random.Random], bytes]:
        def generate(rng: random.Random) -> bytes:
            if rng.random() < 0.05:
                return rng.randbytes(rng.choice((0, 1, 4, 16, 100, 3073, 4000)))
            return apply_mutations(rng.choice(seeds), random_operations(rng))
        return generate

    def check_idx(data: bytes):
        path = file_with("fuzz-idx", data)
        with contextlib.suppress(DatasetError):
            read_idx(path)
        read_idx_pair(path, labels_file, image_size=(4, 4), num_classes=10)

    def check_cifar_binary(data: bytes):
        path = file_with("fuzz-cifar.bin", data)
        with contextlib.suppress(DatasetError):
            read_cifar_binary(path, label_bytes=1, num_classes=10)
        read_cifar_binary(path, label_bytes=2, num_classes=100, records=3)

    def check_cifar_python(data: bytes):
        path = file_with("fuzz-cifar.pkl", data)
        with contextlib.suppress(DatasetError):
            read_cifar_python(path, "labels", 10)
        read_cifar_python(path, "fine_labels", 100, records=2)

    def structured_batch(rng: random.Random) -> bytes:
        def value(depth: int = 0):
            choices = [lambda: rng.randint(-3, 12), lambda: rng.choice((2**63, 2**70, -2**64, True, None, 1.5)),
                       lambda: rng.randbytes(rng.randint(0, 8)),
                       lambda: "".join(rng.choices(string.ascii_letters, k=3)),
                       lambda: np.zeros(tuple(rng.randint(0, 3) for _ in range(rng.randint(0, 3))),
                                        dtype=rng.choice((np.uint8, np.int64, np.float32, np.bool_)))]
            if depth < 2:
                choices += [lambda: [value(depth + 1) for _ in range(rng.randint(0, 4))],
                            lambda: {rng.choice((b"data", b"labels", "labels", 3)): value(depth + 1)}]
            return rng.choice(choices)()

        count = rng.randint(0, 3)
        batch = {b"data": rng.choice((np.zeros((count, 3072), np.uint8), np.zeros((count, 3071), np.uint8),
                                      np.zeros((count, 3072), np.int16), np.zeros(3072, np.uint8), value())),
                 rng.choice((b"labels", "labels", b"fine_labels")): rng.choice((
                     [rng.choice((0, 9, 10, -1, 2**64, 2**100, True)) for _ in range(count)],
                     tuple(range(count)), np.arange(count), value()))}
        if rng.random() < 0.3:
            batch[rng.randbytes(2)] = value()
        return pickle.dumps(rng.choice((batch, value(), [batch])), protocol=rng.choice((0, 2, 5)))

    def check_tar(data: bytes):
        with tempfile.TemporaryDirectory(dir=workdir) as destination:
            extract_tar_safely(file_with("fuzz.tar.gz", data), Path(destination))

    def check_checkpoint(data: bytes):
        model_from_checkpoint(file_with("fuzz-checkpoint.pt", data))

    def forged_checkpoint(rng: random.Random) -> dict:
        """Fields with the right names and random contents; the checksum is computed by save_checkpoint."""
        import torch

        odd = [None, "x", -1, 0, 2**40, 1.5, [], {}, [1, 28], [0, 28, 28], [1, 28, 10**9], ["1", 28, 28],
               {"w": torch.zeros(2)}, {1: torch.zeros(1)}, {"w": "not a tensor"}]
        fields = {"model": rng.choice(["lenet5_modern", "lenet5", "no-such-model", 5, None]),
                  "model_options": rng.choice([{}, {}, {"dropout": 0.1}, {"no_such_option": 1}, {3: 1}, []]),
                  "num_classes": rng.choice([3, 10, 0, -2, 10**9, True, "3"]),
                  "input_size": rng.choice([[1, 12, 12], [1, 28, 28], [3, 32, 32], [1, 12], [0, 12, 12],
                                            [1, 12, 12.0], (1, 12, 12), [1, 10**6, 10**6]]),
                  "model_state": rng.choice([{}, {"nothing": torch.zeros(1)}, {"w": 1}, []])}
        for name in rng.sample(list(fields), rng.randint(0, 2)):
            if rng.random() < 0.5:
                del fields[name]
            else:
                fields[name] = rng.choice(odd)
        return fields

    def check_forged(fields: dict):
        path = workdir / "fuzz-forged.pt"
        save_checkpoint(fields, path, keep_previous=False)
        model_from_checkpoint(path)

    field_names = list(FIELD_TYPES) + ["augmentation.pad", "augmentation.flip", "augmentation.zoom",
                                       "model_options.dropout", "no_such_field", "lr.x", "", "models",
                                       'models."lenet5*"', 'models."lenet5*".lr', 'models."*".no_such_field']
    values = ["0", "1", "-1", "0.5", "1e400", "nan", "inf", "-inf", "true", "false", "\"sgd\"", "adamw", "[]",
              "[1, 2]", "[0.1, 0.2, 0.3]", "{}", "{ pad = 2 }", "9223372036854775807", "99999999999999999999",
              "1979-05-27", "\"\"", "[[1]]", "'x'", "\"\\u0000\"", "0x10", "1_000", "= =", "[", "\n"]

    def random_assignment(rng: random.Random) -> str:
        name, text = rng.choice(field_names), rng.choice(values)
        if rng.random() < 0.1:
            text = "".join(rng.choices(string.printable, k=rng.randint(0, 12)))
        return f"{name}={text}" if rng.random() < 0.95 else name

    minimal_recipe = 'model = "lenet5"\ndataset = "mnist"\nepochs = 1\n'

    def generate_recipe(rng: random.Random) -> bytes:
        """A mutated recipe file, or a small valid recipe with one to three random top-level assignments (so that
        most documents parse as TOML and the loader's checks, not the TOML parser, meet the odd values)."""
        if rng.random() < 0.4:
            return apply_mutations(recipe_seed.encode(), random_operations(rng))
        names = rng.sample(field_names, rng.randint(1, 3))
        lines = [f"{name} = {rng.choice(values)}" for name in names if name]
        return (minimal_recipe + "\n".join(lines) + "\n").encode()

    def check_recipe(data: bytes):
        load_config(str(file_with("fuzz-recipe.toml", data)))

    def check_overrides(pairs: list[str]):
        load_config("fast-fashion-mnist", parse_overrides(pairs))

    import torch

    from papernets.runs.checkpoint import restore_training
    from papernets.config import FIELD_RANGES, config_from_dict
    from papernets.training.optim import LearningRateSchedule, build_optimizer

    base_payload = torch.load(io.BytesIO(checkpoint_seed), weights_only=True)

    def odd_value(rng: random.Random, original):
        """A value of the wrong type, size or shape for a field that held `original`."""
        if isinstance(original, torch.Tensor) and original.dim() > 0 and rng.random() < 0.5:
            return torch.zeros(*[max(0, size + rng.choice((-1, 1))) for size in original.shape], dtype=original.dtype)
        return rng.choice([None, "x", -1, 0, 2**40, 1.5, float("nan"), True, [], {}, [0.0], [1, 2, 3], {"a": 1},
                           torch.zeros(3), torch.zeros(2, dtype=torch.uint8), "MT19937", (1, 2)])

    def forge_payload(rng: random.Random) -> dict:
        """The real payload with one to three fields, at any depth, deleted or replaced."""
        payload = pickle.loads(pickle.dumps(base_payload))
        for _ in range(rng.randint(1, 3)):
            container, key = payload, rng.choice(list(payload))
            while isinstance(container[key], (dict, list)) and container[key] and rng.random() < 0.6:
                container = container[key]
                key = rng.choice(list(container) if isinstance(container, dict) else range(len(container)))
            if isinstance(container, dict) and rng.random() < 0.3:
                del container[key]
            else:
                container[key] = odd_value(rng, container[key])
        return payload

    def check_schema(payload: dict):
        path = workdir / "fuzz-schema.pt"
        save_checkpoint(payload, path, keep_previous=False)
        model, checkpoint = model_from_checkpoint(path)
        config = config_from_dict(checkpoint["config"])
        restore_training(checkpoint, model, build_optimizer(model, config), LearningRateSchedule(config, 2, 2))

    def generate_image(rng: random.Random) -> bytes:
        if rng.random() < 0.2:
            return declared_size_header(rng)
        return apply_mutations(rng.choice(image_seeds), random_operations(rng))

    def check_image(data: bytes):
        read_image(file_with("fuzz-image", data), rng_input_size[len(data) % 2])

    rng_input_size = ((1, 28, 28), (3, 32, 32))
    range_values = ["-1", "0", "1", "-0.5", "2", "4294967295", "4294967296", "65536", "65537", "1000", "1025",
                    "100000", "1e308", "-1e308", "1e-300", "nan", "true", "\"x\"", "[]", "[1, 28, 28]",
                    "[" * 3000 + "]" * 3000, "\"" + "x" * 5000 + "\"", "\"../..\"", "\"a/b\"", "\"\\u0000\""]
    range_fields = sorted(FIELD_RANGES) + ["output", "run_name", "data_dir", "augmentation.pad",
                                           "augmentation.cutout", "model_options.num_classes",
                                           "model_options.input_size", "model_options.width_multiplier"]

    def check_ranges(pairs: list[str]):
        config = load_config("fast-fashion-mnist", parse_overrides(pairs))
        for name, (low, high) in FIELD_RANGES.items():
            value = getattr(config, name)
            values = value if isinstance(value, list) else [value]
            if value is not None and not all(low <= item <= high for item in values):
                raise AssertionError(f"{name}={value!r} passed outside [{low}, {high}]")

    return {target.name: target for target in [
        Target("idx", (DatasetError,), mutated(idx_seeds), check_idx, tuple(idx_seeds)),
        Target("cifar-binary", (DatasetError,), mutated(binary_seeds), check_cifar_binary, tuple(binary_seeds)),
        Target("cifar-python", (DatasetError,), mutated(pickle_seeds), check_cifar_python, tuple(pickle_seeds)),
        Target("cifar-structured", (DatasetError,), structured_batch, check_cifar_python),
        Target("tar", (DatasetError,), mutated(tar_seeds), check_tar, tuple(tar_seeds)),
        Target("checkpoint", (CheckpointError,), mutated([checkpoint_seed]), check_checkpoint, (checkpoint_seed,)),
        Target("checkpoint-forged", (CheckpointError, ModelError), forged_checkpoint, check_forged),
        Target("checkpoint-schema", (CheckpointError, ModelError, ConfigError), forge_payload, check_schema),
        Target("image-header", (ImageFileError,), generate_image, check_image, tuple(image_seeds)),
        Target("recipe", (ConfigError,), generate_recipe, check_recipe),
        Target("config-ranges", (ConfigError,),
               lambda rng: [f"{rng.choice(range_fields)}={rng.choice(range_values)}"
                            for _ in range(rng.randint(1, 3))], check_ranges),
        Target("overrides", (ConfigError,),
               lambda rng: [random_assignment(rng) for _ in range(rng.randint(0, 4))], check_overrides),
    ]}


def run_one(target: Target, value) -> str | None:
    """None when the input was parsed or refused with the documented error; else a description of the crash."""
    try:
        target.check(value)
    except target.expected:
        return None
    except Exception as error:  # noqa: BLE001  (any other exception is what the fuzzer looks for)
        frame = traceback.extract_tb(error.__traceback__)[-1]
        return f"{type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}: {str(error)[:120]}"
    return None


MEMORY_GROWTH_MB = 500
MEMORY_LIMIT_GB = 6  # address-space limit of the fuzzing process, so that a memory bomb fails instead of the machine

# Share of the inputs each target gets: the cheap parsers get more; loading a checkpoint costs ~1 ms.
WEIGHTS = {"idx": 16, "cifar-binary": 12, "cifar-python": 16, "cifar-structured": 12, "tar": 8, "checkpoint": 10,
           "checkpoint-forged": 2, "checkpoint-schema": 3, "image-header": 10, "recipe": 12, "overrides": 12,
           "config-ranges": 8}


def peak_memory_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def fuzz(inputs: int, seed: int = 0, crashes_dir: Path | None = None, report=print) -> tuple[Counter, Counter]:
    """Run `inputs` inputs over the targets; returns (inputs per target, crashes per distinct description).
    An input after which the process's peak memory has grown by more than MEMORY_GROWTH_MB also counts as a
    crash: a few bytes that make a parser allocate gigabytes are a denial of service."""
    import torch

    torch.set_num_threads(1)
    rng = random.Random(seed)
    tested, crashes = Counter(), Counter()
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="papernets-fuzz-", dir=shm if shm.is_dir() else None) as workdir:
        targets = build_targets(Path(workdir))
        names = [name for name in WEIGHTS for _ in range(WEIGHTS[name])]
        started, baseline = time.perf_counter(), peak_memory_mb()
        for index in range(inputs):
            target = targets[rng.choice(names)]
            value = target.generate(rng)
            tested[target.name] += 1
            crash = run_one(target, value)
            if crash is None and peak_memory_mb() > baseline + MEMORY_GROWTH_MB:
                crash = f"peak memory grew from {baseline} to {peak_memory_mb()} MB"
                baseline = peak_memory_mb()
            if crash:
                crashes[f"{target.name}: {crash}"] += 1
                if crashes[f"{target.name}: {crash}"] == 1:
                    report(f"CRASH {target.name}: {crash}")
                    if crashes_dir is not None:
                        crashes_dir.mkdir(parents=True, exist_ok=True)
                        saved = value if isinstance(value, bytes) else repr(value).encode()
                        (crashes_dir / f"{target.name}-{index}.bin").write_bytes(saved)
            if (index + 1) % 10000 == 0:
                report(f"{index + 1:,} inputs, {sum(crashes.values())} crashes, "
                       f"{time.perf_counter() - started:.0f} s")
    return tested, crashes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs in all (default 100,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crashes", type=Path, default=None, help="folder to save crashing inputs in")
    parser.add_argument("--memory-limit-gb", type=float, default=MEMORY_LIMIT_GB,
                        help=f"address-space limit of this process (default {MEMORY_LIMIT_GB})")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # numpy and torch warn about odd inputs; only exceptions matter here
    limit = int(args.memory_limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    started = time.perf_counter()
    tested, crashes = fuzz(args.inputs, args.seed, args.crashes)
    for name, count in tested.items():
        print(f"{name:<18} {count:>8,} inputs")
    print(f"{sum(tested.values()):,} inputs in {time.perf_counter() - started:.0f} s; distinct crashes: {len(crashes)}")
    print(f"crashes (exceptions other than the documented error type): {sum(crashes.values())}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())

"""Readers on files written here in the exact formats of the releases, and on damaged or hostile files.

The writers below are shared with the other tests/test_data_*.py files.
"""

import gzip
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from papernets.data import readers
from papernets.data.readers import read_cifar_binary, read_cifar_python, read_idx, read_idx_pair
from papernets.errors import DatasetError

try:
    from numpy._core.multiarray import _reconstruct as numpy_reconstruct
except ImportError:
    from numpy.core.multiarray import _reconstruct as numpy_reconstruct


# ---------------------------------------------------------------------------------------------------- writers


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX: two zero bytes, type 0x08 (uint8), number of dims, big-endian uint32 dims, the bytes."""
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_mnist_folder(folder: Path, train: int, test: int, gz: bool = True, seed: int = 0, classes: int = 10):
    """The four IDX files of an MNIST-style data set; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    suffix = ".gz" if gz else ""
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, classes, count, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[prefix] = (images, labels)
    return arrays


class Python2Pickler(pickle._Pickler):
    """Writes protocol 2 the way Python 2's cPickle wrote the CIFAR batches: strings (numpy's dtype codes
    included) as BINSTRING / SHORT_BINSTRING, not Python 3's `_codecs.encode` calls, and numpy's
    reconstructor under its old module name numpy.core.multiarray."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_string(self, text: bytes):
        if len(text) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(text)]) + text)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(text)) + text)
        self.memoize(text)

    dispatch[bytes] = save_python2_string
    dispatch[str] = lambda self, text: self.save_python2_string(text.encode("latin1"))  # Python 2 str is bytes

    def save_global(self, obj, name=None):
        if obj is numpy_reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def cifar_batch(count: int, fine_classes: int, seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
    labels = rng.integers(0, fine_classes, count)
    batch = {b"batch_label": b"training batch 1 of 5", b"data": data,
             b"filenames": [f"image_{i}.png".encode() for i in range(count)]}
    if fine_classes == 10:
        batch[b"labels"] = [int(label) for label in labels]
    else:
        batch[b"fine_labels"] = [int(label) for label in labels]
        batch[b"coarse_labels"] = [int(label) // 5 for label in labels]
    return batch, data.reshape(count, 3, 32, 32), labels


def write_cifar_pickle(path: Path, batch, python2: bool = True) -> Path:
    with open(path, "wb") as stream:
        if python2:
            Python2Pickler(stream, protocol=2).dump(batch)
        else:
            pickle.dump(batch, stream, protocol=2)
    return path


CIFAR_PYTHON_FILES = {10: ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                           "test_batch"), 100: ("train", "test")}
CIFAR_BINARY_FILES = {10: ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                           "data_batch_5.bin", "test_batch.bin"), 100: ("train.bin", "test.bin")}


def write_cifar_python_folder(folder: Path, classes: int, per_file: int, seed: int = 0):
    """A cifar-10-batches-py / cifar-100-python folder with `per_file` images in every file."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for index, name in enumerate(CIFAR_PYTHON_FILES[classes]):
        batch, images, labels = cifar_batch(per_file, classes, seed + index)
        write_cifar_pickle(folder / name, batch)
        arrays[name] = (images, labels)
    return arrays


def cifar_binary_bytes(images: np.ndarray, labels: np.ndarray, classes: int) -> bytes:
    label_columns = [labels[:, None]] if classes == 10 else [labels[:, None] // 5, labels[:, None]]
    records = np.concatenate([*label_columns, images.reshape(len(images), -1)], axis=1).astype(np.uint8)
    return records.tobytes()


def write_cifar_binary_folder(folder: Path, classes: int, per_file: int, seed: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in CIFAR_BINARY_FILES[classes]:
        images = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, classes, per_file)
        (folder / name).write_bytes(cifar_binary_bytes(images, labels, classes))
        arrays[name] = (images, labels)
    return arrays


# ---------------------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_plain_and_gzipped(tmp_path, suffix):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    result = read_idx(write_idx(tmp_path / f"images{suffix}", array))
    assert result.dtype == np.uint8 and result.shape == (2, 3, 4)
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable


def test_idx_pair_gives_nchw_images_and_int64_labels(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 1], dtype=np.uint8)
    x, y = read_idx_pair(write_idx(tmp_path / "i.gz", images), write_idx(tmp_path / "l", labels), (28, 28), 10)
    assert x.shape == (5, 1, 28, 28) and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], images)
    np.testing.assert_array_equal(y, labels)


def test_truncated_gzip_is_a_dataset_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((10, 28, 28), np.uint8)))[:-20])
    with pytest.raises(DatasetError, match="not a readable gzip file"):
        read_idx(path)


def test_garbage_after_gzip_magic_is_a_dataset_error(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00garbage" * 10)
    with pytest.raises(DatasetError, match=str(path)):
        read_idx(path)


def test_truncated_idx_payload_names_declared_and_actual_sizes(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-1])
    expected = r"is truncated: its header declares 10 x 28 x 28 = 7840 bytes but it holds 7839"
    with pytest.raises(DatasetError, match=expected):
        read_idx(path)


def test_idx_with_trailing_bytes_is_refused(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(10, np.uint8)) + b"\x00")
    with pytest.raises(DatasetError, match="trailing bytes"):
        read_idx(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"\x01\x00\x08\x01", "IDX magic"),
        (b"\x00\x00\x0d\x01", "type code 0x0d"),
        (b"\x00\x00\x08\x00", "declares 0 dimensions"),
        (b"\x00\x00\x08\x07", "declares 7 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00", "ends inside its IDX header"),
        (b"\x00\x00", "IDX magic"),
    ],
    ids=["magic", "type-code", "no-dimensions", "seven-dimensions", "short-header", "two-bytes"],
)
def test_bad_idx_headers_are_refused(tmp_path, header, message):
    path = tmp_path / "file"
    path.write_bytes(header)
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_idx_wrong_image_dimensions_are_refused(tmp_path):
    images = write_idx(tmp_path / "images", np.zeros((4, 32, 32), np.uint8))
    labels = write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(DatasetError, match=r"shape \(4, 32, 32\), not N x 28 x 28"):
        read_idx_pair(images, labels, (28, 28), 10)


def test_idx_label_file_with_two_dimensions_is_refused(tmp_path):
    images = write_idx(tmp_path / "images", np.zeros((4, 28, 28), np.uint8))
    labels = write_idx(tmp_path / "labels", np.zeros((4, 2), np.uint8))
    with pytest.raises(DatasetError, match="not one label per image"):
        read_idx_pair(images, labels, (28, 28), 10)


def test_idx_count_mismatch_is_refused(tmp_path):
    images = write_idx(tmp_path / "images", np.zeros((4, 28, 28), np.uint8))
    labels = write_idx(tmp_path / "labels", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match="holds 5 labels but .* holds 4 images"):
        read_idx_pair(images, labels, (28, 28), 10)


def test_idx_label_out_of_range_is_refused(tmp_path):
    images = write_idx(tmp_path / "images", np.zeros((3, 28, 28), np.uint8))
    labels = write_idx(tmp_path / "labels", np.array([1, 10, 2], np.uint8))
    with pytest.raises(DatasetError, match=r"holds label 10 \(labels must lie in 0..9\)"):
        read_idx_pair(images, labels, (28, 28), 10)


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_idx(tmp_path / "nothing.gz")


def test_validation_holds_under_python_dash_o(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.array([0, 12], np.uint8)))
    # readers.py is loaded by its path so that the subprocess does not import torch through papernets.data.
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('readers', {str(Path(readers.__file__))!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "from papernets.errors import DatasetError\n"
        "try:\n"
        f"    module.read_idx_pair({str(path)!r}, {str(path)!r}, (28, 28), 10)\n"
        "except DatasetError as error:\n"
        "    print('refused:', error)\n"
        "    sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    result = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "refused:" in result.stdout


# ---------------------------------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("python2", [True, False], ids=["python2-binstring", "python3-protocol2"])
@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_python_batch_round_trip(tmp_path, python2, classes):
    batch, images, labels = cifar_batch(7, classes, seed=1)
    path = write_cifar_pickle(tmp_path / "batch", batch, python2=python2)
    if python2:
        assert b"numpy.core.multiarray\n_reconstruct" in path.read_bytes()
        assert b"_codecs" not in path.read_bytes()
    label_key = "labels" if classes == 10 else "fine_labels"
    x, y = read_cifar_python(path, label_key, classes, records=7)
    assert x.shape == (7, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_cifar_planes_are_red_green_blue_rows(tmp_path):
    batch, _, _ = cifar_batch(1, 10, seed=0)
    data = np.zeros((1, 3072), np.uint8)
    data[0, 1024 + 32 * 5 + 7] = 200  # green plane, row 5, column 7
    batch[b"data"] = data
    x, _ = read_cifar_python(write_cifar_pickle(tmp_path / "batch", batch), "labels", 10)
    assert x[0, 1, 5, 7] == 200 and x.sum() == 200


def test_cifar_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"

    class WritesMarker:
        def __reduce__(self):
            return exec, (f"with open({str(marker)!r}, 'w') as out: out.write('ran')",)

    batch, _, _ = cifar_batch(2, 10, seed=0)
    batch[b"batch_label"] = WritesMarker()
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    pickle.loads(path.read_bytes())  # the payload is live: plain pickle runs it
    assert marker.exists()
    marker.unlink()

    with pytest.raises(DatasetError, match=r"refused to load the global (__builtin__|builtins)\.exec"):
        read_cifar_python(path, "labels", 10)
    assert not marker.exists()


def test_codecs_encode_is_allowed_only_for_latin1(tmp_path):
    import codecs

    class Encodes:
        def __reduce__(self):
            return codecs.encode, ("x", "rot13")

    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": Encodes()}, protocol=2))
    with pytest.raises(DatasetError, match="rot13"):
        read_cifar_python(path, "labels", 10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda batch: batch.pop(b"labels"), "no list of integer labels"),
        (lambda batch: batch.update({b"labels": [1, 2]}), "holds 2 labels for 3 images"),
        (lambda batch: batch.update({b"labels": [1, 2, 10]}), "holds label 10"),
        (lambda batch: batch.update({b"data": np.zeros((3, 3072), np.float32)}), "float32 array"),
        (lambda batch: batch.update({b"data": np.zeros((3, 1024), np.uint8)}), r"shape \(3, 1024\)"),
    ],
)
def test_cifar_python_batch_contents_are_validated(tmp_path, change, message):
    batch, _, _ = cifar_batch(3, 10, seed=0)
    change(batch)
    with pytest.raises(DatasetError, match=message):
        read_cifar_python(write_cifar_pickle(tmp_path / "batch", batch), "labels", 10)


def test_cifar_python_truncated_or_not_a_dict(tmp_path):
    batch, _, _ = cifar_batch(3, 10, seed=0)
    path = write_cifar_pickle(tmp_path / "batch", batch)
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(DatasetError, match="not a valid CIFAR pickle"):
        read_cifar_python(path, "labels", 10)
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(DatasetError, match="holds a list, not the dict"):
        read_cifar_python(path, "labels", 10)


def test_cifar_python_record_count_is_checked(tmp_path):
    batch, _, _ = cifar_batch(3, 10, seed=0)
    with pytest.raises(DatasetError, match="holds 3 images where the release has 10000"):
        read_cifar_python(write_cifar_pickle(tmp_path / "batch", batch), "labels", 10, records=10000)


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_binary_round_trip(tmp_path, classes):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, classes, 6)
    path = tmp_path / "batch.bin"
    path.write_bytes(cifar_binary_bytes(images, labels, classes))
    x, y = read_cifar_binary(path, 1 if classes == 10 else 2, classes, records=6)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_full_size_cifar10_binary_batch_is_30730000_bytes(tmp_path):
    path = tmp_path / "data_batch_1.bin"
    records = np.zeros((10_000, 3073), np.uint8)
    records[:, 0] = np.arange(10_000) % 10
    path.write_bytes(records.tobytes())
    assert path.stat().st_size == 30_730_000
    images, labels = read_cifar_binary(path, 1, 10, records=10_000)
    assert images.shape == (10_000, 3, 32, 32) and np.bincount(labels).tolist() == [1000] * 10
    with open(path, "r+b") as stream:
        stream.truncate(30_730_000 - 3073)
    with pytest.raises(DatasetError, match="is 30726927 bytes, .* exactly 30730000"):
        read_cifar_binary(path, 1, 10, records=10_000)


@pytest.mark.parametrize("size", [0, 3073 * 2 + 5])
def test_cifar_binary_of_wrong_size_is_refused(tmp_path, size):
    path = tmp_path / "batch.bin"
    path.write_bytes(b"\x00" * size)
    with pytest.raises(DatasetError, match="a multiple of 3073"):
        read_cifar_binary(path, 1, 10)


def test_cifar_binary_label_out_of_range(tmp_path):
    path = tmp_path / "batch.bin"
    path.write_bytes(bytes([12]) + bytes(3072))
    with pytest.raises(DatasetError, match="holds label 12"):
        read_cifar_binary(path, 1, 10)


# ---------------------------------------------------------------------------------------------------- fuzzing


def mutations(data: bytes, count: int, seed: int):
    """Seeded damage: truncations, flipped bytes and inserted bytes."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        damaged = bytearray(data)
        kind = index % 3
        position = int(rng.integers(0, len(data)))
        if kind == 0:
            damaged = damaged[:position]
        elif kind == 1:
            for spot in rng.integers(0, len(data), 1 + index % 4):
                damaged[spot] ^= int(rng.integers(1, 256))
        else:
            damaged[position:position] = rng.integers(0, 256, 1 + index % 7, dtype=np.uint8).tobytes()
        yield bytes(damaged)


@pytest.mark.parametrize("reader", ["idx", "idx-gz", "cifar-python"])
def test_damaged_files_give_a_dataset_error_or_a_valid_array(tmp_path, reader, count=300):
    if reader == "cifar-python":
        batch, _, _ = cifar_batch(2, 10, seed=0)
        path = write_cifar_pickle(tmp_path / "batch", batch)
        read = lambda: read_cifar_python(path, "labels", 10)  # noqa: E731
    else:
        images = write_idx(tmp_path / "images", np.zeros((10, 28, 28), np.uint8))
        path = write_idx(tmp_path / ("labels.gz" if reader == "idx-gz" else "labels"), np.arange(10, dtype=np.uint8))
        read = lambda: read_idx_pair(images, path, (28, 28), 10)  # noqa: E731
    original = path.read_bytes()
    outcomes = []
    for damaged in mutations(original, count, seed=len(reader)):
        path.write_bytes(damaged)
        try:
            x, y = read()
        except DatasetError:
            outcomes.append("refused")
            continue
        assert x.dtype == np.uint8 and y.dtype == np.int64 and len(x) == len(y)
        outcomes.append("read")
    assert outcomes.count("refused") > count // 2


def test_unreadable_file_is_a_dataset_error(tmp_path):
    folder = tmp_path / "labels"
    folder.mkdir()  # a folder where a file should be: refused before it is read
    with pytest.raises(DatasetError, match=f"{folder} is not a regular file"):
        read_idx(folder)

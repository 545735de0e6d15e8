"""Strict, safe readers for the two file formats of the four data sets.

- IDX (MNIST, Fashion-MNIST; LeCun's format): two zero bytes, a type code (0x08 = unsigned byte), the
  number of dimensions, one big-endian uint32 per dimension, then exactly prod(dims) bytes. Plain or gzip.
- CIFAR binary release: fixed-size records, `<label bytes><3072 pixel bytes>` (CIFAR-10: 1 label byte;
  CIFAR-100: coarse byte then fine byte); pixels are the R, G and B planes of a 32x32 image, row-major.
- CIFAR python release: pickled dicts written by Python 2 (so `encoding="bytes"`), holding `b"data"`
  (uint8, N x 3072, same plane layout), `b"labels"` (CIFAR-10) or `b"fine_labels"`/`b"coarse_labels"`
  (CIFAR-100) as lists of ints, `b"batch_label"` and `b"filenames"`. They are read with an unpickler that
  resolves only the globals such a file needs, so a crafted pickle cannot run code.

Every problem is a `DatasetError` naming the file; nothing here relies on `assert`.
"""

import codecs
import contextlib
import gzip
import math
import os
import pickle
import stat
import struct
import zlib
from pathlib import Path

import numpy as np

from papernets.errors import DatasetError

try:
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
except ImportError:  # numpy < 2 has no numpy._core
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct

IDX_UNSIGNED_BYTE = 0x08
IDX_MAX_DIMENSIONS = 4
MAX_IDX_BYTES = 2**27  # the largest genuine IDX file holds 60,000 x 28 x 28 = 47,040,000 bytes; bigger is a bomb
READ_CHUNK_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
CIFAR_PIXELS = 3 * 32 * 32
CORRUPT_ADVICE = "replace it with a fresh copy (delete it and run again with --download)"

# Exceptions that reading a damaged gzip or pickle can raise; each becomes a DatasetError.
_READ_ERRORS = (OSError, EOFError, zlib.error, struct.error)
_UNPICKLE_ERRORS = _READ_ERRORS + (
    pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, MemoryError,
)


def open_regular_file(path: Path):
    """`path` opened for reading if it is a regular file (after links): a FIFO, device or folder is refused
    before a byte is read (opening is non-blocking, so a FIFO with no writer cannot hang the reader)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist; check the data folder.") from None
    except OSError as error:
        raise DatasetError(f"{path} cannot be read ({error.strerror or error}); check the data folder.") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise DatasetError(f"{path} is not a regular file (a device, pipe or folder); point the data folder at the "
                           "genuine data files.")
    return os.fdopen(descriptor, "rb")


def _read_exactly(stream, size: int) -> bytes:
    """Up to `size` bytes, read in chunks so that memory follows the bytes actually there, never a claim."""
    chunks, remaining = [], size
    while remaining and (chunk := stream.read(min(READ_CHUNK_BYTES, remaining))):
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or .gz) as a uint8 array of the dimensions its header declares. The header is read
    first, and no more than the declared size (at most MAX_IDX_BYTES) plus one byte is ever decompressed."""
    path = Path(path)
    compressed = False
    try:
        with open_regular_file(path) as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            with (gzip.GzipFile(fileobj=raw, mode="rb") if compressed else contextlib.nullcontext(raw)) as stream:
                dims = _idx_header(stream, path)
                expected = math.prod(dims)
                if expected > MAX_IDX_BYTES:
                    raise DatasetError(f"{path} declares {' x '.join(map(str, dims))} = {expected:,} bytes, far more "
                                       f"than any of these data sets ({MAX_IDX_BYTES:,}); it is not a genuine data "
                                       f"file, {CORRUPT_ADVICE}.")
                data = _read_exactly(stream, expected + 1)
    except _READ_ERRORS as error:
        kind = "gzip file" if compressed else "file"
        raise DatasetError(f"{path} is not a readable {kind} ({error}); {CORRUPT_ADVICE}.") from None
    if len(data) != expected:
        shape = " x ".join(map(str, dims))
        problem = "is truncated" if len(data) < expected else "has trailing bytes"
        held = f"{len(data)}" if len(data) < expected else "more"
        raise DatasetError(f"{path} {problem}: its header declares {shape} = {expected} bytes but it holds {held}; "
                           f"{CORRUPT_ADVICE}.")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims).copy()


def _idx_header(stream, path: Path) -> tuple[int, ...]:
    """The dimensions an IDX header declares, after checking its magic, type code and dimension count."""
    start = stream.read(4)
    if len(start) < 4 or start[:2] != b"\x00\x00":
        raise DatasetError(f"{path} does not start with the IDX magic (two zero bytes); it is not an IDX file, "
                           f"{CORRUPT_ADVICE}.")
    type_code, num_dims = start[2], start[3]
    if type_code != IDX_UNSIGNED_BYTE:
        raise DatasetError(f"{path} has IDX type code 0x{type_code:02x}, but MNIST-style files hold unsigned bytes "
                           f"(0x08); {CORRUPT_ADVICE}.")
    if not 1 <= num_dims <= IDX_MAX_DIMENSIONS:
        raise DatasetError(f"{path} declares {num_dims} dimensions; an IDX image or label file has 1 to "
                           f"{IDX_MAX_DIMENSIONS}, {CORRUPT_ADVICE}.")
    sizes = stream.read(4 * num_dims)
    if len(sizes) < 4 * num_dims:
        raise DatasetError(f"{path} ends inside its IDX header ({4 + len(sizes)} bytes); {CORRUPT_ADVICE}.")
    return struct.unpack(f">{num_dims}I", sizes)


def read_idx_pair(images_path: Path, labels_path: Path, image_size: tuple[int, int], num_classes: int):
    """(images (N, 1, H, W) uint8, labels (N,) int64) from an IDX image file and its label file."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != tuple(image_size):
        expected = "N x " + " x ".join(map(str, image_size))
        raise DatasetError(f"{images_path} holds an array of shape {images.shape}, not {expected} images; "
                           f"it is not an image file of this data set.")
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path} holds an array of shape {labels.shape}, not one label per image; "
                           f"it is not a label file.")
    if len(labels) != len(images):
        raise DatasetError(f"{labels_path} holds {len(labels)} labels but {images_path} holds {len(images)} images; "
                           f"the two files do not belong together.")
    return images[:, None], _checked_labels(labels, num_classes, labels_path)


def read_cifar_binary(path: Path, label_bytes: int, num_classes: int, records: int | None = None):
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) from a CIFAR binary batch.

    `label_bytes` is 1 for CIFAR-10 and 2 for CIFAR-100 (coarse, fine; the fine label is returned). With
    `records` given the file must hold exactly that many (each CIFAR-10 batch: 10,000 x 3,073 = 30,730,000 bytes).
    """
    path = Path(path)
    record_size = label_bytes + CIFAR_PIXELS
    with open_regular_file(path) as file:
        size = os.fstat(file.fileno()).st_size
    expected = None if records is None else records * record_size
    if size == 0 or size % record_size or (expected is not None and size != expected):
        wanted = f"exactly {expected}" if expected is not None else f"a multiple of {record_size}"
        raise DatasetError(f"{path} is {size} bytes, but a CIFAR binary batch of {record_size}-byte records is "
                           f"{wanted}; it is truncated or not a CIFAR file, {CORRUPT_ADVICE}.")
    try:
        table = np.fromfile(path, dtype=np.uint8).reshape(-1, record_size)
    except (OSError, ValueError) as error:  # ValueError: the file changed size since it was measured
        raise DatasetError(f"{path} cannot be read ({error}); {CORRUPT_ADVICE}.") from None
    labels = table[:, label_bytes - 1].astype(np.int64)
    images = np.ascontiguousarray(table[:, label_bytes:]).reshape(-1, 3, 32, 32)
    return images, _checked_labels(labels, num_classes, path)


# What a CIFAR pickle may build with numpy, and nothing more: numpy's __setstate__ methods trust their input (a
# fuzzed dtype state crashed the interpreter with a segmentation fault), so every state is checked first.
_PLAIN_DTYPES = {"b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"}
_BYTE_ORDERS = {"<", ">", "|", "=", b"<", b">", b"|", b"="}
_ARRAY_CLASS = object()  # stands for numpy.ndarray, which a pickle may name only as _reconstruct's first argument


def _is_flag(value) -> bool:
    """False/True, or 0/1 as numpy of Python 2's day pickled them."""
    return type(value) in (bool, int) and value in (0, 1)


def _plain_dtype(code, align=False, copy=True) -> np.dtype:
    """numpy.dtype(code, align, copy) as a pickled dtype calls it, for plain numeric codes only."""
    code = code.decode("ascii") if isinstance(code, bytes) else code
    if code not in _PLAIN_DTYPES or not _is_flag(align) or not _is_flag(copy):
        raise pickle.UnpicklingError(f"refused numpy.dtype({code!r}): only plain numeric types are loaded")
    return np.dtype(code, align=bool(align), copy=bool(copy))


def _empty_array(subtype, shape, typecode) -> np.ndarray:
    """numpy's _reconstruct as a pickled array calls it: an empty ndarray that BUILD then fills."""
    if subtype is not _ARRAY_CLASS or shape != (0,) or typecode not in (b"b", "b"):
        raise pickle.UnpicklingError("refused numpy _reconstruct arguments other than an empty plain array's")
    return _numpy_reconstruct(np.ndarray, (0,), b"b")


def _valid_state(target, state) -> bool:
    """Whether `state` is what numpy itself pickles for a plain dtype or a contiguous array of one."""
    if isinstance(target, np.dtype):
        return (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in _BYTE_ORDERS
                and state[2:] == (None, None, None, -1, -1, 0))
    if type(target) is np.ndarray and isinstance(state, tuple) and len(state) == 5:
        version, shape, dtype, fortran_order, data = state
        return (version == 1 and isinstance(shape, tuple) and len(shape) <= 8
                and all(type(size) is int and size >= 0 for size in shape)
                and isinstance(dtype, np.dtype) and dtype.str[1:] in _PLAIN_DTYPES and _is_flag(fortran_order)
                and isinstance(data, bytes) and len(data) == math.prod(shape) * dtype.itemsize)
    return False


class RestrictedUnpickler(pickle._Unpickler):
    """Resolves only the globals a CIFAR pickle needs; any other global is refused before it can run, and the
    state numpy objects are given is checked before numpy sees it.

    A CIFAR batch written by Python 2's numpy references numpy.core.multiarray._reconstruct, numpy.ndarray
    and numpy.dtype. A file re-written with protocol 2 by Python 3 also encodes bytes as
    `_codecs.encode(text, "latin1")`, allowed for latin-1 only.

    It extends the pure-Python unpickler, not the C one: the C unpickler keeps its memo in an array as long
    as the largest memo index the file names, and zeroes it, so five bytes (LONG_BINPUT 1,400,000,000) make it
    write 20 GB. The Python one keeps a dict. A CIFAR batch is a few large opcodes, so the cost is small.
    """

    @staticmethod
    def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
        if encoding != "latin1":
            raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
        return codecs.encode(text, encoding)

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _empty_array,
        ("numpy._core.multiarray", "_reconstruct"): _empty_array,
        ("numpy", "ndarray"): _ARRAY_CLASS,
        ("numpy", "dtype"): _plain_dtype,
        ("_codecs", "encode"): _latin1_encode,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load the global {module}.{name}") from None

    def load_build(self):
        """BUILD (`target.__setstate__(state)`) only with the state numpy pickles for a dtype or an array."""
        state, target = self.stack[-1], self.stack[-2]
        if not _valid_state(target, state):
            raise pickle.UnpicklingError(f"refused the state given to a {type(target).__name__}")
        super().load_build()

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: load_build}


def load_restricted_pickle(path: Path) -> object:
    """The object in a pickle file, unpickled with `RestrictedUnpickler` and Python 2 strings as bytes."""
    path = Path(path)
    try:
        with open_regular_file(path) as stream:
            return RestrictedUnpickler(stream, encoding="bytes").load()
    except _UNPICKLE_ERRORS as error:
        raise DatasetError(f"{path} is not a valid CIFAR pickle ({type(error).__name__}: {error}); papernets loads "
                           f"only plain numpy arrays and lists from it, {CORRUPT_ADVICE}.") from None


def _entry(batch: dict, key: str):
    """batch[b"key"], or batch["key"] for a file pickled with str keys; None when absent."""
    return batch.get(key.encode(), batch.get(key))


def read_cifar_python(path: Path, label_key: str, num_classes: int, records: int | None = None):
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) from a CIFAR python-release batch.

    `label_key` is "labels" for CIFAR-10 and "fine_labels" for CIFAR-100.
    """
    batch = load_restricted_pickle(path)
    if not isinstance(batch, dict):
        raise DatasetError(f"{path} holds a {type(batch).__name__}, not the dict of a CIFAR batch; {CORRUPT_ADVICE}.")
    data, labels = _entry(batch, "data"), _entry(batch, label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_PIXELS:
        found = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else repr(type(data))
        raise DatasetError(f"{path} has 'data' as a {found}, not a uint8 array of N x {CIFAR_PIXELS}; "
                           f"{CORRUPT_ADVICE}.")
    if records is not None and len(data) != records:
        raise DatasetError(f"{path} holds {len(data)} images where the release has {records}; {CORRUPT_ADVICE}.")
    if not isinstance(labels, list) or not all(isinstance(label, int) for label in labels):
        raise DatasetError(f"{path} has no list of integer labels under {label_key!r}; it is not a batch of this "
                           f"data set, {CORRUPT_ADVICE}.")
    if len(labels) != len(data):
        raise DatasetError(f"{path} holds {len(labels)} labels for {len(data)} images; {CORRUPT_ADVICE}.")
    # Checked before the int64 conversion, which a label beyond 64 bits would crash.
    if (label := next((label for label in labels if not 0 <= label < num_classes), None)) is not None:
        raise DatasetError(f"{path} holds label {label} (labels must lie in 0..{num_classes - 1}); it does not belong "
                           f"to this data set, {CORRUPT_ADVICE}.")
    images = np.ascontiguousarray(data).reshape(-1, 3, 32, 32)
    return images, _checked_labels(np.asarray(labels, dtype=np.int64), num_classes, path)


def _checked_labels(labels: np.ndarray, num_classes: int, path: Path) -> np.ndarray:
    labels = labels.astype(np.int64)
    out_of_range = labels[(labels < 0) | (labels >= num_classes)]
    if len(out_of_range):
        raise DatasetError(f"{path} holds label {int(out_of_range[0])} (labels must lie in 0..{num_classes - 1}); "
                           f"it does not belong to this data set, {CORRUPT_ADVICE}.")
    return labels

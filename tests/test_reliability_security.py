"""Nothing runs that shouldn't: pickles that would run code (in checkpoints and CIFAR batches) are refused before
any of it runs, by every command that reads them; no code path can unpickle without a restriction; archives whose
members would land outside the extraction folder are refused whole.
"""

import ast
import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import papernets
from papernets.cli import main
from papernets.data import load_dataset
from papernets.data.catalog import CIFAR10_PYTHON
from papernets.data.locate import extract_archive_folder, extract_tar_safely
from papernets.data.readers import read_cifar_python
from papernets.errors import CheckpointError, DatasetError
from papernets.runs import checkpoint
from papernets.runs.checkpoint import load_checkpoint
from conftest import dataset_flags

PACKAGE = Path(papernets.__file__).parent


class Payload:
    """Unpickling this object calls `function(*arguments)`: the classic pickle code-execution payload."""

    def __init__(self, function, *arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


def payloads(marker: Path) -> dict[str, Payload]:
    """Ways a pickle can write `marker`: shell, exec, eval, a subprocess, a plain file write."""
    command = f"touch {marker}"
    return {
        "os.system": Payload(os.system, command),
        "exec": Payload(exec, f"open({str(marker)!r}, 'w').write('ran')"),
        "eval": Payload(eval, f"open({str(marker)!r}, 'w').write('ran')"),
        "subprocess": Payload(__import__("subprocess").call, ["touch", str(marker)]),
        "numpy.save": Payload(np.save, str(marker), np.zeros(1)),
    }


PAYLOAD_NAMES = list(payloads(Path("m")))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "marker"


def assert_live(data: bytes, marker: Path):
    """The payload really runs under a plain unpickler (so a refusal below is a refusal, not a dud)."""
    pickle.loads(data)
    assert marker.exists() or marker.with_suffix(".npy").exists()
    marker.unlink(missing_ok=True)
    marker.with_suffix(".npy").unlink(missing_ok=True)


def assert_nothing_ran(marker: Path):
    assert not marker.exists() and not marker.with_suffix(".npy").exists()


# ---------------------------------------------------------------------------------------------------- checkpoints

def hostile_checkpoint(path: Path, payload: Payload) -> Path:
    """A file that looks like a papernets checkpoint (format, a real model's weights) with a payload inside."""
    from papernets.models import create_model

    state = create_model("lenet5_modern", num_classes=10, input_size=(1, 28, 28)).state_dict()
    torch.save({"format": checkpoint.FORMAT, "model": "lenet5_modern", "model_state": state, "config": payload,
                "checksum": "0" * 64}, path)
    return path


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(name, tmp_path, marker):
    path = hostile_checkpoint(tmp_path / "best.pt", payloads(marker)[name])
    assert_live_checkpoint(path, marker)
    with pytest.raises(CheckpointError, match="is refused"):
        load_checkpoint(path)
    assert_nothing_ran(marker)


def assert_live_checkpoint(path: Path, marker: Path):
    torch.load(path, weights_only=False)  # what papernets never does: the payload runs
    assert marker.exists() or marker.with_suffix(".npy").exists()
    marker.unlink(missing_ok=True)
    marker.with_suffix(".npy").unlink(missing_ok=True)


@pytest.mark.real_data("fashion-mnist")
def test_every_command_that_reads_a_checkpoint_refuses_a_hostile_one(tmp_path, marker, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    path = hostile_checkpoint((run_dir / "checkpoints").mkdir(parents=True) or run_dir / "checkpoints" / "last.pt",
                              payloads(marker)["os.system"])
    (run_dir / "checkpoints" / "best.pt").write_bytes(path.read_bytes())
    image = tmp_path / "shirt.png"
    from PIL import Image

    Image.new("L", (28, 28)).save(image)
    commands = [
        ["eval", "--checkpoint", str(path)],
        ["eval", "--checkpoint", str(run_dir)],
        ["predict", "--checkpoint", str(path), str(image)],
        ["train", "--resume", str(run_dir)],
        ["train", "--model", "lenet5_modern", *dataset_flags("fashion-mnist"), "--epochs", "1", "--teacher", str(path),
         "--output", str(tmp_path / "runs"), "--set", "train_size=64", "val_size=64", "test_size=64"],
    ]
    for command in commands:
        assert main(command) == 2, command
        error = capsys.readouterr().err
        assert "is refused" in error and error.strip().splitlines()[-1].startswith("error: "), (command, error)
        assert_nothing_ran(marker)


# ---------------------------------------------------------------------------------------------------- CIFAR batches

def cifar_batch(payload: Payload | None = None, count: int = 4) -> dict:
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": [index % 10 for index in range(count)],
             b"data": np.zeros((count, 3072), np.uint8), b"filenames": [b"x.png"] * count}
    if payload is not None:
        batch[b"batch_label"] = payload
    return batch


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_a_cifar_batch_that_would_run_code_is_refused_and_nothing_runs(name, protocol, tmp_path, marker):
    data = pickle.dumps(cifar_batch(payloads(marker)[name]), protocol=protocol)
    assert_live(data, marker)
    path = tmp_path / "data_batch_1"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match="refused to load the global"):
        read_cifar_python(path, "labels", 10)
    assert_nothing_ran(marker)


def test_load_dataset_refuses_a_hostile_batch_among_genuine_ones(tmp_path, marker):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in CIFAR10_PYTHON["train"] + CIFAR10_PYTHON["test"]:
        (folder / name).write_bytes(pickle.dumps(cifar_batch(count=10), protocol=2))
    hostile = folder / CIFAR10_PYTHON["train"][0]  # read first: the genuine-looking rest is never reached
    hostile.write_bytes(pickle.dumps(cifar_batch(payloads(marker)["exec"], count=10000), protocol=2))
    with pytest.raises(DatasetError, match=f"{hostile} is not a valid CIFAR pickle"):
        load_dataset("cifar10", data_dir=tmp_path)
    assert_nothing_ran(marker)


def test_the_numpy_globals_a_cifar_pickle_may_name_cannot_be_turned_into_code(tmp_path, marker):
    """Only numpy's array reconstruction is allowed: an object array (which would unpickle its items with
    the full unpickler) and numpy functions other than the three allowed are refused."""
    object_array = np.array([payloads(marker)["exec"]], dtype=object)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(cifar_batch() | {b"data": object_array}, protocol=2))
    with pytest.raises(DatasetError):
        read_cifar_python(path, "labels", 10)
    path.write_bytes(pickle.dumps(cifar_batch(Payload(np.load, str(tmp_path / "x.npy"), True)), protocol=2))
    with pytest.raises(DatasetError, match="refused to load the global numpy"):
        read_cifar_python(path, "labels", 10)
    assert_nothing_ran(marker)


# ---------------------------------------------------------------------------------------------------- the source

def calls_in_package():
    """(file, line, dotted function name, keywords) of every call in papernets' source."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                yield path, node.lineno, ast.unparse(node.func), {kw.arg: kw.value for kw in node.keywords}


def test_no_code_path_loads_with_weights_only_false():
    offenders = [f"{path}:{number}" for path in PACKAGE.rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if "weights_only=False" in line.replace(" ", "")]
    assert offenders == []


def test_every_torch_load_passes_weights_only_true_and_nothing_calls_pickle_load():
    torch_loads, pickle_loads, numpy_pickles = [], [], []
    for path, line, function, keywords in calls_in_package():
        where = f"{path.relative_to(PACKAGE.parent)}:{line}"
        if function.endswith("torch.load") or function == "load" and "weights_only" in keywords:
            weights_only = keywords.get("weights_only")
            torch_loads.append(where)
            assert isinstance(weights_only, ast.Constant) and weights_only.value is True, f"{where}: {function}"
        if function in ("pickle.load", "pickle.loads", "pickle.Unpickler", "cPickle.load", "dill.load",
                        "marshal.loads", "shelve.open", "yaml.load"):
            pickle_loads.append(where)
        allow_pickle = keywords.get("allow_pickle")
        if allow_pickle is not None and not (isinstance(allow_pickle, ast.Constant) and allow_pickle.value is False):
            numpy_pickles.append(where)
    assert torch_loads, "the checkpoint loader's torch.load was not found: the scan is broken"
    assert pickle_loads == [] and numpy_pickles == []


def test_the_only_unpickler_is_the_restricted_one():
    """Subclasses of pickle.Unpickler must override find_class; that is the one place an unpickler is built."""
    subclasses = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any("Unpickler" in ast.unparse(base) for base in node.bases):
                methods = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
                subclasses.append((node.name, "find_class" in methods))
    assert subclasses == [("RestrictedUnpickler", True)]


# ---------------------------------------------------------------------------------------------------- archives

def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


def archive_with(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"data") if info.isfile() else None)
    return path


GENUINE = member("cifar-10-batches-py/data_batch_1")
UNSAFE_MEMBERS = {
    "dot-dot": [member("cifar-10-batches-py/../../escaped")],
    "dot-dot-first": [member("../escaped")],
    "absolute": [member("/tmp/papernets-escaped-absolute")],
    "symlink-outside": [member("cifar-10-batches-py/link", tarfile.SYMTYPE, "../../outside")],
    "symlink-absolute": [member("cifar-10-batches-py/link", tarfile.SYMTYPE, "/etc")],
    "symlink-then-write-through-it": [member("cifar-10-batches-py/up", tarfile.SYMTYPE, ".."),
                                      member("cifar-10-batches-py/up/../escaped")],
    "hardlink-outside": [member("cifar-10-batches-py/hard", tarfile.LNKTYPE, "/etc/passwd")],
    "device": [member("cifar-10-batches-py/null", tarfile.CHRTYPE)],
    "fifo": [member("cifar-10-batches-py/pipe", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", UNSAFE_MEMBERS)
def test_an_archive_with_a_member_outside_the_folder_is_refused_whole(case, tmp_path):
    archive = archive_with(tmp_path / "cifar.tar.gz", GENUINE, *UNSAFE_MEMBERS[case])
    cache = tmp_path / "cache"
    cache.mkdir()
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(DatasetError, match=f"Refused to extract {archive}"):
        extract_archive_folder(archive, cache, "cifar-10-batches-py")
    assert sorted(tmp_path.rglob("*")) == before  # nothing extracted, staging removed, nothing escaped
    assert not Path("/tmp/papernets-escaped-absolute").exists()


def test_a_symlink_even_inside_the_folder_is_refused(tmp_path):
    """The genuine releases hold no links, so extraction refuses every one (issue 17: a chain of links past
    PATH_MAX passed the old check, which allowed links that stayed inside the folder)."""
    archive = archive_with(tmp_path / "cifar.tar.gz", GENUINE,
                           member("cifar-10-batches-py/alias", tarfile.SYMTYPE, "data_batch_1"))
    with pytest.raises(DatasetError, match="is a link to 'data_batch_1'"):
        extract_tar_safely(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_corrupt_archive_is_a_dataset_error(tmp_path):
    archive = archive_with(tmp_path / "cifar.tar.gz", GENUINE)
    for data in (b"", b"\x1f\x8b" + os.urandom(64), archive.read_bytes()[:40]):
        archive.write_bytes(data)
        with pytest.raises(DatasetError, match="not a readable tar archive"):
            extract_tar_safely(archive, tmp_path / "out")


# A 60-byte pickle that crashes the interpreter (SIGSEGV in numpy 2.4) when numpy's dtype.__setstate__ gets the
# state (3, 'N', None, -1, -1, 0); found by reliability/fuzz.py.
DTYPE_STATE_THAT_CRASHES_NUMPY = (b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87R"
                                  b"(K\x03X\x01\x00\x00\x00NNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb.")


def run_python(program: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", program, *arguments], capture_output=True, text=True, timeout=120)


def test_numpy_state_that_would_crash_the_interpreter_is_refused_before_numpy_sees_it(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(DTYPE_STATE_THAT_CRASHES_NUMPY)
    plain = run_python("import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())", str(path))
    assert plain.returncode != 0  # live: a plain unpickler dies (-11) or at least fails
    restricted = run_python("import sys\nfrom papernets.data.readers import read_cifar_python\n"
                            "from papernets.errors import DatasetError\n"
                            "try:\n    read_cifar_python(sys.argv[1], 'labels', 10)\n"
                            "except DatasetError as error:\n    print(error)\n", str(path))
    assert restricted.returncode == 0 and "refused the state given to a" in restricted.stdout, restricted


def test_a_batch_pickled_by_python_2_and_old_numpy_still_loads(tmp_path):
    """Protocol 0 as cPickle wrote it, with numpy.dtype('u1', 0, 1): ints for flags, as numpy of that day did."""
    path = tmp_path / "data_batch_1"
    path.write_bytes(
        b"(dp0\nS'data'\np1\ncnumpy.core.multiarray\n_reconstruct\np2\n(cnumpy\nndarray\np3\n(I0\ntp4\nS'b'\np5\n"
        b"tp6\nRp7\n(I1\n(I2\nI3072\ntp8\ncnumpy\ndtype\np9\n(S'u1'\np10\nI0\nI1\ntp11\nRp12\n(I3\nS'|'\np13\nNNNI-1\n"
        b"I-1\nI0\ntp14\nbI00\nS'" + b"\\x07" * 6144 + b"'\np15\ntp16\nbsS'labels'\np17\n(lp18\nI1\naI9\nas.")
    images, labels = read_cifar_python(path, "labels", 10)
    assert images.shape == (2, 3, 32, 32) and (images == 7).all() and labels.tolist() == [1, 9]


@pytest.mark.parametrize("batch", [
    {b"data": np.zeros((2, 3072), dtype=">u2"), b"labels": [1, 2]},        # a byte-swapped array: wrong dtype
    {b"data": np.zeros((2, 3072), dtype=np.uint8)[:, ::2], b"labels": [1, 2]},  # a strided view
    {b"data": np.array(["a", "b"]), b"labels": [1, 2]},                      # a string array
], ids=["big-endian-uint16", "strided", "strings"])
def test_arrays_other_than_plain_uint8_are_refused_with_a_dataset_error(batch, tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetError):
        read_cifar_python(path, "labels", 10)

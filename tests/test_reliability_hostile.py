"""Hostile inputs, round two (issue 17): one hypothesis property per class of attack, at the boundary that
refuses it, plus the attacks the red team used as fixed regressions.

Classes: 1 archives, 2 checkpoint payloads, 3 image files, 4 config values, 5 data folders, 6 run folders that
would overwrite runs, 7 atomic writes, 8 writes through planted symlinks, 9 damaged best.pt and odd run-folder
files (with downloads and IDX sizes), 10 two writers of one run. Classes 2 and 6-10 live in
tests/test_reliability_runs.py, beside the run-folder code they exercise.
"""

import gzip
import io
import os
import struct
import sys
import tarfile
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from papernets.analysis.predict import MAX_IMAGE_PIXELS, ImageFileError, read_image
from papernets.data import DATASETS, load_dataset, locate
from papernets.data.locate import extract_tar_safely
from papernets.data.readers import read_idx
from papernets.errors import ConfigError, DatasetError, ModelError
from papernets.config import AUGMENTATION_RANGES, FIELD_RANGES, FIELD_TYPES, load_config, parse_overrides
from generated_data import peak_memory
from test_data_readers import idx_bytes, write_mnist_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
import fuzz  # noqa: E402  (a script folder, not part of the installed package)

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------------------------------- 1. archives

def tar_archive(path: Path, members: list[tarfile.TarInfo], contents: dict[str, bytes] | None = None) -> Path:
    contents = contents or {}
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            data = contents.get(member.name, b"")
            if member.isfile():
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, link
    return member


def snapshot(folder: Path) -> list[tuple[str, bool]]:
    return sorted((str(path.relative_to(folder)), path.is_symlink()) for path in folder.rglob("*"))


NAME_PARTS = ["a", "b", "..", ".", "", "/", "link", "cifar-10-batches-py", "x" * 300]
MEMBER_KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE,
                tarfile.CHRTYPE]


@PROPERTY
@given(members=st.lists(st.tuples(st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=4),
                                  st.sampled_from(MEMBER_KINDS),
                                  st.lists(st.sampled_from(NAME_PARTS), max_size=4), st.binary(max_size=64)),
                        min_size=1, max_size=6))
def test_class_1_no_archive_writes_outside_its_folder_or_extracts_a_link(tmp_path_factory, members):
    root = tmp_path_factory.mktemp("archive")
    (root / "outside").mkdir()
    (root / "outside" / "precious").write_bytes(b"the user's")
    infos, contents = [], {}
    for parts, kind, link_parts, data in members:
        info = tar_member("/".join(parts), kind, "/".join(link_parts))
        infos.append(info)
        contents[info.name] = data
    archive = tar_archive(root / "hostile.tar.gz", infos, contents)
    before = snapshot(root)
    destination = root / "out"
    try:
        extract_tar_safely(archive, destination)
    except DatasetError:
        pass
    after = snapshot(root)
    assert [entry for entry in after if not entry[0].startswith("out")] == \
        [entry for entry in before if not entry[0].startswith("out")]
    assert (root / "outside" / "precious").read_bytes() == b"the user's"
    assert not any(is_link for _, is_link in snapshot(destination)) if destination.exists() else True


def test_class_1_a_symlink_chain_past_path_max_is_refused(tmp_path):
    """The CVE-2025-4517 pattern: a chain of symlinks whose resolution exceeds PATH_MAX, then a link through it
    that points out; both the old lexical check and tarfile's data filter passed it on this Python."""
    step = "d" * 247
    members, path = [], ""
    for index in range(16):
        members += [tar_member(f"{path}{step}", tarfile.DIRTYPE), tar_member(f"{path}l{index}", tarfile.SYMTYPE, step)]
        path += f"{step}/"
    members.append(tar_member("escape", tarfile.SYMTYPE, "/".join(f"l{index}" for index in range(16)) +
                              "/" + "../" * 16 + "../outside"))
    members.append(tar_member("escape/file"))
    archive = tar_archive(tmp_path / "chain.tar.gz", members)
    with pytest.raises(DatasetError, match=r"is a link to .* \(the genuine releases hold no links\)"):
        extract_tar_safely(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "outside").exists()


def test_class_1_the_extracted_size_is_capped_before_anything_is_written(tmp_path):
    archive = tar_archive(tmp_path / "bomb.tar.gz", [tar_member("cifar-10-batches-py/data_batch_1")],
                          {"cifar-10-batches-py/data_batch_1": bytes(3 * 2**20)})
    assert archive.stat().st_size < 20_000  # a small archive that would extract to 3 MB
    with pytest.raises(DatasetError, match=r"hold 3,145,728 bytes, more than any release"):
        extract_tar_safely(archive, tmp_path / "out", max_bytes=2**20)
    assert not (tmp_path / "out").exists()


def test_class_1_a_link_already_in_the_destination_is_never_followed(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "cifar-10-batches-py").symlink_to(tmp_path / "elsewhere")
    archive = tar_archive(tmp_path / "good.tar.gz", [tar_member("cifar-10-batches-py/data_batch_1")],
                          {"cifar-10-batches-py/data_batch_1": b"data"})
    with pytest.raises(DatasetError, match="not a readable tar archive"):
        extract_tar_safely(archive, tmp_path / "out")
    assert list((tmp_path / "elsewhere").iterdir()) == []


# ------------------------------------------------------------------------------------------- 3. image files

def png_declaring(width: int, height: int, bit_depth: int = 1, colour_type: int = 0) -> bytes:
    """A PNG whose header declares width x height pixels, with a tiny IDAT (most of the image is missing)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000)))
            + chunk(b"IEND", b""))


def gif_declaring(width: int, height: int) -> bytes:
    """A GIF whose logical screen and one image declare width x height pixels."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return screen + image + b"\x3b"


IMAGE_SEEDS = fuzz.image_bytes()  # a small image in every format predict decodes
MUTATION_OPERATIONS = st.lists(st.tuples(st.sampled_from(fuzz.MUTATIONS), st.floats(0, 0.3),
                                         st.binary(min_size=1, max_size=12)), min_size=1, max_size=4)


@PROPERTY
@given(seed=st.sampled_from(IMAGE_SEEDS), operations=MUTATION_OPERATIONS,
       input_size=st.sampled_from([(1, 28, 28), (3, 32, 32)]))
def test_class_3_a_mutated_image_header_decodes_or_is_one_sentence(tmp_path_factory, seed, operations, input_size):
    path = tmp_path_factory.mktemp("image") / "mutated.png"
    path.write_bytes(fuzz.apply_mutations(seed, operations))
    try:
        pixels = read_image(path, input_size)
    except ImageFileError as error:
        assert "\n" not in str(error) and str(path) in str(error)
    else:
        assert pixels.shape == input_size and pixels.dtype == np.uint8


@pytest.mark.parametrize("data", [png_declaring(30000, 30000), png_declaring(65535, 65535, 8, 2),
                                  gif_declaring(65535, 65535), png_declaring(8193, 8192, 8, 0)],
                         ids=["png-30000-1bit", "png-65535-rgb", "gif-65535-screen", "png-just-over-the-cap"])
def test_class_3_an_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, data):
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    refusal = pytest.raises(ImageFileError, match=f"pixels.* than the {MAX_IMAGE_PIXELS:,} papernets decodes")
    with peak_memory() as memory, refusal:
        read_image(path, (1, 28, 28))
    assert memory["peak"] < 10 * 2**20


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_class_3_a_fifo_folder_or_device_is_refused_without_hanging(tmp_path, kind):
    path = tmp_path / "image.png"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    outcome = []

    def read():
        try:
            read_image(path, (1, 28, 28))
        except ImageFileError as error:
            outcome.append(str(error))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert outcome and f"is a {'pipe' if kind == 'fifo' else kind}" in outcome[0]


def test_class_3_a_format_outside_the_list_is_refused(tmp_path):
    path = tmp_path / "image.ico"
    Image.new("RGB", (16, 16)).save(path, format="ICO")
    with pytest.raises(ImageFileError, match="not a PNG, JPEG, BMP, GIF, TIFF, WEBP, PPM file"):
        read_image(path, (1, 28, 28))


# ------------------------------------------------------------------------------------------- 4. config values

def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


FIELD_VALUES = st.one_of(
    st.integers(-2**70, 2**70).map(str), st.sampled_from(["-1", "4294967296", "100000", "2000", "1e308", "-1e308",
                                                          "true", "false", "nan", "inf", "0", "1", "0.5", "-0.5"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=12).map(repr),
    st.integers(1, 6000).map(nested), st.just("x" * 5000), st.just('"runs/../.."'), st.just('"a/b"'),
    st.just('"\\u0000"'), st.just("[1, 28, 28]"))
FIELD_NAMES = st.sampled_from(sorted(FIELD_TYPES) + [f"augmentation.{name}" for name in ("pad", "cutout", "flip")]
                              + [f"model_options.{name}" for name in ("num_classes", "input_size", "in_channels",
                                                                     "width_multiplier", "dropout")])


@PROPERTY
@given(pairs=st.lists(st.tuples(FIELD_NAMES, FIELD_VALUES).map("=".join), min_size=1, max_size=3))
def test_class_4_every_value_is_in_its_range_or_one_sentence(pairs):
    try:
        config = load_config("fast-fashion-mnist", parse_overrides(pairs))
    except ConfigError as error:
        assert "\n" not in str(error)
        return
    for name, (low, high) in FIELD_RANGES.items():
        value = getattr(config, name)
        assert value is None or all(low <= item <= high for item in (value if isinstance(value, list) else [value]))
    for name, (low, high) in AUGMENTATION_RANGES.items():
        assert low <= config.augmentation.get(name, low) <= high
    assert not set(config.model_options) & {"num_classes", "input_size", "in_channels"}
    assert all(len(part.encode()) <= 200 for part in Path(config.output).parts)
    assert "/" not in config.run_name and config.run_name not in (".", "..")
    np.random.default_rng(config.seed)  # numpy takes every seed that passes


@pytest.mark.parametrize("pairs", [["seed=-1"], ["seed=4294967296"], ["epochs=true"], ["lr=1e308"],
                                   ["optimizer_eps=-1"], ["threads=100000"], ["augmentation.pad=2000"],
                                   ["augmentation.pad=100000"], ["model_options.num_classes=5"],
                                   ["model_options.input_size=[1,28,28]"], [f"lr={nested(5000)}"],
                                   [f"output={'x' * 5000}"], ["run_name=../.."], ["model_options.width=[[1]]"]])
def test_class_4_the_red_teams_values_are_one_sentence(pairs):
    with pytest.raises(ConfigError) as caught:
        load_config("fast-fashion-mnist", parse_overrides(pairs))
    assert "\n" not in str(caught.value)


def test_class_4_a_recipe_nested_thousands_deep_is_one_sentence(tmp_path):
    recipe = tmp_path / "deep.toml"
    recipe.write_text(f'model = "lenet5"\ndataset = "mnist"\nepochs = 1\nmilestones = {nested(5000)}\n')
    with pytest.raises(ConfigError, match="nests arrays or tables too deeply"):
        load_config(str(recipe))


def test_class_4_a_string_width_multiplier_is_refused_by_the_model_registry():
    from papernets.models import create_model

    with pytest.raises(ModelError, match="width_multiplier must be of type float or int; got 'wide'"):
        create_model("mobilenet_v1", num_classes=10, input_size=(3, 32, 32), width_multiplier="wide")


def test_class_4_padding_larger_than_the_image_is_refused_before_a_batch_is_allocated(tmp_path):
    from generated_data import generated_dataset
    from papernets.training.engine import train

    config = load_config(None, {"model": "lenet5_modern", "dataset": "generated", "epochs": 1, "val_size": 0,
                                "batch_size": 32, "output": str(tmp_path), "quiet": True, "report": False,
                                "augmentation": {"pad": 13, "crop": True, "flip": False, "cutout": 0}})
    with pytest.raises(ConfigError, match="augmentation.pad is 13 pixels, more than the 12-pixel images"):
        train(config, dataset=generated_dataset())
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- 5. data folders

FILE_STATES = ["genuine", "missing", "dev-zero", "fifo", "folder", "truncated", "gzip-bomb"]
IDX_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]


def spoil(path: Path, state: str) -> None:
    """Replace a genuine .gz IDX file by a hostile one."""
    genuine = path.read_bytes()
    path.unlink()
    if state == "genuine":
        path.write_bytes(genuine)
    elif state == "dev-zero":
        path.symlink_to("/dev/zero")
    elif state == "fifo":
        os.mkfifo(path)
    elif state == "folder":
        path.mkdir()
    elif state == "truncated":
        path.write_bytes(genuine[:len(genuine) // 2])
    elif state == "gzip-bomb":  # the genuine header, then megabytes of zeros: a tiny file
        header = gzip.decompress(genuine)[:16]
        path.write_bytes(gzip.compress(header + bytes(8 * 2**20)))


@PROPERTY
@given(states=st.lists(st.sampled_from(FILE_STATES), min_size=4, max_size=4))
def test_class_5_a_named_data_folder_is_used_or_refused_never_replaced(tmp_path_factory, states):
    root = tmp_path_factory.mktemp("data")
    write_mnist_folder(root / "system" / "fashion-mnist", 10, 4)  # a complete copy papernets must not fall back to
    write_mnist_folder(root / "named", 10, 4)
    for name, state in zip(IDX_NAMES, states):
        spoil(root / "named" / f"{name}.gz", state)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(locate, "SYSTEM_ROOTS", (root / "system",))
        patch.delenv("PAPERNETS_DATA", raising=False)
        patch.setitem(DATASETS, "fashion-mnist", DATASETS["fashion-mnist"].__class__(
            **{**DATASETS["fashion-mnist"].__dict__, "train_size": 10, "test_size": 4}))
        try:
            dataset = load_dataset("fashion-mnist", data_dir=root / "named")
        except DatasetError as error:
            assert "\n" not in str(error) and str(root / "named") in str(error)
            assert set(states) != {"genuine"}
        else:
            assert set(states) == {"genuine"} and dataset.origin == "--data-dir"
            assert dataset.source == root / "named"


def test_class_5_a_gzip_bomb_is_read_only_to_its_declared_size(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    declared = idx_bytes(np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(gzip.compress(declared + bytes(64 * 2**20)))
    with peak_memory() as memory, pytest.raises(DatasetError, match="has trailing bytes"):
        read_idx(path)
    assert memory["peak"] < 4 * 2**20  # the declared 7,840 bytes and a read buffer, not the 64 MB inside


def test_class_5_a_header_declaring_a_huge_array_is_refused_unread(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 2**31, 2**16, 2**16))
    with pytest.raises(DatasetError, match="far more than any of these data sets"):
        read_idx(path)

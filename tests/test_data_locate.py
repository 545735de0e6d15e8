"""Finding files in every supported layout and place, downloading with checksums, safe extraction, and the
real Fashion-MNIST from Debian's package."""

import dataclasses
import functools
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from papernets.data import DATASETS, load_dataset
from papernets.data import locate
from papernets.data.locate import extract_tar_safely
from papernets.errors import DatasetError
from test_data_readers import (
    write_cifar_binary_folder,
    write_cifar_python_folder,
    write_idx,
    write_mnist_folder,
)



@pytest.fixture(autouse=True)
def isolated_places(tmp_path, monkeypatch):
    """No PAPERNETS_DATA, an empty system root and a private cache, unless a test sets them."""
    monkeypatch.delenv("PAPERNETS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(locate, "SYSTEM_ROOTS", (tmp_path / "system",))
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(variable, "*")  # the download tests talk to 127.0.0.1 directly


def small(monkeypatch, name: str, train: int, test: int, **changes) -> None:
    """Replace a catalog entry by one with small split sizes (and other changes) for this test."""
    spec = dataclasses.replace(DATASETS[name], train_size=train, test_size=test, **changes)
    monkeypatch.setitem(DATASETS, name, spec)


# ---------------------------------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("gz", [True, False])
def test_data_dir_holding_the_idx_files(tmp_path, monkeypatch, gz):
    small(monkeypatch, "mnist", 20, 5)
    arrays = write_mnist_folder(tmp_path / "files", 20, 5, gz=gz)
    dataset = load_dataset("mnist", data_dir=tmp_path / "files")
    assert dataset.source == tmp_path / "files" and dataset.origin == "--data-dir"
    assert dataset.train_images.shape == (20, 1, 28, 28) and dataset.test_images.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(dataset.train_images[:, 0], arrays["train"][0])
    np.testing.assert_array_equal(dataset.test_labels, arrays["t10k"][1])
    assert dataset.train_labels.dtype == np.int64 and dataset.class_names[3] == "3"


@pytest.mark.parametrize(("name", "layout"), [("mnist", "MNIST/raw"), ("fashion-mnist", "FashionMNIST/raw")])
def test_torchvision_idx_layouts(tmp_path, monkeypatch, name, layout):
    small(monkeypatch, name, 10, 4)
    write_mnist_folder(tmp_path / "root" / layout, 10, 4, gz=False)
    dataset = load_dataset(name, data_dir=tmp_path / "root")
    assert dataset.source == tmp_path / "root" / layout


@pytest.mark.parametrize(
    ("name", "classes", "layout", "writer"),
    [
        ("cifar10", 10, "cifar-10-batches-py", write_cifar_python_folder),
        ("cifar100", 100, "cifar-100-python", write_cifar_python_folder),
        ("cifar10", 10, "cifar-10-batches-bin", write_cifar_binary_folder),
        ("cifar100", 100, "cifar-100-binary", write_cifar_binary_folder),
    ],
)
def test_cifar_layouts(tmp_path, monkeypatch, name, classes, layout, writer):
    files = 5 if classes == 10 else 1
    small(monkeypatch, name, 4 * files, 4)
    arrays = writer(tmp_path / "root" / layout, classes, per_file=4)
    dataset = load_dataset(name, data_dir=tmp_path / "root")
    assert dataset.source == tmp_path / "root" / layout
    assert dataset.train_images.shape == (4 * files, 3, 32, 32) and dataset.test_images.shape == (4, 3, 32, 32)
    first_file = next(iter(arrays.values()))
    np.testing.assert_array_equal(dataset.train_images[:4], first_file[0])
    np.testing.assert_array_equal(dataset.train_labels[:4], first_file[1])
    assert dataset.num_classes == classes


def test_cifar_count_different_from_the_release_is_refused(tmp_path, monkeypatch):
    small(monkeypatch, "cifar10", 50, 10)
    write_cifar_python_folder(tmp_path / "cifar-10-batches-py", 10, per_file=4)
    with pytest.raises(DatasetError, match="holds 4 images where the release has 10"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_search_order_data_dir_then_environment_then_system_then_cache(tmp_path, monkeypatch):
    small(monkeypatch, "fashion-mnist", 10, 4)
    places = {
        "cache": tmp_path / "xdg-cache" / "papernets" / "fashion-mnist",
        "system folder": tmp_path / "system" / "fashion-mnist",
        "PAPERNETS_DATA": tmp_path / "environment" / "FashionMNIST" / "raw",
        "--data-dir": tmp_path / "explicit",
    }
    monkeypatch.setenv("PAPERNETS_DATA", str(tmp_path / "environment"))
    for origin, folder in places.items():
        write_mnist_folder(folder, 10, 4, gz=False)
        data_dir = tmp_path / "explicit" if origin == "--data-dir" else None
        dataset = load_dataset("fashion-mnist", data_dir=data_dir)
        assert (dataset.origin, dataset.source) == (origin, folder)


def test_environment_root_itself_is_not_taken_for_a_data_set(tmp_path, monkeypatch):
    """MNIST and Fashion-MNIST share file names: a shared root must say which one by a folder name."""
    write_mnist_folder(tmp_path / "environment", 10, 4)
    monkeypatch.setenv("PAPERNETS_DATA", str(tmp_path / "environment"))
    with pytest.raises(DatasetError, match="was not found"):
        load_dataset("mnist")


def test_not_found_message_names_places_and_the_three_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERNETS_DATA", str(tmp_path / "environment"))
    with pytest.raises(DatasetError) as caught:
        load_dataset("fashion-mnist")
    message = str(caught.value)
    assert "\n" not in message and message.count(";") == 1
    for expected in (
        f"PAPERNETS_DATA={tmp_path / 'environment'}", str(tmp_path / "system"),
        str(tmp_path / "xdg-cache" / "papernets"), "pass --data-dir DIR", "set PAPERNETS_DATA=DIR",
        "apt-get install dataset-fashion-mnist", "pass --download",
    ):
        assert expected in message


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(DatasetError, match=f"The data folder {tmp_path / 'typo'} does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "typo")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DatasetError, match="Unknown data set 'imagenet'; choose one of: mnist, fashion-mnist"):
        load_dataset("imagenet")


def test_corrupt_file_in_the_cache_is_reported_not_used(tmp_path, monkeypatch):
    folder = tmp_path / "xdg-cache" / "papernets" / "mnist"
    write_mnist_folder(folder, 10, 4)
    published = tuple((path.name, hashlib.md5(path.read_bytes()).hexdigest()) for path in sorted(folder.iterdir()))
    small(monkeypatch, "mnist", 10, 4, downloads=published)
    assert load_dataset("mnist").origin == "cache"
    damaged = folder / "t10k-labels-idx1-ubyte.gz"
    write_idx(damaged, np.array([1, 2, 3, 4], np.uint8))  # valid IDX, different bytes
    with pytest.raises(DatasetError, match=f"{damaged} in the papernets cache is corrupt"):
        load_dataset("mnist")


# ---------------------------------------------------------------------------------------------------- tar safety


def tar_with(members: list[tarfile.TarInfo], path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def file_member(name: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size = 1
    return member


def link_member(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, target
    return member


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        (file_member("cifar-10-batches-py/../../escaped"), "absolute path or a '..'"),
        (file_member("/tmp/absolute"), "absolute path or a '..'"),
        (link_member("cifar-10-batches-py/link", "../../outside"), "is a link to '../../outside'"),
        (link_member("cifar-10-batches-py/link", "/etc/passwd"), "is a link to '/etc/passwd'"),
        (link_member("cifar-10-batches-py/hard", "../x", tarfile.LNKTYPE), "is a link"),
    ],
    ids=["dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out"],
)
def test_unsafe_tar_members_are_refused_and_nothing_is_extracted(tmp_path, member, problem):
    archive = tar_with([file_member("cifar-10-batches-py/data_batch_1"), member], tmp_path / "evil.tar.gz")
    destination = tmp_path / "out"
    destination.mkdir()
    with pytest.raises(DatasetError, match=f"Refused to extract {archive}: member .* {problem}"):
        extract_tar_safely(archive, destination)
    assert list(destination.iterdir()) == []
    assert not (tmp_path / "escaped").exists()


def test_safe_tar_is_extracted(tmp_path):
    archive = tar_with([file_member("cifar-10-batches-py/data_batch_1")], tmp_path / "good.tar.gz")
    extract_tar_safely(archive, tmp_path)
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes() == b"x"


def test_a_link_even_inside_the_folder_refuses_the_archive(tmp_path):
    """The genuine releases hold no links, so none is extracted (issue 17: a symlink chain past PATH_MAX
    passed both the lexical check and tarfile's data filter)."""
    archive = tar_with([file_member("cifar-10-batches-py/data_batch_1"),
                        link_member("cifar-10-batches-py/alias", "data_batch_1")], tmp_path / "links.tar.gz")
    with pytest.raises(DatasetError, match="is a link to 'data_batch_1'"):
        extract_tar_safely(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_tar_is_a_dataset_error(tmp_path):
    archive = tar_with([file_member("a")], tmp_path / "cut.tar.gz")
    archive.write_bytes(archive.read_bytes()[:20])
    with pytest.raises(DatasetError, match="not a readable tar archive"):
        extract_tar_safely(archive, tmp_path)


# ---------------------------------------------------------------------------------------------------- downloads


@pytest.fixture
def http_folder(tmp_path):
    """A folder served over HTTP on 127.0.0.1 for the length of the test; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cached_files(tmp_path) -> list[Path]:
    return [path for path in (tmp_path / "xdg-cache").rglob("*") if path.is_file()]


def test_download_of_idx_files_with_good_checksums(tmp_path, monkeypatch, http_folder):
    served, url = http_folder
    arrays = write_mnist_folder(served, 12, 3)
    downloads = tuple((path.name, md5_of(path)) for path in sorted(served.iterdir()))
    small(monkeypatch, "mnist", 12, 3, mirrors=(url + "missing/", url), downloads=downloads)
    with pytest.raises(DatasetError, match="--download"):
        load_dataset("mnist")
    dataset = load_dataset("mnist", download=True)
    assert dataset.origin == "cache" and dataset.source == tmp_path / "xdg-cache" / "papernets" / "mnist"
    np.testing.assert_array_equal(dataset.train_labels, arrays["train"][1])
    assert sorted(path.name for path in cached_files(tmp_path)) == sorted(name for name, _ in downloads)


def test_data_download_command_fetches_verifies_and_then_finds(tmp_path, monkeypatch, http_folder, capsys):
    from papernets.cli import main

    served, url = http_folder
    write_mnist_folder(served, 12, 3)
    downloads = tuple((path.name, md5_of(path)) for path in sorted(served.iterdir()))
    small(monkeypatch, "mnist", 12, 3, mirrors=(url,), downloads=downloads)
    cache = tmp_path / "xdg-cache" / "papernets" / "mnist"
    assert main(["data", "download", "mnist"]) == 0
    assert capsys.readouterr().out == f"mnist: 12 train + 3 test images in {cache} (cache)\n"
    small(monkeypatch, "mnist", 12, 3, mirrors=(url + "gone/",), downloads=downloads)
    assert main(["data", "download", "mnist"]) == 0  # found in the cache: nothing fetched
    assert f"in {cache} (cache)" in capsys.readouterr().out


def test_data_download_command_failure_is_one_line_and_exit_2(monkeypatch, http_folder, capsys):
    from papernets.cli import main

    _, url = http_folder
    small(monkeypatch, "mnist", 12, 3, mirrors=(url + "nothing-here/",))
    assert main(["data", "download", "mnist"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Could not download") and error.count("\n") == 1


def test_download_with_bad_checksum_leaves_nothing_in_the_cache(tmp_path, monkeypatch, http_folder):
    served, url = http_folder
    write_mnist_folder(served, 12, 3)
    downloads = tuple((path.name, "0" * 32) for path in sorted(served.iterdir()))
    small(monkeypatch, "mnist", 12, 3, mirrors=(url,), downloads=downloads)
    with pytest.raises(DatasetError, match=r"Could not download .*instead of the published 0{32} \(it was deleted\)"):
        load_dataset("mnist", download=True)
    assert cached_files(tmp_path) == []


def test_a_mirror_sending_more_than_the_published_size_is_cut_off(tmp_path, monkeypatch, http_folder):
    """Issue 17: a hostile mirror got 400 MiB accepted for a 10 MB file before the MD5 refused it."""
    served, url = http_folder
    write_mnist_folder(served, 12, 3)
    downloads = tuple((path.name, md5_of(path)) for path in sorted(served.iterdir()))
    (served / "train-images-idx3-ubyte.gz").write_bytes(bytes(3 * 2**20))  # the mirror sends 3 MB instead
    small(monkeypatch, "mnist", 12, 3, mirrors=(url,), downloads=downloads, largest_download=2**20)
    with pytest.raises(DatasetError, match=r"sent more than 1,048,576 bytes, more than the published file"):
        load_dataset("mnist", download=True)
    assert not any(path.stat().st_size > 2**20 for path in cached_files(tmp_path))


def test_download_from_unreachable_mirror_says_so(tmp_path, monkeypatch, http_folder):
    _, url = http_folder
    small(monkeypatch, "fashion-mnist", 12, 3, mirrors=(url + "nowhere/",))
    expected = r"Could not download train-images-idx3-ubyte.gz: .* failed \(HTTP 404 File not found\)"
    with pytest.raises(DatasetError, match=expected):
        load_dataset("fashion-mnist", download=True)
    assert cached_files(tmp_path) == []


def cifar_archive(tmp_path, served: Path, name: str) -> Path:
    write_cifar_python_folder(tmp_path / "release" / "cifar-10-batches-py", 10, per_file=3)
    archive = served / name
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "release" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive


def test_download_and_extract_cifar_archive(tmp_path, monkeypatch, http_folder):
    served, url = http_folder
    archive = cifar_archive(tmp_path, served, "cifar-10-python.tar.gz")
    release = tmp_path / "release" / "cifar-10-batches-py"
    file_md5 = tuple((path.name, md5_of(path)) for path in release.iterdir())
    small(monkeypatch, "cifar10", 15, 3, mirrors=(url,), downloads=((archive.name, md5_of(archive)),),
          file_md5=file_md5)
    dataset = load_dataset("cifar10", download=True)
    cache = tmp_path / "xdg-cache" / "papernets"
    assert dataset.source == cache / "cifar-10-batches-py" and dataset.train_images.shape == (15, 3, 32, 32)
    assert sorted(path.name for path in cached_files(tmp_path)) == sorted(name for name, _ in file_md5)
    assert load_dataset("cifar10").origin == "cache"  # found again without downloading


def test_cifar_archive_with_bad_checksum_leaves_nothing(tmp_path, monkeypatch, http_folder):
    served, url = http_folder
    archive = cifar_archive(tmp_path, served, "cifar-10-python.tar.gz")
    small(monkeypatch, "cifar10", 15, 3, mirrors=(url,), downloads=((archive.name, "f" * 32),))
    with pytest.raises(DatasetError, match="instead of the published"):
        load_dataset("cifar10", download=True)
    assert cached_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------------- real data


def test_real_fashion_mnist_found_in_a_system_folder(monkeypatch, fashion_mnist_dir):
    monkeypatch.setattr(locate, "SYSTEM_ROOTS", (fashion_mnist_dir.parent,))
    dataset = load_dataset("fashion-mnist")
    assert dataset.source == fashion_mnist_dir and dataset.origin == "system folder"
    assert dataset.train_images.shape == (60_000, 1, 28, 28) and dataset.test_images.shape == (10_000, 1, 28, 28)
    assert dataset.train_images.dtype == np.uint8 and dataset.train_labels.dtype == np.int64
    assert dataset.num_classes == 10 and dataset.class_names[0] == "T-shirt/top"
    assert np.bincount(dataset.train_labels).tolist() == [6000] * 10
    assert np.bincount(dataset.test_labels).tolist() == [1000] * 10

"""Finding a data set's files, or downloading, verifying and extracting them into the user cache.

Places are tried in this order, and the first folder holding a complete set of files wins:
1. `data_dir` (the `--data-dir` flag): the folder itself, then the layouts below inside it. A folder the user
   names is used or refused with the reason (files missing, or not regular files), never passed over for
   another copy;
2. `$PAPERNETS_DATA`: the layouts inside it;
3. system folders: `/usr/share/datasets/<name>` (Debian's `dataset-fashion-mnist` installs
   /usr/share/datasets/fashion-mnist) and `/usr/local/share/datasets/<name>`;
4. the user cache: `$XDG_CACHE_HOME/papernets` or `~/.cache/papernets`.
Layouts inside a folder: `mnist/`, `fashion-mnist/` (the IDX files, .gz or not), torchvision's `MNIST/raw`,
`FashionMNIST/raw`, `cifar-10-batches-py`, `cifar-100-python`, and the binary CIFAR releases
`cifar-10-batches-bin`, `cifar-100-binary`. MNIST and Fashion-MNIST use the same file names, so only
`data_dir` is also tried as the folder holding the files: elsewhere the folder name says which data set it is.

Downloads go to a temporary file in the cache, are cut off past the data set's largest published size, and are
renamed only after the MD5 matches the published one. Archives are extracted safe by construction: only
regular files and folders (no links, devices or pipes), names checked lexically, every path component
created by papernets under a folder descriptor without following links, and the total size capped. Files found again in the cache are
checked against the published MD5s, so a damaged cache is reported instead of used. Concurrent processes
(e.g. the ranks of a distributed run) take a lock on the cache while downloading.
"""

import contextlib
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from papernets.data.catalog import MNIST_FILES, DatasetSpec
from papernets.errors import DatasetError
from papernets.files import atomic_write

try:
    import fcntl
except ImportError:  # not POSIX: downloads are not locked against concurrent processes
    fcntl = None

SYSTEM_ROOTS = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))
DOWNLOAD_TIMEOUT_S = 60
CHUNK_BYTES = 1 << 20
MAX_EXTRACTED_BYTES = 256 * 2**20  # each CIFAR release extracts to about 180 MB
MAX_ARCHIVE_MEMBERS = 1000         # each CIFAR release holds fewer than 10 files


@dataclass(frozen=True)
class FoundFiles:
    """A complete set of files for one data set, and where it was found."""

    folder: Path
    origin: str  # "--data-dir", "PAPERNETS_DATA", "system folder" or "cache"
    layout: str  # "idx", "cifar-python" or "cifar-binary"
    train: tuple[Path, ...]  # idx: (images, labels); CIFAR: the training batches
    test: tuple[Path, ...]

    @property
    def files(self) -> tuple[Path, ...]:
        return self.train + self.test


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/papernets, or ~/.cache/papernets."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "papernets"


def data_dir_folders(spec: DatasetSpec, data_dir: str | Path) -> list[Path]:
    """The folder the user named and the layouts inside it, in the order they are tried."""
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise DatasetError(f"The data folder {data_dir} does not exist; pass an existing folder to --data-dir.")
    return [data_dir] + [data_dir / sub for sub in spec.folders]


def search_folders(spec: DatasetSpec, data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """(origin, folder) pairs in the order they are tried."""
    folders = []
    if data_dir is not None:
        folders += [("--data-dir", folder) for folder in data_dir_folders(spec, data_dir)]
    if environment_root := os.environ.get("PAPERNETS_DATA"):
        folders += [("PAPERNETS_DATA", Path(environment_root).expanduser() / sub) for sub in spec.folders]
    folders += [("system folder", root / sub) for root in SYSTEM_ROOTS for sub in spec.system_folders]
    folders += [("cache", cache_dir() / sub) for sub in spec.folders]
    return folders


def files_in(spec: DatasetSpec, folder: Path, origin: str) -> FoundFiles | None:
    """The data set's files in `folder` if all of them are there, else None."""
    if not folder.is_dir():
        return None
    if spec.format == "idx":
        paths = {role: _plain_or_gzipped(folder / name) for role, name in MNIST_FILES.items()}
        if not all(paths.values()):
            return None
        train, test = (paths["train_images"], paths["train_labels"]), (paths["test_images"], paths["test_labels"])
        return FoundFiles(folder, origin, "idx", train, test)
    for layout, names in (("cifar-python", spec.python_release), ("cifar-binary", spec.binary_release)):
        train, test = (tuple(folder / name for name in names[split]) for split in ("train", "test"))
        if all(path.is_file() for path in train + test):
            return FoundFiles(folder, origin, layout, train, test)
    return None


def _plain_or_gzipped(path: Path) -> Path | None:
    gzipped = path.with_name(path.name + ".gz")
    return next((candidate for candidate in (path, gzipped) if candidate.is_file()), None)


def expected_names(spec: DatasetSpec) -> list[tuple[str, ...]]:
    """Per layout, the file names a complete set has (IDX files may also be gzipped)."""
    if spec.format == "idx":
        return [tuple(MNIST_FILES.values())]
    return [names["train"] + names["test"] for names in (spec.python_release, spec.binary_release)]


def refuse_incomplete_data_dir(spec: DatasetSpec, data_dir: str | Path) -> DatasetError:
    """Why the folder the user named holds no complete set: the files missing or not regular files."""
    best = None  # (files present, folder, names, problems) of the folder closest to complete
    for folder in data_dir_folders(spec, data_dir):
        for names in expected_names(spec):
            problems = []
            for name in names:
                candidates = [folder / name] + ([folder / f"{name}.gz"] if spec.format == "idx" else [])
                present = [path for path in candidates if os.path.lexists(path)]
                if not present:
                    problems.append(f"{name} is missing")
                elif not any(path.is_file() for path in present):
                    problems.append(f"{present[0].name} is not a regular file")
            found = len(names) - sum(problem.endswith("missing") for problem in problems)
            if best is None or found > best[0]:
                best = (found, folder, names, problems)
    found, folder, names, problems = best
    if found == 0:
        return DatasetError(f"The data folder {data_dir} holds no {spec.title} files (expected {', '.join(names)}"
                            f"{' or their .gz' if spec.format == 'idx' else ''}, or {spec.folders[0]}/ in it); "
                            "pass the folder that holds them to --data-dir, or drop --data-dir to search the usual "
                            "places.")
    return DatasetError(f"The data folder {folder} holds an incomplete set of {spec.title} files "
                        f"({', '.join(problems)}); complete it or pass another folder to --data-dir.")


def locate_dataset(spec: DatasetSpec, data_dir: str | Path | None = None, download: bool = False) -> FoundFiles:
    """The first complete set of files in the search order; downloaded into the cache if none and `download`.
    A `data_dir` the user named is used or refused, never passed over."""
    if data_dir is not None:
        found = next(filter(None, (files_in(spec, folder, "--data-dir")
                                   for folder in data_dir_folders(spec, data_dir))), None)
        if found is None:
            raise refuse_incomplete_data_dir(spec, data_dir)
        return found
    for origin, folder in search_folders(spec):
        if found := files_in(spec, folder, origin):
            if origin == "cache":
                verify_cached_files(spec, found)
            return found
    if download:
        return download_dataset(spec)
    raise not_found_error(spec, data_dir)


def not_found_error(spec: DatasetSpec, data_dir: str | Path | None) -> DatasetError:
    places = [f"--data-dir {data_dir}"] if data_dir is not None else []
    environment_root = os.environ.get("PAPERNETS_DATA")
    places.append(f"PAPERNETS_DATA={environment_root}" if environment_root else "PAPERNETS_DATA (not set)")
    places += [str(root) for root in SYSTEM_ROOTS]
    places.append(f"the cache {cache_dir()}")
    if spec.format == "idx":
        holding = f"{MNIST_FILES['train_images']}.gz and its three companion files, or {spec.folders[-1]}/ in it"
    else:
        holding = f"{spec.folders[0]}/ or {spec.folders[1]}/"
    debian = f" or `apt-get install {spec.debian_package}`" if spec.debian_package else ""
    return DatasetError(
        f"{spec.title} was not found in {', '.join(places)}; pass --data-dir DIR (a folder holding {holding}), "
        f"set PAPERNETS_DATA=DIR{debian}, or pass --download to fetch it into {cache_dir()}."
    )


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_cached_files(spec: DatasetSpec, found: FoundFiles) -> None:
    """Every file in the cache that has a published MD5 must match it."""
    published = dict(spec.downloads) | dict(spec.file_md5)
    for path in found.files:
        expected = published.get(path.name)
        if expected is not None and (actual := file_md5(path)) != expected:
            raise DatasetError(f"{path} in the papernets cache is corrupt (MD5 {actual}, published {expected}); "
                               f"delete it and run again with --download.")


def download_dataset(spec: DatasetSpec) -> FoundFiles:
    """Downloads the data set into the cache, verifies it and returns its files."""
    cache = cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"Cannot create the cache folder {cache} ({error.strerror}); set XDG_CACHE_HOME to a "
                           f"writable folder or pass --data-dir.") from None
    folder = cache / (spec.archive_folder or spec.name)
    with _cache_lock(cache):
        # Another process may have finished the download while this one waited for the lock.
        if not files_in(spec, folder, "cache"):
            if spec.archive_folder:
                ((archive_name, md5),) = spec.downloads
                archive = fetch_verified(spec.mirrors, archive_name, md5, cache, spec.largest_download)
                try:
                    extract_archive_folder(archive, cache, spec.archive_folder)
                finally:
                    archive.unlink(missing_ok=True)
            else:
                for name, md5 in spec.downloads:
                    if not (folder / name).is_file():
                        fetch_verified(spec.mirrors, name, md5, folder, spec.largest_download)
    found = files_in(spec, folder, "cache")
    if found is None:
        raise DatasetError(f"The download of {spec.title} into {folder} does not hold the expected files; "
                           f"delete {folder} and try again, or fetch the files yourself and pass --data-dir.")
    verify_cached_files(spec, found)
    return found


@contextlib.contextmanager
def _cache_lock(cache: Path):
    """An exclusive lock on the cache folder itself (no lock file is left behind)."""
    if fcntl is None:
        yield
        return
    descriptor = os.open(cache, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


class _MirrorFailed(Exception):
    """One URL that did not deliver the file; the next mirror is tried."""


def fetch_verified(mirrors: tuple[str, ...], name: str, md5: str, folder: Path, max_bytes: int) -> Path:
    """folder/name downloaded from the first mirror that delivers it with the published MD5, in at most
    `max_bytes`."""
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        try:
            return _download(mirror + name, folder / name, md5, max_bytes)
        except _MirrorFailed as failure:
            failures.append(str(failure))
    if created and not any(folder.iterdir()):
        folder.rmdir()
    raise DatasetError(f"Could not download {name}: {'; '.join(failures)}; check the network and try again, or "
                       f"fetch the files yourself and pass --data-dir.")


def _download(url: str, target: Path, md5: str, max_bytes: int) -> Path:
    from tqdm import tqdm

    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            tqdm(total=response.length, unit="B", unit_scale=True, desc=target.name, disable=None, leave=False) as bar,
            atomic_write(target, advice=f"make the cache {target.parent} writable or set XDG_CACHE_HOME") as output,
        ):
            digest = hashlib.md5(usedforsecurity=False)
            received = 0
            while chunk := _read_chunk(response, url):
                received += len(chunk)
                if received > max_bytes:
                    raise _MirrorFailed(f"{url} sent more than {max_bytes:,} bytes, more than the published file "
                                        "(it was deleted)")
                digest.update(chunk)
                output.write(chunk)
                bar.update(len(chunk))
            if digest.hexdigest() != md5:
                raise _MirrorFailed(f"{url} sent a file with MD5 {digest.hexdigest()} instead of the published {md5} "
                                    f"(it was deleted)")
        return target
    except urllib.error.HTTPError as error:
        raise _MirrorFailed(f"{url} failed (HTTP {error.code} {error.reason})") from None
    except (OSError, http.client.HTTPException, ValueError) as error:  # URLError is an OSError
        raise _MirrorFailed(f"{url} failed ({getattr(error, 'reason', error)})") from None


def _read_chunk(response, url: str) -> bytes:
    """The next chunk of a download; a network failure here is the mirror's, not a failed write of the file."""
    try:
        return response.read(CHUNK_BYTES)
    except (OSError, http.client.HTTPException) as error:
        raise _MirrorFailed(f"{url} failed ({getattr(error, 'reason', error)})") from None


def extract_archive_folder(archive: Path, cache: Path, folder_name: str) -> Path:
    """Extracts `archive` safely and moves its top folder `folder_name` into `cache`."""
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".extract-"))
    try:
        extract_tar_safely(archive, staging)
        extracted = staging / folder_name
        if not extracted.is_dir():
            raise DatasetError(f"{archive} does not contain the folder {folder_name}; it is not the expected release, "
                               f"fetch the files yourself and pass --data-dir.")
        final = cache / folder_name
        if final.exists():  # an incomplete earlier extraction: complete ones are found before any download
            shutil.rmtree(final)
        os.replace(extracted, final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extract_tar_safely(archive: Path, destination: Path, max_bytes: int = MAX_EXTRACTED_BYTES) -> None:
    """Extracts a tar archive of regular files and folders into `destination`, safe by construction.

    The archive is refused whole, before anything is written, if a member is a link, device or pipe, has a
    name that is absolute or holds `..`, or if the members add up to more than `max_bytes`. Each path
    component is then created by papernets relative to an open folder descriptor with O_NOFOLLOW (a folder or
    file that turns out to be a link is an error, never followed), files with O_EXCL, and no member is written
    past its declared size, so nothing can land outside `destination` whatever the archive holds.
    """
    destination = Path(destination)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            total = 0
            for member in members:
                if problem := _unsafe_member_problem(member):
                    raise DatasetError(f"Refused to extract {archive}: member {member.name!r} {problem}; it is not a "
                                       f"genuine release, delete it and download again.")
                total += member.size if member.isfile() else 0
            if total > max_bytes or len(members) > MAX_ARCHIVE_MEMBERS:
                raise DatasetError(f"Refused to extract {archive}: its {len(members):,} members hold {total:,} bytes, "
                                   f"more than any release ({MAX_ARCHIVE_MEMBERS:,} members, {max_bytes:,} bytes); it "
                                   "is not a genuine release, delete it and download again.")
            destination.mkdir(parents=True, exist_ok=True)
            root = os.open(destination, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for member in members:
                    _extract_member(tar, member, root)
            finally:
                os.close(root)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        problem = f"{archive} is not a readable tar archive ({error}); delete it and download again."
        raise DatasetError(problem) from None


def _unsafe_member_problem(member: tarfile.TarInfo) -> str | None:
    """Why `member` is refused whatever the destination, or None."""
    name = PurePosixPath(member.name)
    if (name.is_absolute() or member.name.startswith("\\") or ".." in name.parts or ":" in member.name
            or "\0" in member.name or not (name.parts or member.isdir())):
        return "has an absolute path or a '..' component"
    if member.issym() or member.islnk():
        return f"is a link to {member.linkname!r} (the genuine releases hold no links)"
    if not (member.isfile() or member.isdir()):
        return "is a device, pipe or other special file"
    return None


def _open_folder(parent: int, name: str) -> int:
    """A descriptor of the folder `name` inside `parent`, created if absent; a link there is refused."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=parent)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: int) -> None:
    *folders, leaf = [part for part in PurePosixPath(member.name).parts if part != "."] or ["."]
    descriptors = []
    try:
        parent = root
        for folder in folders + ([leaf] if member.isdir() else []):
            parent = _open_folder(parent, folder)
            descriptors.append(parent)
        if member.isdir():
            return
        source = tar.extractfile(member)
        file = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=parent)
        with os.fdopen(file, "wb") as output:
            remaining = member.size
            while remaining and (chunk := source.read(min(CHUNK_BYTES, remaining))):
                output.write(chunk)
                remaining -= len(chunk)
    finally:
        for descriptor in descriptors:
            os.close(descriptor)

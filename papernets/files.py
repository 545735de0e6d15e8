"""Every file papernets writes goes through `atomic_write`, and every run folder in use is held with `RunLock`.

`atomic_write(path)` yields a binary file that is a new temporary file in `path`'s folder, created with
`mkstemp` (O_CREAT | O_EXCL: never an existing path, so a symlink planted under a temporary name is never
written through); on success the data is flushed and fsync'ed, the file renamed over `path` with `os.replace`
(which replaces a symlink at `path` itself, not the file it points to) and the folder fsync'ed. A reader sees
the old file or the new one, never half of either, and a process killed mid-write leaves at most a
`.<name>.*.tmp` file beside it. An OSError (read-only folder, full disk, name too long) becomes one
`WriteError` sentence.

`RunLock(folder)` is an exclusive `flock` on the folder itself: taken atomically, released when the process
exits however it exits (so a lock is never stale after its holder died), and no lock file is left behind.
"""

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from papernets.errors import RunFolderBusy, WriteError

try:
    import fcntl
except ImportError:  # not POSIX: run folders are not locked against concurrent processes
    fcntl = None

DEFAULT_ADVICE = "free disk space or choose a writable folder"
NEW_FILE_MODE = 0o666  # before the umask, as open() creates files


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_failure(path: Path, error: OSError, advice: str = DEFAULT_ADVICE) -> WriteError:
    return WriteError(f"Could not write {path} ({error.strerror or error}); {advice}.")


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_write(path: str | Path, advice: str = DEFAULT_ADVICE, keep_previous: Path | None = None
                 ) -> Iterator[BinaryIO]:
    """A binary file whose content replaces `path` whole when the block ends without an exception; with
    `keep_previous`, the file being replaced is first renamed to that name (a crash between the two renames
    leaves the previous copy, never nothing)."""
    path = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(descriptor, NEW_FILE_MODE & ~current_umask())  # mkstemp's 0600 would hide results from others
    except OSError as error:
        raise write_failure(path, error, advice) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        if keep_previous is not None and os.path.lexists(path):
            os.replace(path, keep_previous)
        os.replace(temporary, path)
        fsync_folder(path.parent)
    except OSError as error:
        raise write_failure(path, error, advice) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_bytes(path: str | Path, data: bytes, advice: str = DEFAULT_ADVICE) -> Path:
    with atomic_write(path, advice) as file:
        file.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, advice: str = DEFAULT_ADVICE) -> Path:
    return write_bytes(path, text.encode("utf-8"), advice)


def remove_stale_temporaries(path: Path) -> None:
    """Temporary files of `path` left by a process killed inside `atomic_write` (unlinking a link removes only
    the link)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


class RunLock:
    """Exclusive use of a run folder for as long as the `with` block (or the process) lasts."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.descriptor: int | None = None

    def __enter__(self) -> "RunLock":
        if fcntl is None:
            return self
        self.descriptor = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.descriptor)
            self.descriptor = None
            raise RunFolderBusy(f"Run folder {self.folder} is in use by another papernets process; wait for it to "
                                "finish (or stop it) and run the command again.") from None
        return self

    def __exit__(self, *exception) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # closing releases the lock
            self.descriptor = None

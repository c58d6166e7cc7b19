"""Writing files so that a reader never sees a half-written one, a full disk is an
ordinary error, and a file's checksum is taken one way.

`atomic_write(path)` is the one way this package writes a file: it yields a hidden
temporary path beside `path` (same suffix, so writers that go by the extension, such as
PIL, numpy and matplotlib, keep working), renames it into place when the block ends
without error (atomic on POSIX) and removes it otherwise. A write that fails because the
file system is full raises `DiskFullError`, one sentence naming the path.
`replace_directory` is its counterpart for a folder built under a temporary name.
`sha256_file` is the SHA-256 of a file (or of an open binary file, from where it stands).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

from ganrepro.errors import GanreproError

# torch.save and a few C writers report a full disk as a RuntimeError with no errno; when
# the file system has less than this left after a failed write, the failure is taken as that.
_NEARLY_FULL = 1 << 20
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class DiskFullError(GanreproError, OSError):
    """A file could not be written for lack of space; nothing half-written is left. It is
    an OSError with errno ENOSPC too, so code that handles a failed write still does; its
    text is the one sentence, without an "[Errno 28]" prefix."""

    def __init__(self, message: str):
        super().__init__(message)
        self.errno = errno.ENOSPC


def free_bytes(path: str | Path) -> int | None:
    """Bytes free for an unprivileged writer on the file system of `path` (or its nearest
    existing parent); None when it cannot be told."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def is_disk_full(err: BaseException, path: str | Path) -> bool:
    """Whether `err`, raised while writing `path`, means the disk (or a quota) is full."""
    if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
        return True
    if isinstance(err, (OSError, RuntimeError)):
        free = free_bytes(path)
        return free is not None and free < _NEARLY_FULL
    return False


def disk_full_error(path: str | Path, err: BaseException) -> DiskFullError:
    free = free_bytes(path)
    left = f" ({free:,} bytes free)" if free is not None else ""
    return DiskFullError(f"{path}: no space left on the device{left}; nothing was written there. "
                         "Free some space and run the same command again")


def unhandled_disk_full(err: BaseException) -> DiskFullError | None:
    """The last resort for a write that did not go through `atomic_write`: an OSError
    whose errno says the disk or a quota is full, as one sentence (naming the file where
    the error does); None for anything else."""
    if not isinstance(err, OSError) or err.errno not in _FULL_ERRNOS:
        return None
    if isinstance(err, DiskFullError):
        return err
    where = f"{err.filename}: " if err.filename else ""
    return DiskFullError(f"{where}no space left on the device ({err.strerror}). "
                         "Free some space and run the same command again")


def temporary_path(path: Path) -> Path:
    """The hidden temporary name `atomic_write` uses for `path` in this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` at once. On any
    error the temporary file is removed; a full disk becomes a `DiskFullError`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if is_disk_full(err, path.parent):
            raise disk_full_error(path, err) from None
        raise
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if not isinstance(err, DiskFullError) and is_disk_full(err, path):
            raise disk_full_error(path, err) from None
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically (see `atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see `atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def replace_directory(src: str | Path, dst: str | Path) -> None:
    """Move the finished folder `src` to `dst` (on the same file system), replacing whatever
    `dst` was: an empty `dst` (Snakemake makes output folders before a job runs) is removed,
    anything else is renamed aside and deleted only once `src` is in place."""
    src, dst = Path(src), Path(dst)
    old = None
    if dst.exists():
        if dst.is_dir() and not any(dst.iterdir()):
            dst.rmdir()
        else:
            old = dst.parent / f".{dst.name}.old-{os.getpid()}"
            os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256_file(source: str | Path | BinaryIO) -> str:
    """Hex SHA-256 of the file at `source`, or of an open binary file read from its current
    position to the end (so a caller can check the very file object it then loads)."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    return hashlib.file_digest(source, "sha256").hexdigest()

"""Reading images out of tar and zip archives without trusting their member names.

Members are read in archive order straight into memory; nothing is extracted, yet a
member that would escape an extraction folder (an absolute path, a `..` component, a
link pointing outside, a device file) makes the whole archive an error: an archive that
contains such a thing is not the archive we meant to download.
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from ganrepro.errors import DataError

_FAKE_ROOT = "/ganrepro-extract-root"


def check_member_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{archive}: member {name!r} has an absolute path; refusing to read this archive")
    if ".." in path.parts:
        raise DataError(f"{archive}: member {name!r} points outside the archive folder ('..'); "
                        "refusing to read this archive")


def _iter_tar(archive: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(archive, "r|*") as tar:
        for member in tar:
            check_member_name(archive, member.name)
            try:   # the stdlib's extraction filter judges links and special files
                tarfile.data_filter(member, _FAKE_ROOT)
            except tarfile.FilterError as err:
                raise DataError(f"{archive}: unsafe member {member.name!r} ({err}); "
                                "refusing to read this archive") from None
            if member.isfile():
                yield member.name, tar.extractfile(member).read()


def open_zip(archive: Path) -> zipfile.ZipFile:
    """Open a zip after checking every member name (raises DataError)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{archive} is not a readable zip archive ({err})") from None
    for info in zf.infolist():
        check_member_name(archive, info.filename)
    return zf


def _iter_zip(archive: Path) -> Iterator[tuple[str, bytes]]:
    with open_zip(archive) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                yield info.filename, zf.read(info)


def iter_members(archive: str | Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every regular file in a .tar[.gz|.bz2|.xz] or .zip, in archive order."""
    archive = Path(archive)
    if zipfile.is_zipfile(archive):
        reader = _iter_zip
    elif tarfile.is_tarfile(archive):
        reader = _iter_tar
    else:
        raise DataError(f"{archive} is neither a tar nor a zip archive")
    try:
        yield from reader(archive)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise DataError(f"{archive} is damaged and cannot be read to the end ({err}); "
                        "delete it and prepare again to download a fresh copy") from None

"""Reading images out of tar and zip archives without trusting their names or sizes.

Members are read one at a time in archive order straight into memory; nothing is
extracted and the archive is never held whole. What an archive declares is checked
before anything is read, with these rules:

* A member that would escape an extraction folder (an absolute path, a `..` component,
  a link pointing outside, a device or fifo, a sparse file) makes the whole archive an
  error: an archive that contains such a thing is not the archive we meant to read.
* At most `MAX_MEMBERS` members (a zip's declared count is checked before its
  directory is parsed; zipfile keeps about half a KiB per member in memory).
* The archive may unpack to at most `MAX_RATIO` times its own size (plus `RATIO_FLOOR`)
  and at most `MAX_TOTAL_BYTES`: a zip by the declared sizes of the members we read, a
  tar by every header's declared size (checked before the data is skipped or read)
  and by the bytes its decompressor actually produces. A zip member above `RATIO_FLOOR`
  that declares more than `MAX_RATIO` times its compressed size is a zip bomb. A plain
  tar whose header declares more data than the file holds is lying. All of these
  refuse the whole archive.
* Two wanted members with the same name make the archive ambiguous, and an error.
* A wanted member that cannot be used is handed on as `Unusable` (the caller skips it
  and lists the reason, like any bad image): more than `MAX_MEMBER_BYTES` declared, a
  link (inside the archive), an encrypted zip member, or an unknown zip compression.
  Every other member is read with a read bounded by its checked declared size.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ganrepro.errors import DataError

_FAKE_ROOT = "/ganrepro-extract-root"

MAX_MEMBER_BYTES = 64 << 20         # one member (an image or an attributes file)
MAX_MEMBERS = 1_000_000             # members of one archive (cartoonset100k has 200k)
MAX_RATIO = 100                     # unpacked bytes per archive byte
RATIO_FLOOR = 1 << 20               # below this many unpacked bytes the ratio is not checked
MAX_TOTAL_BYTES = 256 << 30         # unpacked bytes of one archive (CLEVR is about 20 GiB)

_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)


@dataclass(frozen=True)
class Unusable:
    """Stands in for the bytes of a member that was not read; `reason` says why."""
    reason: str


Member = tuple[str, "bytes | Unusable"]


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MiB" if n >= 1 << 20 else f"{n:,} bytes"


def _unpack_limit(packed: int) -> int:
    return min(max(packed * MAX_RATIO, RATIO_FLOOR), MAX_TOTAL_BYTES)


def _limits_text() -> str:
    return (f"at most {MAX_RATIO} times the archive's size (beyond the first {_mib(RATIO_FLOOR)}) "
            f"and at most {_mib(MAX_TOTAL_BYTES)} in all")


def check_member_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{archive}: member {name!r} has an absolute path; refusing to read this archive")
    if ".." in path.parts:
        raise DataError(f"{archive}: member {name!r} points outside the archive folder ('..'); "
                        "refusing to read this archive")


def too_large(size: int) -> Unusable:
    return Unusable(f"declares {size:,} bytes, more than the {_mib(MAX_MEMBER_BYTES)} allowed for one member")


def _too_many(archive: Path, count: int) -> DataError:
    return DataError(f"{archive} has {count:,} members, more than the {MAX_MEMBERS:,} allowed in one "
                     "archive; refusing to read it")


def _duplicate(archive: Path, name: str) -> DataError:
    return DataError(f"{archive}: two members are named {name!r}; an archive whose names repeat is "
                     "ambiguous, refusing to read it")


# ---------------------------------------------------------------------------- tar

class _Bounded:
    """A read-only stream that refuses to produce more than `limit` bytes."""

    def __init__(self, inner, limit: int, archive: Path):
        self.inner, self.limit, self.archive, self.pos = inner, limit, archive, 0

    def read(self, n: int = -1) -> bytes:
        room = self.limit - self.pos + 1       # one byte past the limit tells us it is exceeded
        data = self.inner.read(room if n is None or n < 0 else min(n, room))
        self.pos += len(data)
        if self.pos > self.limit:
            raise DataError(f"{self.archive} unpacks to more than {self.limit:,} bytes; an archive may "
                            f"unpack to {_limits_text()}; refusing to read it")
        return data


def _open_tar_stream(raw):
    """(decompressed stream, whether it is compressed) by the file's magic bytes."""
    head = raw.read(6)
    raw.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb"), True
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw), True
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw), True
    return raw, False


def _iter_tar(archive: Path, select: Callable[[str], bool]) -> Iterator[Member]:
    packed = archive.stat().st_size
    with open(archive, "rb") as raw:
        stream, compressed = _open_tar_stream(raw)
        limit = _unpack_limit(packed) if compressed else packed
        try:
            tar = tarfile.open(fileobj=_Bounded(stream, limit, archive), mode="r|")
        except tarfile.ReadError as err:
            raise DataError(f"{archive} is neither a tar nor a zip archive ({err})") from None
        count, seen = 0, set()
        with tar:
            while (member := tar.next()) is not None:
                tar.members.clear()         # a stream needs no index; keep memory flat
                count += 1
                if count > MAX_MEMBERS:
                    raise _too_many(archive, count)
                yield from _tar_member(archive, tar, member, select, seen, limit, compressed)


def _tar_member(archive, tar, member, select, seen, limit, compressed) -> Iterator[Member]:
    name = member.name
    check_member_name(archive, name)
    try:   # the stdlib's extraction filter judges links and special files
        tarfile.data_filter(member, _FAKE_ROOT)
    except tarfile.FilterError as err:
        raise DataError(f"{archive}: unsafe member {name!r} ({err}); refusing to read this archive") from None
    if member.issparse():
        raise DataError(f"{archive}: member {name!r} is a sparse file, which a dataset archive never "
                        "holds; refusing to read this archive")
    has_data = member.isreg() or member.type not in tarfile.SUPPORTED_TYPES
    if has_data and member.offset_data + member.size > limit:
        if compressed:
            raise DataError(f"{archive}: member {name!r} declares {member.size:,} bytes, so the archive "
                            f"would unpack to more than {limit:,} bytes; an archive may unpack to "
                            f"{_limits_text()}; refusing to read it")
        raise DataError(f"{archive}: member {name!r} declares {member.size:,} bytes at offset "
                        f"{member.offset_data:,}, but the archive holds only {limit:,} bytes (a lying "
                        "header); refusing to read it")
    if member.isdir() or not select(name):
        return
    if name in seen:
        raise _duplicate(archive, name)
    seen.add(name)
    if member.issym() or member.islnk():
        yield name, Unusable(f"is a link to {member.linkname!r}, not a file; only regular files are read")
    elif not member.isreg():
        yield name, Unusable(f"is not a regular file (tar type {member.type!r})")
    elif member.size > MAX_MEMBER_BYTES:
        yield name, too_large(member.size)
    else:
        with tar.extractfile(member) as f:
            data = f.read(member.size)
        yield name, data


# ---------------------------------------------------------------------------- zip

def _declared_zip_count(archive: Path) -> int | None:
    """The member count the zip's end record declares, read before the directory is parsed."""
    try:
        with open(archive, "rb") as f:
            end = zipfile._EndRecData(f)    # what ZipFile itself reads first (bounded: the file's tail)
    except (AttributeError, OSError, ValueError):
        return None
    return None if not end else end[4]      # _ECD_ENTRIES_TOTAL


def open_zip(archive: Path) -> zipfile.ZipFile:
    """Open a zip after checking its member count and every member name (raises DataError)."""
    declared = _declared_zip_count(archive)
    if declared is not None and declared > MAX_MEMBERS:
        raise _too_many(archive, declared)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise DataError(f"{archive} is not a readable zip archive ({err})") from None
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        zf.close()
        raise _too_many(archive, len(infos))
    for info in infos:
        check_member_name(archive, info.filename)
    return zf


class ZipMembers:
    """The wanted members of a zip, checked as a whole before any is read.

    `names` lists them (in archive order, or sorted by name); iterating yields
    (name, bytes or Unusable) one member at a time.
    """

    def __init__(self, archive: str | Path, select: Callable[[str], bool], sort: bool = False):
        self.archive = Path(archive)
        self.zf = open_zip(self.archive)
        try:
            self.infos = self._check([i for i in self.zf.infolist() if not i.is_dir() and select(i.filename)])
        except BaseException:
            self.zf.close()
            raise
        if sort:
            self.infos.sort(key=lambda i: i.filename)

    def _check(self, infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
        archive, seen, total = self.archive, set(), 0
        limit = _unpack_limit(archive.stat().st_size)
        for info in infos:
            name = info.filename
            if name in seen:
                raise _duplicate(archive, name)
            seen.add(name)
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * info.compress_size:
                raise DataError(
                    f"{archive}: member {name!r} declares {info.file_size:,} bytes packed into "
                    f"{info.compress_size:,} (more than {MAX_RATIO}:1, a zip bomb); a member above "
                    f"{_mib(RATIO_FLOOR)} may unpack to at most {MAX_RATIO} times its packed size; "
                    "refusing to read this archive")
            total += info.file_size
            if total > limit:
                raise DataError(f"{archive}: its members declare more than {limit:,} bytes by {name!r}; "
                                f"an archive may unpack to {_limits_text()}; refusing to read it")
        return infos

    @property
    def names(self) -> list[str]:
        return [i.filename for i in self.infos]

    def __len__(self) -> int:
        return len(self.infos)

    def __iter__(self) -> Iterator[Member]:
        try:
            with self.zf:
                for info in self.infos:
                    yield info.filename, self._read(info)
        except _READ_ERRORS as err:
            raise _damaged(self.archive, err) from None

    def _read(self, info: zipfile.ZipInfo) -> bytes | Unusable:
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            return Unusable("is a symbolic link, not a file; only regular files are read")
        if info.flag_bits & 0x1:
            return Unusable("is encrypted")
        if info.compress_type not in _ZIP_METHODS:
            return Unusable(f"uses zip compression method {info.compress_type}, which cannot be read")
        if info.file_size > MAX_MEMBER_BYTES:
            return too_large(info.file_size)
        with self.zf.open(info) as f:
            return f.read(info.file_size)


# ---------------------------------------------------------------------------- either

def _damaged(archive: Path, err: BaseException) -> DataError:
    return DataError(f"{archive} is damaged and cannot be read to the end ({err}); "
                     "delete it and prepare again to download a fresh copy")


def _everything(name: str) -> bool:
    return True


def iter_members(archive: str | Path, select: Callable[[str], bool] = _everything) -> Iterator[Member]:
    """(name, bytes or Unusable) of every regular file in a .tar[.gz|.bz2|.xz] or .zip
    whose name `select` accepts, in archive order; members not selected are never read."""
    archive = Path(archive)
    if zipfile.is_zipfile(archive):
        yield from ZipMembers(archive, select)
        return
    try:
        yield from _iter_tar(archive, select)
    except _READ_ERRORS as err:
        raise _damaged(archive, err) from None

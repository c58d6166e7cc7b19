"""Bring your own images: a directory (searched recursively) or a .zip.

Files are taken in sorted path order; files whose extension is not an image's are
ignored, image files that cannot be used are skipped and listed with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

from ganrepro.data.archive import MAX_MEMBER_BYTES, Unusable, ZipMembers, too_large
from ganrepro.data.images import IMAGE_EXTENSIONS, Geometry, prepare_many
from ganrepro.data.store import DatasetWriter
from ganrepro.errors import DataError
from ganrepro.files import sha256_file

log = logging.getLogger(__name__)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _read_bounded(path: Path) -> bytes | Unusable:
    """A file's bytes, or Unusable when it holds more than one member may (never read whole)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MEMBER_BYTES + 1)
            if len(data) > MAX_MEMBER_BYTES:
                f.seek(0, 2)
                return too_large(max(f.tell(), len(data)))
            return data
    except OSError as err:
        log.warning("cannot read %s: %s", path, err.strerror)
        return b""      # unreadable: prepare_image reports it as not an image


def _from_directory(root: Path, digest):
    files = sorted((p for p in root.rglob("*") if p.is_file() and _is_image(p.name)),
                   key=lambda p: p.relative_to(root).as_posix())

    def items():
        for path in files:
            rel = path.relative_to(root).as_posix()
            data = _read_bounded(path)
            member = (hashlib.sha256(data).digest() if isinstance(data, bytes)
                      else bytes.fromhex(sha256_file(path)))      # too large to read: hashed in chunks
            digest.update(rel.encode() + b"\0" + member)
            yield rel, data
    return len(files), items()


def _from_zip(path: Path):
    members = ZipMembers(path, _is_image, sort=True)
    return len(members), iter(members)


def prepare(name: str, spec: dict, out: Path, cache_dir: Path, workers: int = 1) -> None:
    root = Path(spec["path"]).expanduser()
    geometry = Geometry(spec["resolution"], spec["channels"], ratio=spec["ratio"],
                        square=spec["crop"], upscale=spec["upscale"])
    digest = hashlib.sha256()
    if root.is_dir():
        total, items = _from_directory(root, digest)
    elif root.is_file() and zipfile.is_zipfile(root):
        total, items = _from_zip(root)
    elif root.exists():
        raise DataError(f"datasets.{name}.path: {root} is neither a directory nor a .zip archive")
    else:
        raise DataError(f"datasets.{name}.path: {root} does not exist")
    if total == 0:
        raise DataError(f"{root} contains no images (looked recursively for "
                        f"{', '.join(IMAGE_EXTENSIONS)})")
    with DatasetWriter(out, geometry.resolution, geometry.channels) as writer:
        writer.add_all(prepare_many(items, geometry, workers), spec["max_images"])
        if writer.count == 0:
            reasons = "; ".join(f"{s.file}: {s.reason}" for s in writer.skipped[:3])
            raise DataError(f"none of the {total} images in {root} could be used ({reasons})")
        writer.finish(dict(
            name=name, source="folder", source_url=None,
            source_sha256=sha256_file(root) if root.is_file() else digest.hexdigest(),
            source_size=root.stat().st_size if root.is_file()
            else sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and _is_image(p.name)),
            spec=spec, preprocessing=geometry.describe()))

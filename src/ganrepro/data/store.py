"""The prepared-dataset format: results/datasets/{name}/.

    dataset.json     the manifest (Manifest below)
    images.npy       uint8 array [N, C, H, W], memory-mapped by the training loader
    attributes.csv   per-image attributes, row i describes image i (sources that have them)
    png/             optional PNG export for inspection

A dataset is assembled in a hidden sibling folder and renamed into place only when it
is complete, so an interrupted prepare never leaves a folder that looks finished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganrepro import __version__
from ganrepro.errors import DataError
from ganrepro.files import DiskFullError, disk_full_error, is_disk_full, replace_directory

log = logging.getLogger(__name__)

MANIFEST = "dataset.json"
IMAGES = "images.npy"
ATTRIBUTES = "attributes.csv"


@dataclass
class Skipped:
    file: str
    reason: str


@dataclass
class Manifest:
    name: str
    source: str
    source_url: str | None          # where the archive came from (None: procedural or local folder)
    source_sha256: str | None       # sha256 of the source archive, or of the folder's files in order
    source_size: int | None         # bytes of the source archive or folder
    count: int                      # images in images.npy
    resolution: int
    channels: int
    preprocessing: dict[str, Any]   # everything that turned a source image into a stored one
    skipped: list[Skipped]          # recoverable bad inputs, with reasons
    images_sha256: str              # sha256 of the stored pixels (keys cached statistics)
    attributes: str | None = None   # name of the attributes table, if any
    spec: dict[str, Any] = field(default_factory=dict)   # the resolved config entry
    subset: dict[str, Any] | None = None   # a nested subset of another prepared dataset (data.subsets)
    layout: str = "NCHW uint8"
    ganrepro_version: str = __version__

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Manifest":
        data = dict(data)
        data["skipped"] = [Skipped(**s) for s in data.get("skipped", [])]
        return cls(**data)


def read_manifest(folder: str | Path) -> Manifest:
    path = Path(folder) / MANIFEST
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: prepare the dataset first "
                        "(ganrepro data prepare NAME, or the Snakemake rule prepare_dataset)") from None
    except (ValueError, TypeError, KeyError, AttributeError) as err:     # JSONDecodeError is a ValueError
        raise DataError(f"{path} is not a valid dataset manifest ({type(err).__name__}: {str(err)[:200]}); "
                        "prepare the dataset again") from None
    except RecursionError:
        raise DataError(f"{path} is not a valid dataset manifest (nested too deep); prepare the dataset again") from None


def open_images(folder: str | Path) -> np.ndarray:
    """The stored images as a read-only memory map of shape [N, C, H, W]."""
    path = Path(folder) / IMAGES
    try:
        images = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: prepare the dataset first") from None
    except ValueError as err:
        raise DataError(f"{path} is not a readable image array ({err}); prepare the dataset again") from None
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(f"{path} holds {images.dtype} {images.shape}; expected uint8 [N, C, H, W]")
    return images


class DatasetWriter:
    """Collects images one at a time and publishes the folder atomically.

    Use as a context manager; call `add()` per image and `finish()` once. Leaving the
    block without `finish()` (an error, Ctrl-C) removes the partial folder.
    """

    def __init__(self, out: str | Path, resolution: int, channels: int):
        self.out = Path(out)
        self.resolution = resolution
        self.channels = channels
        self.tmp = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"
        self.count = 0
        self.skipped: list[Skipped] = []
        self._raw = None

    def __enter__(self) -> "DatasetWriter":
        _remove_stale_partials(self.out)
        try:
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir(parents=True)
            self._raw = open(self.tmp / "images.raw", "wb")
        except BaseException as err:
            self.__exit__(type(err), err, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Remove the partial folder whatever happened. The first error is the one that
        propagates (closing the raw file after a failed write fails again, and must not
        hide it); a full disk becomes one `DiskFullError` naming the dataset."""
        close_error = None
        if self._raw is not None:
            try:
                self._raw.close()           # closes the file even when its final flush fails
            except OSError as err:
                close_error = err
        first = exc if exc is not None else close_error
        # Told before the partial folder goes: removing it frees the space.
        full = (disk_full_error(self.out, first) if isinstance(first, OSError)
                and not isinstance(first, DiskFullError) and is_disk_full(first, self.tmp) else None)
        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)
        if full is not None:
            raise full from None
        if exc is None and close_error is not None:
            raise close_error

    @property
    def folder(self) -> Path:
        """The temporary folder, for side files (attributes, PNGs) written before finish()."""
        return self.tmp

    def add(self, image: np.ndarray) -> None:
        """Append one HWC (or HW) uint8 image of the configured size and channels."""
        if image.ndim == 2:
            image = image[:, :, None]
        expected = (self.resolution, self.resolution, self.channels)
        if image.dtype != np.uint8 or image.shape != expected:
            raise ValueError(f"image {self.count} is {image.dtype} {image.shape}, expected uint8 {expected}")
        self._raw.write(np.ascontiguousarray(image.transpose(2, 0, 1)).tobytes())
        self.count += 1

    def add_all(self, results, limit: int | None = None) -> list[str]:
        """Take `images.prepare_many` results: add the good, skip the bad with their
        reason; stop after `limit` images. Returns the names of the images added."""
        added = []
        for name, image, reason in results:
            if image is None:
                self.skip(name, reason)
                continue
            self.add(image)
            added.append(name)
            if limit is not None and self.count >= limit:
                break
        return added

    def skip(self, file: str, reason: str) -> None:
        self.skipped.append(Skipped(file, reason))
        log.debug("skipped %s: %s", file, reason)

    def finish(self, manifest_fields: dict[str, Any]) -> Manifest:
        """Write images.npy and dataset.json, then rename the folder into place."""
        self._raw.close()
        raw_path = self.tmp / "images.raw"
        shape = (self.count, self.channels, self.resolution, self.resolution)
        digest = hashlib.sha256()
        with open(raw_path, "rb") as src, open(self.tmp / IMAGES, "wb") as dst:
            np.lib.format.write_array_header_1_0(
                dst, {"descr": "|u1", "fortran_order": False, "shape": shape})
            while chunk := src.read(1 << 24):
                digest.update(chunk)
                dst.write(chunk)
        raw_path.unlink()
        manifest = Manifest(count=self.count, resolution=self.resolution, channels=self.channels,
                            skipped=self.skipped, images_sha256=digest.hexdigest(),
                            **manifest_fields)
        (self.tmp / MANIFEST).write_text(manifest.to_json())
        replace_directory(self.tmp, self.out)
        if self.skipped:
            log.warning("%s: skipped %d of %d source images (reasons in %s)", manifest.name,
                        len(self.skipped), len(self.skipped) + self.count, self.out / MANIFEST)
        return manifest


def _remove_stale_partials(out: Path) -> None:
    """Delete what killed prepares of `out` left behind (their process is gone)."""
    for partial in out.parent.glob(f".{out.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            log.info("removing %s, left by an interrupted prepare", partial)
            shutil.rmtree(partial, ignore_errors=True)
        except (ValueError, PermissionError):
            pass

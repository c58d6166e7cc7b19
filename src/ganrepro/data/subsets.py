"""Nested subsets of a prepared dataset, for the data-efficiency studies.

A subset is itself a prepared dataset (the format of store.py: dataset.json + images.npy,
attributes.csv where the parent has one), so the training loader, the train command and
the train rule take it as they take any dataset. It is made from the one prepared dataset,
never from the source again: a fixed permutation of the parent's images (PCG64 seeded with
SUBSET_SEED) and its first round(count * fraction) entries, stored in the parent's order.
Every fraction takes a prefix of the same permutation, so the subsets are nested (the 10 %
one lies inside the 25 % one) and the same on every machine.

Its manifest keeps the parent's name (a run looks its settings up by it), its own count and
pixel checksum, and a `subset` record: the parent's count and pixel checksum, the fraction,
the seed and the SHA-256 of the chosen indices.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

import numpy as np

from ganrepro.data.store import ATTRIBUTES, DatasetWriter, Manifest, open_images, read_manifest
from ganrepro.errors import DataError

log = logging.getLogger(__name__)

SUBSET_SEED = 0
_CHUNK = 256          # images copied per read of the parent's memory map


def subset_size(count: int, fraction: float) -> int:
    """Images in the subset of `fraction` of `count` images (at least one)."""
    if not (isinstance(fraction, (int, float)) and math.isfinite(fraction) and 0 < fraction <= 1):
        raise DataError(f"a subset's fraction must be in (0, 1] (got {fraction!r})")
    return max(1, min(count, round(count * fraction)))


def subset_indices(count: int, fraction: float, seed: int = SUBSET_SEED) -> np.ndarray:
    """The parent's image indices in the subset of `fraction`, ascending: the first
    subset_size() entries of one fixed permutation of range(count)."""
    order = np.random.Generator(np.random.PCG64(seed)).permutation(count)
    return np.sort(order[:subset_size(count, fraction)]).astype(np.int64)


def indices_sha256(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, dtype="<i8").tobytes()).hexdigest()


def make_subset(data_dir: str | Path, fraction: float, out: str | Path) -> Manifest:
    """Write the subset of `fraction` of the prepared dataset in `data_dir` to `out`."""
    data_dir, out = Path(data_dir), Path(out)
    parent = read_manifest(data_dir)
    images = open_images(data_dir)
    if len(images) != parent.count:
        raise DataError(f"{data_dir} holds {len(images)} images but its manifest says {parent.count}; "
                        "prepare the dataset again")
    indices = subset_indices(parent.count, fraction)
    with DatasetWriter(out, parent.resolution, parent.channels) as writer:
        for start in range(0, len(indices), _CHUNK):
            for image in images[indices[start:start + _CHUNK]]:
                writer.add(image.transpose(1, 2, 0))
        if parent.attributes:
            lines = (data_dir / parent.attributes).read_text().splitlines()
            if len(lines) != parent.count + 1:
                raise DataError(f"{data_dir / parent.attributes} has {len(lines) - 1} rows for {parent.count} "
                                "images; prepare the dataset again")
            kept = [lines[0]] + [lines[1 + int(i)] for i in indices]
            (writer.folder / ATTRIBUTES).write_text("\n".join(kept) + "\n")
        manifest = writer.finish(dict(
            name=parent.name, source=parent.source, source_url=parent.source_url,
            source_sha256=parent.source_sha256, source_size=parent.source_size,
            preprocessing=parent.preprocessing, attributes=parent.attributes, spec=parent.spec,
            subset={"fraction": float(fraction), "seed": SUBSET_SEED, "parent_count": parent.count,
                    "parent_images_sha256": parent.images_sha256, "indices_sha256": indices_sha256(indices)}))
    log.info("%s: subset %s of %d images -> %d images in %s", parent.name, fraction, parent.count,
             manifest.count, out)
    return manifest

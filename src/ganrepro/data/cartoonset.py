"""Google Cartoon Set v1.0 (cartoonset10k / cartoonset100k), as the replication used it.

The archive (a .tgz of csX.png, 500x500 RGBA, each with a csX.csv of
`"attribute", variant, num_variants` lines; the 100k set in folders 0/ .. 9/) is
downloaded once into the cache and read member by member without extracting. Images are
composited on white and resized with antialiasing; the per-image CSVs become one
attributes table whose row i describes image i.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pandas as pd

from ganrepro.data.archive import Unusable, iter_members
from ganrepro.data.download import cache_path, fetch
from ganrepro.data.images import IMAGE_EXTENSIONS, Geometry, prepare_many
from ganrepro.data.store import ATTRIBUTES, DatasetWriter
from ganrepro.errors import DataError

log = logging.getLogger(__name__)


def _stem(member: str) -> str:
    return member.rsplit(".", 1)[0]


def parse_attributes(data: bytes) -> dict[str, int]:
    """One csX.csv -> {attribute: variant}."""
    out = {}
    for row in csv.reader(io.StringIO(data.decode("utf-8"))):
        if not row:
            continue
        if len(row) != 3:
            raise ValueError(f"expected 3 fields per line, got {len(row)}")
        out[row[0].strip()] = int(row[1])
    return out


def prepare(name: str, spec: dict, out: Path, cache_dir: Path, workers: int = 1) -> None:
    archive = cache_path(spec["url"], cache_dir)
    digest = fetch(spec["url"], archive, spec["sha256"], spec["size"])
    geometry = Geometry(spec["resolution"], spec["channels"])
    attributes: dict[str, dict[str, int] | None] = {}
    members = iter_members(archive, lambda m: m.lower().endswith((".csv", *IMAGE_EXTENSIONS)))

    def take_attributes(member: str, data: bytes | Unusable) -> bool:
        """Record a csX.csv; False for any other member."""
        if not member.lower().endswith(".csv"):
            return False
        try:
            if isinstance(data, Unusable):
                raise ValueError(data.reason)
            attributes[_stem(member)] = parse_attributes(data)
        except (ValueError, UnicodeDecodeError) as err:
            log.warning("%s: unreadable attributes file %s (%s)", archive, member, err)
            attributes[_stem(member)] = None
        return True

    def images():
        for member, data in members:
            if not take_attributes(member, data) and member.lower().endswith(IMAGE_EXTENSIONS):
                yield member, data

    with DatasetWriter(out, geometry.resolution, geometry.channels) as writer:
        results = prepare_many(images(), geometry, workers)
        kept = writer.add_all(results, spec["max_images"])
        results.close()
        for member, data in members:       # after max_images: only attribute files matter
            take_attributes(member, data)
        if not kept:
            first = f"; e.g. {writer.skipped[0].file}: {writer.skipped[0].reason}" if writer.skipped else ""
            raise DataError(f"{archive} holds no usable images ({len(writer.skipped)} skipped{first})")
        rows = [{"file": m, **(attributes.get(_stem(m)) or {})} for m in kept]
        pd.DataFrame(rows).to_csv(writer.folder / ATTRIBUTES, index=False)
        missing = sum(1 for m in kept if not attributes.get(_stem(m)))
        if missing:
            log.warning("%s: %d images have no readable attributes CSV (left empty in %s)",
                        name, missing, ATTRIBUTES)
        writer.finish(dict(
            name=name, source=spec["source"], source_url=spec["url"], source_sha256=digest,
            source_size=archive.stat().st_size, attributes=ATTRIBUTES, spec=spec,
            preprocessing=geometry.describe()))

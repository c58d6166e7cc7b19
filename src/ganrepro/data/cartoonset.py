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
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pandas as pd

from ganrepro.data.archive import iter_members
from ganrepro.data.download import fetch
from ganrepro.data.images import IMAGE_EXTENSIONS, Geometry, prepare_many
from ganrepro.data.store import ATTRIBUTES, DatasetWriter
from ganrepro.errors import DataError

log = logging.getLogger(__name__)


def archive_path(spec: dict, cache_dir: Path) -> Path:
    return Path(cache_dir) / PurePosixPath(urlparse(spec["url"]).path).name


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
    archive = archive_path(spec, cache_dir)
    digest = fetch(spec["url"], archive, spec["sha256"], spec["size"])
    geometry = Geometry(spec["resolution"], spec["channels"])
    attributes: dict[str, dict[str, int] | None] = {}
    limit = spec["max_images"]

    def images():
        wanted = 0
        for member, data in iter_members(archive):
            stem, ext = member.rsplit(".", 1) if "." in member else (member, "")
            if ext.lower() == "csv":
                try:
                    attributes[stem] = parse_attributes(data)
                except (ValueError, UnicodeDecodeError) as err:
                    log.warning("%s: unreadable attributes file %s (%s)", archive, member, err)
                    attributes[stem] = None
            elif f".{ext.lower()}" in IMAGE_EXTENSIONS and (limit is None or wanted < limit):
                wanted += 1
                yield member, data

    with DatasetWriter(out, geometry.resolution, geometry.channels) as writer:
        kept = []
        for member, image, reason in prepare_many(images(), geometry, workers):
            if image is None:
                writer.skip(member, reason)
            else:
                writer.add(image)
                kept.append(member)
        if not kept:
            raise DataError(f"{archive} holds no usable images "
                            f"({len(writer.skipped)} skipped, e.g. {writer.skipped[:1]})")
        rows = [{"file": m, **(attributes.get(m.rsplit(".", 1)[0]) or {})} for m in kept]
        pd.DataFrame(rows).to_csv(writer.folder / ATTRIBUTES, index=False)
        missing = sum(1 for m in kept if not attributes.get(m.rsplit(".", 1)[0]))
        if missing:
            log.warning("%s: %d images have no readable attributes CSV (left empty in %s)",
                        name, missing, ATTRIBUTES)
        writer.finish(dict(
            name=name, source=spec["source"], source_url=spec["url"], source_sha256=digest,
            source_size=archive.stat().st_size, attributes=ATTRIBUTES, spec=spec,
            preprocessing=geometry.describe()))

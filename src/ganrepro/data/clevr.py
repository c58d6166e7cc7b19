"""CLEVR v1.0 renders (480x320), prepared as the official GANformer code does:
centre-crop to the aspect ratio (0.75 by default), pad to a square with black, resize.
"""

from __future__ import annotations

from pathlib import Path

from ganrepro.data.archive import iter_members
from ganrepro.data.download import cache_path, fetch
from ganrepro.data.images import Geometry, prepare_many
from ganrepro.data.store import DatasetWriter
from ganrepro.errors import DataError


def prepare(name: str, spec: dict, out: Path, cache_dir: Path, workers: int = 1) -> None:
    archive = cache_path(spec["url"], cache_dir)
    digest = fetch(spec["url"], archive, spec["sha256"], spec["size"])
    geometry = Geometry(spec["resolution"], spec["channels"], ratio=spec["ratio"], square="pad")
    folder = f"/images/{spec['split']}/"

    def images():   # only the split's PNGs are read (the archive also holds large JSON files)
        yield from iter_members(archive, lambda m: folder in f"/{m}" and m.lower().endswith(".png"))

    with DatasetWriter(out, geometry.resolution, geometry.channels) as writer:
        writer.add_all(prepare_many(images(), geometry, workers), spec["max_images"])
        if writer.count == 0:
            raise DataError(f"{archive} has no usable PNG images under images/{spec['split']}/")
        writer.finish(dict(
            name=name, source="clevr", source_url=spec["url"], source_sha256=digest,
            source_size=archive.stat().st_size, spec=spec,
            preprocessing={**geometry.describe(), "split": spec["split"]}))

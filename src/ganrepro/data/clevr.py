"""CLEVR v1.0 renders (480x320), prepared as the official GANformer code does:
centre-crop to the aspect ratio (0.75 by default), pad to a square with black, resize.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from ganrepro.data.archive import iter_members
from ganrepro.data.download import fetch
from ganrepro.data.images import Geometry, prepare_many
from ganrepro.data.store import DatasetWriter
from ganrepro.errors import DataError


def prepare(name: str, spec: dict, out: Path, cache_dir: Path, workers: int = 1) -> None:
    archive = Path(cache_dir) / PurePosixPath(urlparse(spec["url"]).path).name
    digest = fetch(spec["url"], archive, spec["sha256"], spec["size"])
    geometry = Geometry(spec["resolution"], spec["channels"], ratio=spec["ratio"], square="pad")
    folder = f"/images/{spec['split']}/"
    limit = spec["max_images"]

    def images():
        n = 0
        for member, data in iter_members(archive):
            if folder in f"/{member}" and member.lower().endswith(".png"):
                if limit is not None and n >= limit:
                    return
                n += 1
                yield member, data

    with DatasetWriter(out, geometry.resolution, geometry.channels) as writer:
        for member, image, reason in prepare_many(images(), geometry, workers):
            writer.skip(member, reason) if image is None else writer.add(image)
        if writer.count == 0:
            raise DataError(f"{archive} has no usable PNG images under images/{spec['split']}/")
        writer.finish(dict(
            name=name, source="clevr", source_url=spec["url"], source_sha256=digest,
            source_size=archive.stat().st_size, spec=spec,
            preprocessing={**geometry.describe(), "split": spec["split"]}))

"""Dataset stage: sources -> results/datasets/{name}/ (see store.py for the format)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ganrepro.data import cartoonset, clevr, folder, shapes
from ganrepro.data.store import DatasetWriter, Manifest, open_images, read_manifest
from ganrepro.images import save_png

log = logging.getLogger(__name__)


def _prepare_shapes(name: str, spec: dict, out: Path, cache_dir: Path, workers: int = 1) -> None:
    with DatasetWriter(out, spec["resolution"], spec["channels"]) as writer:
        total = spec["num_images"] if spec["max_images"] is None else min(spec["num_images"], spec["max_images"])
        for _, image in tqdm(shapes.generate(spec), total=total, unit="img", desc=name, disable=None):
            writer.add(image)
        writer.finish(dict(
            name=name, source="shapes", source_url=None, source_sha256=None, source_size=None,
            spec=spec, preprocessing={
                "generator": "ganrepro.data.shapes", "seed": spec["seed"],
                "objects": [spec["min_objects"], spec["max_objects"]],
                "background": spec["background"], "antialiasing": "supersampled box filter"}))


# One entry per `source` in the config schema.
SOURCES = {
    "shapes": _prepare_shapes,
    "cartoonset10k": cartoonset.prepare,
    "cartoonset100k": cartoonset.prepare,
    "clevr": clevr.prepare,
    "folder": folder.prepare,
}


def prepare(name: str, spec: dict, out: str | Path, cache_dir: str | Path = "resources",
            workers: int = 1, png: bool = False) -> Manifest:
    """Prepare dataset `name` from its resolved config entry into folder `out`."""
    out = Path(out)
    SOURCES[spec["source"]](name, spec, out, Path(cache_dir), workers=workers)
    manifest = read_manifest(out)
    log.info("%s: %d images at %dx%d in %s", name, manifest.count, manifest.resolution,
             manifest.resolution, out)
    if png:
        export_png(out, out / "png")
    return manifest


def export_png(dataset: str | Path, dest: str | Path, limit: int | None = None) -> int:
    """Write the stored images as PNGs (for looking at them); returns how many."""
    images = open_images(dataset)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    n = len(images) if limit is None else min(limit, len(images))
    for i in tqdm(range(n), unit="img", desc="png", disable=None):
        arr = np.asarray(images[i]).transpose(1, 2, 0)
        save_png(arr, dest / f"{i:08d}.png")
    return n

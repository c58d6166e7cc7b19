"""`ganrepro data`: prepare datasets and export their images."""

from __future__ import annotations

from pathlib import Path

import click

from ganrepro import layout
from ganrepro.cli.app import main
from ganrepro.cli.options import DEFAULT_CONFIG
from ganrepro.errors import ConfigError
from ganrepro.settings import config as cfgmod
from ganrepro.settings.limits import NUM_IMAGES_MAX, WORKERS_MAX


@main.group("data")
def data_group() -> None:
    """Prepare and inspect datasets."""


@data_group.command("prepare")
@click.argument("name")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help=f"Config whose `datasets.NAME` entry to use [default: {DEFAULT_CONFIG}].")
@click.option("--spec", "spec_json", help="The dataset entry as JSON instead of a config (Snakemake passes this).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override one key of the dataset entry (repeatable), e.g. --set resolution=64.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder [default: results/datasets/NAME].")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Archive cache [default: the config's cache_dir].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, WORKERS_MAX),
              help="Processes decoding images (results do not depend on it).")
@click.option("--png/--no-png", default=False, show_default=True, help="Also export the images as PNGs under OUT/png/.")
def data_prepare(name, config_path, spec_json, sets, out, cache_dir, workers, png) -> None:
    """Prepare dataset NAME: a `datasets` entry of the config, or a source name
    (shapes, cartoonset10k, cartoonset100k, clevr, folder) with its defaults."""
    from ganrepro import data

    if spec_json is not None and config_path is not None:
        raise ConfigError("give either --spec or --config, not both")
    spec, default_cache = cfgmod.dataset_entry(name, config_path, spec_json, sets, DEFAULT_CONFIG)
    out = out or layout.dataset_dir(name)
    manifest = data.prepare(name, spec, out,
                            cache_dir=cache_dir or default_cache, workers=workers, png=png)
    click.echo(f"{name}: {manifest.count} images, {manifest.resolution}x{manifest.resolution}x"
               f"{manifest.channels}, {len(manifest.skipped)} skipped -> {out}")


@data_group.command("subset")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="The prepared dataset (results/datasets/NAME).")
@click.option("--fraction", required=True, type=click.FloatRange(0, 1, min_open=True),
              help="Share of its images to keep, in (0, 1].")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
def data_subset(data_dir, fraction, out) -> None:
    """Write a nested subset of a prepared dataset (a data-efficiency study's): a fixed
    permutation of its images, the first round(count * fraction) of them, so every smaller
    fraction lies inside every larger one; a prepared dataset itself, with its count and checksum."""
    from ganrepro.data.subsets import make_subset

    manifest = make_subset(data_dir, fraction, out)
    click.echo(f"{manifest.name}: {manifest.count} of {manifest.subset['parent_count']} images "
               f"(fraction {fraction}), sha256 {manifest.images_sha256[:12]}... -> {out}")


@data_group.command("export-png")
@click.argument("dataset", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the PNGs [default: DATASET/png].")
@click.option("--limit", type=click.IntRange(1, NUM_IMAGES_MAX), help="Export only the first N images.")
def data_export_png(dataset, out, limit) -> None:
    """Write a prepared dataset's images as PNG files for inspection."""
    from ganrepro.data import export_png

    n = export_png(dataset, out or Path(dataset) / "png", limit)
    click.echo(f"wrote {n} PNGs to {out or Path(dataset) / 'png'}")

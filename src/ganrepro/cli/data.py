"""`ganrepro data`: prepare datasets and export their images."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from ganrepro.cli.app import main
from ganrepro.cli.options import DEFAULT_CONFIG
from ganrepro.errors import ConfigError
from ganrepro.settings import config as cfgmod
from ganrepro.settings import schema
from ganrepro.settings.limits import NUM_IMAGES_MAX, WORKERS_MAX

@main.group("data")
def data_group() -> None:
    """Prepare and inspect datasets."""


def _parse_sets(pairs: tuple[str, ...]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r} must look like KEY=VALUE, e.g. --set resolution=64")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {pair!r}: its value is not valid YAML ({' '.join(str(err).split())})") from None
    return out


def dataset_spec(name: str, config_path: str | None, spec_json: str | None,
                 sets: tuple[str, ...]) -> tuple[dict, str]:
    """The resolved spec of dataset `name` and the cache dir, from --spec or a config."""
    overrides = _parse_sets(sets)
    if spec_json is not None:
        raw = cfgmod.parse_json(spec_json, "--spec")
        if not isinstance(raw, dict):
            raise ConfigError(f"--spec must be a JSON object such as '{{\"source\": \"shapes\"}}' (got {spec_json})")
        return cfgmod.resolve_dataset(name, {**raw, **overrides}), schema.default("cache_dir")
    path = config_path or DEFAULT_CONFIG
    # Without --config, a missing default config is fine for a bare source name.
    cfg = None if config_path is None and not Path(path).exists() else cfgmod.load(path)
    defined = cfg["datasets"] if cfg else {}
    if name in defined:
        raw = defined[name]
    elif name in schema.source_names():
        raw = {"source": name}
    else:
        where = f"defined in {path} (it defines: {', '.join(defined)})" if cfg else f"defined ({path} does not exist)"
        raise ConfigError(f"dataset {name!r} is neither {where} nor a source name "
                          f"({', '.join(schema.source_names())})")
    cache_dir = cfg["cache_dir"] if cfg else schema.default("cache_dir")
    return cfgmod.resolve_dataset(name, {**raw, **overrides}), cache_dir


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
    spec, default_cache = dataset_spec(name, config_path, spec_json, sets)
    manifest = data.prepare(name, spec, out or f"results/datasets/{name}",
                            cache_dir=cache_dir or default_cache, workers=workers, png=png)
    click.echo(f"{name}: {manifest.count} images, {manifest.resolution}x{manifest.resolution}x"
               f"{manifest.channels}, {len(manifest.skipped)} skipped -> {out or f'results/datasets/{name}'}")


@data_group.command("export-png")
@click.argument("dataset", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the PNGs [default: DATASET/png].")
@click.option("--limit", type=click.IntRange(1, NUM_IMAGES_MAX), help="Export only the first N images.")
def data_export_png(dataset, out, limit) -> None:
    """Write a prepared dataset's images as PNG files for inspection."""
    from ganrepro.data import export_png

    n = export_png(dataset, out or Path(dataset) / "png", limit)
    click.echo(f"wrote {n} PNGs to {out or Path(dataset) / 'png'}")

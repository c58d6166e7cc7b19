"""`ganrepro`: the command line every Snakemake rule calls.

Errors a user can fix (GanreproError) are printed as one line, `Error: ...`, with exit
status 1 and no traceback.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from pathlib import Path

import click
import yaml

from ganrepro import __version__
from ganrepro import config as cfgmod
from ganrepro.checks import (BATCH_MAX, FRAMES_MAX, NUM_GEN_MAX, NUM_IMAGES_MAX, REPEATS_MAX, RESOLUTION_MAX,
                             SEED_MAX, STEPS_MAX, WORKERS_MAX)
from ganrepro.errors import ConfigError, GanreproError

DEFAULT_CONFIG = "config/config.yaml"
DEFAULT_FRAMES = 8             # ganrepro generate --interpolate


def _config(config_path: str, config_json: str | None) -> dict:
    """The config from --config-json (Snakemake passes the resolved config) or --config."""
    if config_json is None:
        return cfgmod.load(config_path)
    return cfgmod.resolve(cfgmod.parse_json(config_json, "--config-json"), origin="--config-json")


class _FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan (which compares false with both bounds)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{rv} is not a finite number; allowed: {self.min:g}<=x<={self.max:g}", param, ctx)
        return rv


PSI = _FiniteFloatRange(0, 1)          # truncation psi, as metrics.evaluate and the schema allow it
SEED = click.IntRange(0, SEED_MAX)     # 32-bit seeds, as StyleGAN's scripts (NumPy's RandomState) take


def _writable_folder(path: str | Path, option: str = "--out") -> Path:
    """Make folder `path` (and its parents) and prove a file can be created in it, or one
    line saying why not (a file in the way, a read-only place, no permission)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ConfigError(f"{option} {path}: cannot write PNGs there ({err.strerror or err}); "
                          "give a folder that can be created and written") from None
    return path


def _check_writable_parent(path: str | Path, option: str = "--out") -> None:
    """Before any work, nothing created: the folder `path`, or its nearest existing
    ancestor, is a folder this process may write in."""
    here = Path(os.path.abspath(path))
    while not os.path.lexists(here) and here != here.parent:
        here = here.parent
    if not here.is_dir():
        raise ConfigError(f"{option} {path}: {here} is not a folder; give a folder that can be created and written")
    if not os.access(here, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: {here} is not writable; give a folder that can be created and written")


config_json_option = click.option("--config-json", help="The whole config as JSON instead of --config "
                                  "(what Snakemake passes).")


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GanreproError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:      # a full disk under a write that bypassed files.atomic_write
            from ganrepro.files import unhandled_disk_full

            if (full := unhandled_disk_full(err)) is None:
                raise
            raise click.ClickException(str(full)) from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ganrepro")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
def main(verbose: bool) -> None:
    """Reproduce 'Generative Adversarial Transformers' step by step."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")


# ---------------------------------------------------------------------------- config

@main.group("config")
def config_group() -> None:
    """Inspect configs."""


@config_group.command("show")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Config file to validate and complete.")
def config_show(config_path: str) -> None:
    """Validate a config and print it with every default filled in."""
    click.echo(yaml.safe_dump(cfgmod.load(config_path), sort_keys=False), nl=False)


# ---------------------------------------------------------------------------- data

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
        return cfgmod.resolve_dataset(name, {**raw, **overrides}), cfgmod.default("cache_dir")
    path = config_path or DEFAULT_CONFIG
    # Without --config, a missing default config is fine for a bare source name.
    cfg = None if config_path is None and not Path(path).exists() else cfgmod.load(path)
    defined = cfg["datasets"] if cfg else {}
    if name in defined:
        raw = defined[name]
    elif name in cfgmod.source_names():
        raw = {"source": name}
    else:
        where = f"defined in {path} (it defines: {', '.join(defined)})" if cfg else f"defined ({path} does not exist)"
        raise ConfigError(f"dataset {name!r} is neither {where} nor a source name "
                          f"({', '.join(cfgmod.source_names())})")
    cache_dir = cfg["cache_dir"] if cfg else cfgmod.default("cache_dir")
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


# ---------------------------------------------------------------------------- train

@main.command("train")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Config with the train, hparams, kimg and seeds keys.")
@click.option("--dataset", required=True, help="Dataset name (its prepared folder is results/datasets/NAME).")
@click.option("--model", required=True, help="stylegan2, ganformer-simplex, ganformer-duplex or gan.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False),
              help="Prepared dataset folder [default: results/datasets/DATASET].")
@click.option("--seed", type=SEED, help="Training seed [default: the first of the config's seeds].")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run folder [default: results/runs/DATASET/MODEL/seedSEED].")
@click.option("--dry-run", is_flag=True, help="Print the resolved options and exit.")
@click.option("--restart", is_flag=True,
              help="Start the run over from kimg 0: remove its training states, snapshots and stats first.")
@config_json_option
def train_command(config_path, dataset, model, data_dir, seed, out, dry_run, restart, config_json) -> None:
    """Train one model, writing snapshot-{kimg:06d}.pt at each kimg of the config.
    Run the same command again after an interruption to resume (from the newest training
    state whose checksum holds); --restart starts over instead."""
    from ganrepro import models, training

    cfg = _config(config_path, config_json)
    if model not in models.MODELS:
        raise ConfigError(f"unknown model {model!r}; allowed: {', '.join(models.MODELS)}")
    data_dir = data_dir or f"results/datasets/{dataset}"
    seed = cfg["seeds"][0] if seed is None else seed
    options = training.dry_run(cfg, data_dir, model, seed)
    # Refused before anything is allocated: counted on the meta device against this machine's memory.
    cfgmod.check_network_sizes(cfg, options["dataset"]["name"], options["hparams"]["resolution"],
                               options["hparams"]["channels"], [model],
                               "--config-json" if config_json is not None else config_path)
    if dry_run:
        click.echo(json.dumps(options, indent=2))
        return
    training.train(cfg, data_dir, model, out or f"results/runs/{dataset}/{model}/seed{seed}", seed, restart=restart)


# ---------------------------------------------------------------------------- metrics

def _counts(value: str) -> list[int]:
    try:
        counts = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 2:
        raise click.BadParameter(f"{value!r}: give one or more image counts >= 2, comma-separated",
                                 param_hint="'--num-gen'")
    if max(counts) > NUM_GEN_MAX:
        raise click.BadParameter(f"{value!r}: each image count must be <= {NUM_GEN_MAX} (20x fid50k)",
                                 param_hint="'--num-gen'")
    return counts


def _num_real_bound(ctx, param, value):
    """--num-real: 'all' or a count; the count's upper bound is checked here, the rest by
    metrics.stats.parse_num_real."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return value
    if n > NUM_IMAGES_MAX:
        raise click.BadParameter(f"{value!r}: give 'all' or a count <= {NUM_IMAGES_MAX}")
    return value


def _metric_options(fn):
    """Options shared by `evaluate` and `stats`."""
    for option in reversed([
        click.option("--num-real", default="all", show_default=True, callback=_num_real_bound,
                     help="Real images for the reference statistics, or 'all'."),
        click.option("--fid-mode", default="clean", show_default=True,
                     type=click.Choice(["clean", "legacy_tensorflow"]), help="clean-fid's mode."),
        click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, BATCH_MAX)),
        click.option("--weights-dir", default="resources/inception", show_default=True,
                     type=click.Path(file_okay=False),
                     help="Where NVIDIA's inception-2015-12-05.pt is used from when present."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--extractor", default="reference", show_default=True, type=click.Choice(["reference", "fast"]),
                     help="Run the Inception network as its TorchScript file (reference) or as the eager "
                          "rebuild of the same weights (fast: equal within 1e-4, faster on a CPU)."),
    ]):
        fn = option(fn)
    return fn


def _featurizer(fid_mode: str, weights_dir: str, device: str, probabilities: bool = False,
                extractor_path: str = "reference"):
    from ganrepro.gpus import resolve as resolve_device      # a GPU of its own when several jobs share them
    from ganrepro.metrics import inception
    from ganrepro.metrics.features import Featurizer

    extractor = inception.load(weights_dir, resolve_device(device), extractor_path)
    return Featurizer(extractor, fid_mode, probabilities=probabilities and extractor.logits)


@main.command("evaluate")
@click.option("--snapshot", required=True, type=click.Path(dir_okay=False), help="snapshot-KIMG.pt to measure.")
@click.option("--dataset", required=True, help="Dataset name (its prepared folder is results/datasets/NAME).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False),
              help="Prepared dataset folder [default: results/datasets/DATASET].")
@click.option("--metrics", "names", default="fid,kid,pr,is", show_default=True,
              help="Comma-separated: fid, kid, pr, is.")
@click.option("--num-gen", default="10000", show_default=True,
              help="Generated images; several comma-separated counts come from one pass (10000,50000).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the latents and noise.")
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1, REPEATS_MAX),
              help="Measure under seeds SEED..SEED+R-1 and record their spread (noise estimate).")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False),
              help="Real-statistics cache [default: results/stats/DATASET/MODE-realN.npz].")
@click.option("--save-images", type=click.Path(file_okay=False), help="Also write the generated images here as PNGs.")
@click.option("--trunc", "psi", default=1.0, show_default=True, type=PSI,
              help="Truncation psi of the generated images (1 = off, the fid50k convention).")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Metrics JSON [default: results/metrics/DATASET/MODEL/kimgKIMG.json].")
@_metric_options
def evaluate_command(snapshot, dataset, data_dir, names, num_gen, seed, repeats, stats_path, save_images, psi, out,
                     num_real, fid_mode, batch_size, weights_dir, device, extractor) -> None:
    """Measure one snapshot: FID/KID (clean-fid), Precision/Recall (k=3), IS where possible."""
    from ganrepro.gpus import resolve as resolve_device      # a GPU of its own when several jobs share them
    from ganrepro.metrics import Options, evaluate, write_json
    from ganrepro.metrics.stats import default_path, parse_num_real

    if seed + repeats - 1 > SEED_MAX:
        raise ConfigError(f"--seed {seed} --repeats {repeats} reaches seed {seed + repeats - 1}; seeds go up "
                          f"to {SEED_MAX}")
    opts = Options(metrics=[m.strip() for m in names.split(",") if m.strip()], num_gen=_counts(num_gen),
                   num_real=parse_num_real(num_real), seed=seed, repeats=repeats, fid_mode=fid_mode,
                   batch_size=batch_size, device=resolve_device(device), weights_dir=weights_dir,
                   save_images=save_images, psi=psi, extractor=extractor)
    data_dir = data_dir or f"results/datasets/{dataset}"
    stats_path = stats_path or default_path("results/stats", dataset, fid_mode, opts.num_real)
    record = evaluate(snapshot, data_dir, stats_path, opts)
    if out is None:                      # a run folder results/runs/D/M/seedS/ keeps its seed folder
        run = Path(snapshot).parent.name
        seed_dir = f"{run}/" if re.fullmatch(r"seed\d+", run) else ""
        out = f"results/metrics/{dataset}/{record['model']}/{seed_dir}kimg{record['kimg']:06d}.json"
    write_json(record, out)
    values = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record["metrics"].items())
    click.echo(f"{out}: {values} ({record['seconds']:.0f} s)")


@main.command("stats")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="Prepared dataset folder.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Cache file (.npz) to write or reuse.")
@_metric_options
def stats_command(data_dir, out, num_real, fid_mode, batch_size, weights_dir, device, extractor) -> None:
    """Inception statistics of the real images, cached (reused while the dataset is unchanged)."""
    from ganrepro.metrics.stats import parse_num_real, real_stats

    featurizer = _featurizer(fid_mode, weights_dir, device, extractor_path=extractor)
    try:
        s = real_stats(data_dir, parse_num_real(num_real), featurizer, out, batch_size)
    finally:
        featurizer.close()
    click.echo(f"{out}: {s.count} real images, {fid_mode} mode, extractor {s.key['extractor_sha256'][:12]} "
               f"({s.key['extractor']} path)")


# ---------------------------------------------------------------------------- download

_SHA256 = re.compile(r"[0-9a-f]{64}")


@main.command("download")
@click.argument("url")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where the file goes.")
@click.option("--sha256", help="Expected SHA-256 (64 lower-case hex digits) [default: trust the first "
              "complete download and verify against its recorded digest from then on].")
@click.option("--size", type=click.IntRange(1), help="Expected size in bytes.")
def download_command(url, out, sha256, size) -> None:
    """Download URL (http, https or file) to --out: resumable, verified, atomic (a
    released checkpoint, an archive). An existing verified file is kept."""
    from ganrepro.data.download import fetch

    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise ConfigError(f"--sha256 must be 64 lower-case hexadecimal digits (got {sha256!r})")
    digest = fetch(url, out, sha256, size)
    click.echo(f"{out}: sha256 {digest}")


# ---------------------------------------------------------------------------- released checkpoints

@main.command("import-checkpoint")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The ganrepro snapshot to write.")
@click.option("--network", default="Gs", show_default=True, type=click.Choice(["Gs", "G"]),
              help="Gs = the EMA generator (what the official metrics measure), G = the trained one.")
@click.option("--expect-sha256", help="Refuse the file unless its SHA-256 is this.")
@click.option("--expect-model", type=click.Choice(["stylegan2", "ganformer-simplex", "ganformer-duplex"]),
              help="Refuse the file unless it imports as this model.")
def import_checkpoint_command(file, out, network, expect_sha256, expect_model) -> None:
    """Import an official GANformer checkpoint (the released TensorFlow pickles, or a
    PyTorch network-snapshot-*.pkl) as a ganrepro snapshot. The file is read with a
    restricted unpickler: no code from it runs, and any global outside the official
    formats is refused."""
    from ganrepro.models.released import import_checkpoint

    if expect_sha256 is not None and not _SHA256.fullmatch(expect_sha256):
        raise ConfigError(f"--expect-sha256 must be 64 lower-case hexadecimal digits (got {expect_sha256!r})")
    info = import_checkpoint(file, out, network, expect_sha256, expect_model)
    hp = info["hparams"]
    click.echo(f"{out}: {info['model']} at {hp['resolution']} px, {info['parameters']:,} parameters, "
               f"from {info['source']['format']} {file} ({network}, sha256 {info['source']['sha256']})")


# ---------------------------------------------------------------------------- generate

@main.command("generate")
@click.option("--snapshot", required=True, type=click.Path(dir_okay=False), help="snapshot-KIMG.pt to sample from.")
@click.option("--seeds", metavar="LIST",
              help="Seeds to draw: 0-63, 1,5,9 or 0-3,10. Writes seedNNNN.png for each (its latent drawn "
                   "from that seed alone, so a seed gives the same image in any list) and grid.png of them.")
@click.option("--style-mix", nargs=2, metavar="ROWS COLS",
              help="Seed lists for style-mix.png (StyleGAN's style-mixing figure): cell (r, c) is row seed r's "
                   "image with column seed c's styles in --style-layers; the sources along the top and the left.")
@click.option("--style-layers", metavar="A-B",
              help="Styles (0-based, inclusive; a GANformer layer's local and global latents together) that the "
                   "column seeds replace [default: those of the 4x4 and 8x8 layers, StyleGAN's coarse styles].")
@click.option("--interpolate", nargs=2, metavar="A B",
              help="Walk from seed A to seed B: frameNNNN.png and interpolation.png (16 frames a row). Linear "
                   "in W, between the two seeds' truncated styles, as StyleGAN's gen_video.py walks; the "
                   "plain gan model has no W and walks along the great circle in z (slerp).")
@click.option("--frames", type=click.IntRange(2, FRAMES_MAX),
              help=f"Frames of the walk, both ends included [default: {DEFAULT_FRAMES}].")
@click.option("--trunc", "psi", default=1.0, show_default=True, type=PSI,
              help="Truncation psi: w = w_avg + psi (w - w_avg) with the snapshot's own w_avg; 1 = off, "
                   "0 = the average image.")
@click.option("--noise-mode", default="const", show_default=True, type=click.Choice(["const", "random", "none"]),
              help="Per-pixel noise: const = the stored noise images (as StyleGAN's generate.py), random = "
                   "fresh noise drawn from each image's seed (a style-mix cell: its row's; a frame: its nearer "
                   "end's), none = no noise. The gan model has none.")
@click.option("--device", default="auto", show_default=True,
              help="auto (a GPU when there is one), cpu, cuda or cuda:N.")
@click.option("--batch-size", default=1, show_default=True, type=click.IntRange(1, BATCH_MAX),
              help="Images per forward pass. With 1 an image never depends on what else is drawn; larger "
                   "batches are faster on a GPU but compute in another float order, which can move a pixel "
                   "by one level between different seed lists.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the PNGs (made if missing).")
def generate_command(snapshot, seeds, style_mix, style_layers, interpolate, frames, psi, noise_mode, device,
                     batch_size, out) -> None:
    """Images from a snapshot, as StyleGAN's generate.py and style_mixing.py make them: one PNG
    per seed, a style-mixing grid and a latent walk (any of the three in one call). PNGs
    are written atomically; running again overwrites them."""
    from ganrepro import sampling
    from ganrepro.models import load_snapshot

    if seeds is None and style_mix is None and interpolate is None:
        raise ConfigError("give --seeds, --style-mix or --interpolate (or several of them)")
    if style_layers is not None and style_mix is None:
        raise ConfigError("--style-layers chooses the styles --style-mix swaps; give --style-mix too")
    if frames is not None and interpolate is None:
        raise ConfigError("--frames is the length of an --interpolate walk; give --interpolate too")
    seed_list = sampling.parse_seeds(seeds, "--seeds") if seeds is not None else None
    mix = (sampling.parse_seeds(style_mix[0], "--style-mix ROWS"),
           sampling.parse_seeds(style_mix[1], "--style-mix COLS")) if style_mix is not None else None
    walk = (sampling.parse_seed(interpolate[0], "--interpolate A"),
            sampling.parse_seed(interpolate[1], "--interpolate B")) if interpolate is not None else None
    _check_writable_parent(out)
    torch_device = sampling.resolve_device(device)
    G, meta = load_snapshot(snapshot, torch_device)
    sampler = sampling.Sampler(G, torch_device, psi, noise_mode, batch_size)
    if not sampler.styled and psi != 1:
        raise ConfigError(f"--trunc {psi:g}: {snapshot} is a {meta['model']} model, which has no W space and "
                          f"no w_avg to truncate toward; leave --trunc at 1")
    if mix:                                 # every check before the first image is written
        sampling.check_style_mix(sampler, *mix)
    layers = sampling.parse_style_layers(style_layers, G) if mix else None
    out = _writable_folder(out)
    lines = []
    if seed_list:
        lines.append(sampling.write_seeds(sampler, seed_list, out))
    if mix:
        lines.append(sampling.write_style_mix(sampler, *mix, layers, out))
    if walk:
        lines.append(sampling.write_interpolation(sampler, *walk, frames or DEFAULT_FRAMES, out))
    for line in lines:
        click.echo(line)


# ---------------------------------------------------------------------------- models

@main.group("models")
def models_group() -> None:
    """Inspect the registered models."""


@models_group.command("params")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Config whose `hparams` to apply.")
@click.option("--resolution", "resolutions", multiple=True, type=click.IntRange(8, RESOLUTION_MAX),
              default=(64, 256), show_default=True, help="Image resolution(s) to count at (repeatable).")
@click.option("--defaults", is_flag=True, help="List every hyper-parameter with its value too.")
@click.option("--dataset", help="Apply this dataset's preset and overrides too (default: the top-level hparams).")
def models_params(config_path, resolutions, defaults, dataset) -> None:
    """Parameter counts of G and D for every model, as the config builds them (counted on
    PyTorch's meta device: no weights are allocated)."""
    import torch

    from ganrepro import models, presets

    cfg = original = cfgmod.load(config_path)
    if dataset is not None:
        if dataset not in cfg["datasets"]:
            raise ConfigError(f"--dataset {dataset!r} is not in {config_path}; allowed: {', '.join(cfg['datasets'])}")
        cfg = presets.for_dataset(cfg, dataset)
    for res in resolutions:          # a network the machine could not train is refused, naming its keys
        cfgmod.check_network_sizes(original, dataset, res, 3, models.MODELS, config_path)
    where = f"{config_path}, dataset {dataset}" if dataset else config_path
    click.echo(f"{'model':<18} {'res':>5} {'G params':>12} {'D params':>12}   (hparams from {where})")
    for res in resolutions:
        for name in models.MODELS:
            with torch.device("meta"):
                net = models.build(name, **models.configured_hparams(cfg, name, res))
            click.echo(f"{name:<18} {res:>5} {models.count_parameters(net.G):>12,} "
                       f"{models.count_parameters(net.D):>12,}")
            if defaults:
                click.echo("    " + ", ".join(f"{k}={v}" for k, v in net.hparams.items()))


# ---------------------------------------------------------------------------- bench

@main.group("bench")
def bench_group() -> None:
    """Benchmarks whose numbers go in the README (with the device they ran on)."""


@bench_group.command("data")
@click.option("--num-images", default=10000, show_default=True, type=click.IntRange(1, NUM_IMAGES_MAX),
              help="Scenes to generate for the `shapes` timing.")
@click.option("--resolution", default=32, show_default=True, type=click.IntRange(8, 256),
              help="Resolution of the generated scenes (shapes goes up to 256).")
@click.option("--loader-resolution", default=64, show_default=True, type=click.IntRange(8, RESOLUTION_MAX),
              help="Resolution of the dataset the loader reads.")
@click.option("--loader-images", default=4096, show_default=True, type=click.IntRange(1, NUM_IMAGES_MAX),
              help="Size of the dataset the loader reads (three mirrored passes are timed).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, BATCH_MAX))
def bench_data(num_images, resolution, loader_resolution, loader_images, batch_size) -> None:
    """Time `shapes` generation and the training loader on this machine."""
    from ganrepro.bench import bench_data as run

    for line in run(num_images, resolution, loader_resolution, batch_size, loader_images):
        click.echo(line)


@bench_group.command("train")
@click.option("--setting", "settings", multiple=True, type=click.Choice(["default", "paper64"]),
              default=("default", "paper64"), show_default=True,
              help="default = config/config.yaml at 32 px; paper64 = config/paper.yaml at 64 px.")
@click.option("--model", "models_", multiple=True, default=("stylegan2", "ganformer-simplex", "ganformer-duplex", "gan"),
              show_default=True)
@click.option("--steps", default=3, show_default=True, type=click.IntRange(1, STEPS_MAX))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (auto: cuda if present).")
@click.option("--warmup/--no-warmup", default=True, show_default=True,
              help="Run one untimed step of each kind first (needed on GPUs, optional on a CPU).")
def bench_train(settings, models_, steps, device, warmup) -> None:
    """sec/kimg, img/s and peak memory of training steps for each model and setting."""
    from ganrepro.bench import bench_train as run

    for line in run(settings, models_, steps, device, warmup):
        click.echo(line)


@bench_group.command("throughput")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True, type=click.Path(dir_okay=False))
@config_json_option
@click.option("--dataset", required=True, help="Dataset name (its prepared folder is results/datasets/NAME).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False),
              help="Prepared dataset folder [default: results/datasets/DATASET].")
@click.option("--rounds", default=10, show_default=True, type=click.IntRange(2, STEPS_MAX),
              help="Rounds; each times every model once, in turn.")
@click.option("--steps", default=3, show_default=True, type=click.IntRange(1, STEPS_MAX),
              help="Training steps per model per round.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSON file to write.")
def bench_throughput(config_path, config_json, dataset, data_dir, rounds, steps, out) -> None:
    """Training throughput of every configured model, timed interleaved on one device (the
    measurement the report's attention-cost claim is decided on)."""
    from ganrepro.bench import throughput
    from ganrepro.files import atomic_write_text

    from ganrepro.data.store import read_manifest

    cfg = _config(config_path, config_json)
    data_dir = data_dir or f"results/datasets/{dataset}"
    manifest = read_manifest(data_dir)
    cfgmod.check_network_sizes(cfg, manifest.name, manifest.resolution, manifest.channels, cfg["models"],
                               "--config-json" if config_json is not None else config_path)
    record = throughput(cfg, data_dir, rounds, steps)
    record["dataset"] = dataset
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    for model, m in record["models"].items():
        click.echo(f"{model:<18} {m['img_per_sec']:>8.1f} img/s (median of {rounds} rounds)")
    click.echo(f"wrote {out}")


@bench_group.command("metrics")
@click.option("--setting", "settings", multiple=True, type=click.Choice(["default", "paper64"]),
              default=("default", "paper64"), show_default=True, help="Generator setting(s) to time.")
@click.option("--model", default="stylegan2", show_default=True, help="Generator to sample from.")
@click.option("--images", default=256, show_default=True, type=click.IntRange(1, NUM_GEN_MAX),
              help="Images generated and measured per setting (the fid10k/fid50k times are projected).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, BATCH_MAX))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (auto: cuda if present).")
def bench_metrics(settings, model, images, batch_size, device) -> None:
    """Inception feature throughput and the time of a FID evaluation."""
    from ganrepro.bench import bench_metrics as run

    for line in run(settings, model, images, device, batch_size):
        click.echo(line)


@bench_group.command("inception")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1, BATCH_MAX))
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1, STEPS_MAX),
              help="Interleaved rounds; each times one batch on each path.")
@click.option("--threads", multiple=True, type=click.IntRange(1, 1024), default=(1, 2), show_default=True,
              help="torch threads to time at (repeatable).")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N (auto: cuda if present).")
def bench_inception(batch_size, rounds, threads, device) -> None:
    """Inception img/s of the reference TorchScript module and the fast path, side by side."""
    from ganrepro.bench import bench_inception as run

    for line in run(batch_size, rounds, threads, device):
        click.echo(line)


@bench_group.command("models")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Config whose `hparams` to time.")
@click.option("--resolution", "resolutions", multiple=True, type=click.IntRange(8, RESOLUTION_MAX), default=(32, 64),
              show_default=True)
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1, BATCH_MAX))
@click.option("--steps", default=3, show_default=True, type=click.IntRange(1, STEPS_MAX),
              help="Timed steps per measurement.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (auto: cuda if present).")
@click.option("--bf16/--fp32", default=False, show_default=True, help="bf16 autocast (GPU).")
@click.option("--channels-last/--no-channels-last", default=False, show_default=True)
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the networks first.")
def bench_models(config_path, resolutions, batch_size, steps, device, bf16, channels_last, compile_) -> None:
    """Forward+backward images/s of G and D for every model, and the attention share."""
    from ganrepro.bench import bench_models as run

    from ganrepro.models import MODELS

    cfg = cfgmod.load(config_path)
    for res in resolutions:        # G and D with their gradients: refused before anything is allocated
        cfgmod.check_network_sizes(cfg, None, res, 3, MODELS, config_path, training=False)
    for line in run(cfg, resolutions, batch_size, steps, device, bf16, channels_last, compile_):
        click.echo(line)


# ---------------------------------------------------------------------------- report

from ganrepro.report.cli import COMMANDS as _REPORT_COMMANDS  # noqa: E402  (click only; no pandas at import)

for _command in _REPORT_COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":
    main()

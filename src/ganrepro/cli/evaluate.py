"""`ganrepro evaluate` and `ganrepro stats`: the metrics of a snapshot, and the real images' statistics."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ganrepro.cli.app import main
from ganrepro.cli.options import PSI, SEED
from ganrepro.errors import ConfigError
from ganrepro.settings.limits import BATCH_MAX, NUM_GEN_MAX, NUM_IMAGES_MAX, REPEATS_MAX, SEED_MAX

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

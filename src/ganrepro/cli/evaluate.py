"""`ganrepro evaluate` and `ganrepro stats`: the metrics of a snapshot, and the real images' statistics."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click

from ganrepro import layout, protocol
from ganrepro.cli.app import main
from ganrepro.cli.options import PSI, SEED, either_config
from ganrepro.errors import ConfigError
from ganrepro.settings.limits import BATCH_MAX, KIMG_MAX, NUM_GEN_MAX, NUM_IMAGES_MAX, REPEATS_MAX, SEED_MAX


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
    from ganrepro import devices
    from ganrepro.metrics import inception
    from ganrepro.metrics.features import Featurizer

    extractor = inception.load(weights_dir, devices.resolve(device), extractor_path)
    return Featurizer(extractor, fid_mode, probabilities=probabilities and extractor.logits)


# The options that say how to measure: each sets the EvaluationPlan field of its name.
PLAN_OPTIONS = tuple(field.name for field in dataclasses.fields(protocol.EvaluationPlan))


def snapshot_meta(snapshot: str) -> dict:
    """The metadata of a snapshot (its kimg; `source` where it was imported), read without
    building the generator; a file that is not a current snapshot goes through
    load_snapshot, which refuses it with its one line. (`evaluate` loads and checks the
    snapshot in full afterwards.)"""
    from ganrepro.models import SNAPSHOT_FORMAT, load_snapshot, read_snapshot_file

    payload = read_snapshot_file(snapshot)
    if isinstance(payload, dict) and payload.get("format") == SNAPSHOT_FORMAT and type(payload.get("kimg")) is int:
        return {k: v for k, v in payload.items() if k != "state_dict"}
    return load_snapshot(snapshot, "cpu")[1]


def _stage(cfg: dict, snapshot: str, kimg: int | None, last_kimg: int | None) -> str:
    """Which snapshot the config's plan is for: a released checkpoint (an imported snapshot
    names its source), else the last checkpoint when its kimg (--kimg, else the snapshot's)
    is the last one (--last-kimg, else the config's), else an earlier checkpoint."""
    if kimg is None:
        meta = snapshot_meta(snapshot)
        if meta.get("source"):
            return protocol.RELEASED
        kimg = meta["kimg"]
    return protocol.stage_of(kimg, cfg["kimg"][-1] if last_kimg is None else last_kimg)


def evaluation_plan(options: dict, explicit: set[str], cfg: dict | None, snapshot: str, kimg: int | None = None,
                    last_kimg: int | None = None) -> protocol.EvaluationPlan:
    """What `ganrepro evaluate` measures: the config's plan for this snapshot
    (protocol.plan, for the source of the config's entry of --dataset), with the options
    given on the command line (`explicit`) over it; without a config, the options and
    their defaults."""
    given = {"names": tuple(m.strip() for m in options["names"].split(",") if m.strip()),
             "num_gen": tuple(_counts(options["num_gen"])),
             **{k: options[k] for k in PLAN_OPTIONS if k not in ("names", "num_gen")}}
    if cfg is None:
        return protocol.EvaluationPlan(**given)
    source = (cfg.get("datasets") or {}).get(options["dataset"], {}).get("source")
    plan = protocol.plan(cfg["metrics"], _stage(cfg, snapshot, kimg, last_kimg), source)
    return dataclasses.replace(plan, **{k: given[k] for k in explicit if k in PLAN_OPTIONS})


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
@click.option("--disentanglement", type=click.IntRange(10, NUM_GEN_MAX),
              help="Also score DCI and modularity over this many images (a `shapes` dataset only; "
                   "docs/metrics.md) [default: not scored].")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Metrics JSON [default: results/metrics/DATASET/MODEL/kimgKIMG.json].")
@_metric_options
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Measure as the pipeline does under this config (its metrics section and last kimg); "
                   "the options given here override it [default: the options alone].")
@click.option("--config-json", help="The config as JSON instead of --config (what Snakemake passes).")
@click.option("--kimg", type=click.IntRange(0, KIMG_MAX),
              help="The snapshot's kimg, for the config's plan [default: read from the snapshot].")
@click.option("--last-kimg", type=click.IntRange(0, KIMG_MAX),
              help="The run's last kimg, measured at final_num_gen and under `repeats` seeds "
                   "[default: the config's last kimg].")
@click.pass_context
def evaluate_command(ctx, snapshot, dataset, data_dir, names, num_gen, seed, repeats, stats_path, save_images, psi,
                     disentanglement, out, num_real, fid_mode, batch_size, weights_dir, device, extractor,
                     config_path, config_json, kimg, last_kimg) -> None:
    """Measure one snapshot: FID/KID (clean-fid), Precision/Recall (k=3), IS where possible."""
    from ganrepro import devices
    from ganrepro.metrics import Options, evaluate, write_json
    from ganrepro.metrics.stats import parse_num_real

    cfg = either_config(config_path, config_json, None)
    if cfg is None and (kimg is not None or last_kimg is not None):
        raise ConfigError(f"{'--kimg' if kimg is not None else '--last-kimg'} places the snapshot in a "
                          "config's evaluation plan; give --config (or --config-json) too")
    explicit = {name for name in PLAN_OPTIONS
                if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    plan = evaluation_plan(ctx.params, explicit, cfg, snapshot, kimg, last_kimg)
    if plan.seed + plan.repeats - 1 > SEED_MAX:
        raise ConfigError(f"--seed {plan.seed} --repeats {plan.repeats} reaches seed {plan.seed + plan.repeats - 1}; "
                          f"seeds go up to {SEED_MAX}")
    opts = Options(metrics=list(plan.names), num_gen=list(plan.num_gen), num_real=parse_num_real(plan.num_real),
                   seed=plan.seed, repeats=plan.repeats, fid_mode=plan.fid_mode, batch_size=plan.batch_size,
                   device=str(devices.resolve(plan.device)), weights_dir=plan.weights_dir, save_images=save_images,
                   psi=psi, extractor=plan.extractor, disentanglement=plan.disentanglement)
    data_dir = data_dir or layout.dataset_dir(dataset)
    stats_path = stats_path or layout.stats(dataset, plan.fid_mode, opts.num_real)
    record = evaluate(snapshot, data_dir, stats_path, opts)
    if out is None:                      # a run folder results/runs/D/M/seedS/ keeps its seed folder
        run = Path(snapshot).parent.name
        run_seed = run[len("seed"):] if re.fullmatch(r"seed\d+", run) else None
        out = layout.metrics(dataset, record["model"], run_seed, record["kimg"])
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

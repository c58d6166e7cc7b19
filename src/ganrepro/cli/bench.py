"""`ganrepro bench`: benchmarks, and the throughput stage of the pipeline."""

from __future__ import annotations

import click

from ganrepro import layout
from ganrepro.cli.app import main
from ganrepro.cli.options import DEFAULT_CONFIG, config_json_option, load_config
from ganrepro.settings import config as cfgmod
from ganrepro.settings.limits import BATCH_MAX, NUM_GEN_MAX, NUM_IMAGES_MAX, RESOLUTION_MAX, STEPS_MAX
from ganrepro.settings.registry import MODELS, with_role


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
              help="default = config/config.yaml at 16 px; paper64 = config/paper.yaml at 64 px.")
@click.option("--model", "models_", multiple=True, default=tuple(MODELS),
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
    from ganrepro.data.store import read_manifest
    from ganrepro.models import check_network_sizes
    from ganrepro.training.throughput import write_throughput

    cfg = load_config(config_path, config_json)
    data_dir = data_dir or layout.dataset_dir(dataset)
    manifest = read_manifest(data_dir)
    check_network_sizes(cfg, manifest.name, manifest.resolution, manifest.channels, cfg["models"],
                        "--config-json" if config_json is not None else config_path)
    record = write_throughput(cfg, dataset, data_dir, rounds, steps, out)
    for model, m in record["models"].items():
        click.echo(f"{model:<18} {m['img_per_sec']:>8.1f} img/s (median of {rounds} rounds)")
    click.echo(f"wrote {out}")


@bench_group.command("metrics")
@click.option("--setting", "settings", multiple=True, type=click.Choice(["default", "paper64"]),
              default=("default", "paper64"), show_default=True, help="Generator setting(s) to time.")
@click.option("--model", default=with_role("baseline"), show_default=True, help="Generator to sample from.")
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
    from ganrepro.models import check_network_sizes

    cfg = cfgmod.load(config_path)
    for res in resolutions:        # G and D with their gradients: refused before anything is allocated
        check_network_sizes(cfg, None, res, 3, MODELS, config_path, training=False)
    for line in run(cfg, resolutions, batch_size, steps, device, bf16, channels_last, compile_):
        click.echo(line)

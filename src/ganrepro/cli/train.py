"""`ganrepro train`: one training run."""

from __future__ import annotations

import json

import click

from ganrepro import layout
from ganrepro.cli.app import main
from ganrepro.cli.options import DEFAULT_CONFIG, SEED, config_json_option, load_config
from ganrepro.errors import ConfigError
from ganrepro.settings.hparams import one_of
from ganrepro.settings.registry import MODELS


@main.command("train")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Config with the train, hparams, kimg and seeds keys.")
@click.option("--dataset", required=True, help="Dataset name (its prepared folder is results/datasets/NAME).")
@click.option("--model", required=True, help=f"{one_of(MODELS)}.")
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

    cfg = load_config(config_path, config_json)
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; allowed: {', '.join(MODELS)}")
    data_dir = data_dir or layout.dataset_dir(dataset)
    seed = cfg["seeds"][0] if seed is None else seed
    options = training.dry_run(cfg, data_dir, model, seed)
    # Refused before anything is allocated: counted on the meta device against this machine's memory.
    models.check_network_sizes(cfg, options["dataset"]["name"], options["hparams"]["resolution"],
                               options["hparams"]["channels"], [model],
                               "--config-json" if config_json is not None else config_path)
    if dry_run:
        click.echo(json.dumps(options, indent=2))
        return
    training.train(cfg, data_dir, model, out or layout.run_dir(dataset, model, seed), seed, restart=restart)

"""`ganrepro models`: the registered models and their sizes."""

from __future__ import annotations

import click

from ganrepro.cli.app import main
from ganrepro.cli.options import DEFAULT_CONFIG
from ganrepro.errors import ConfigError
from ganrepro.settings import config as cfgmod
from ganrepro.settings.limits import RESOLUTION_MAX
from ganrepro.settings.registry import MODELS
from ganrepro.settings.run import effective_run


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

    from ganrepro import models

    cfg = cfgmod.load(config_path)
    if dataset is not None and dataset not in cfg["datasets"]:
        raise ConfigError(f"--dataset {dataset!r} is not in {config_path}; allowed: {', '.join(cfg['datasets'])}")
    for res in resolutions:          # a network the machine could not train is refused, naming its keys
        models.check_network_sizes(cfg, dataset, res, 3, MODELS, config_path)
    where = f"{config_path}, dataset {dataset}" if dataset else config_path
    click.echo(f"{'model':<18} {'res':>5} {'G params':>12} {'D params':>12}   (hparams from {where})")
    for res in resolutions:
        for name in MODELS:
            run = effective_run(cfg, dataset, name, resolution=res, channels=3)
            with torch.device("meta"):
                net = models.build(name, **run.hparams)
            click.echo(f"{name:<18} {res:>5} {models.count_parameters(net.G):>12,} "
                       f"{models.count_parameters(net.D):>12,}")
            if defaults:
                click.echo("    " + ", ".join(f"{k}={v}" for k, v in net.hparams.items()))

"""`ganrepro config`: inspect configs."""

from __future__ import annotations

import click
import yaml

from ganrepro.cli.app import main
from ganrepro.cli.options import DEFAULT_CONFIG
from ganrepro.settings import config as cfgmod


@main.group("config")
def config_group() -> None:
    """Inspect configs."""


@config_group.command("show")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Config file to validate and complete.")
def config_show(config_path: str) -> None:
    """Validate a config and print it with every default filled in."""
    click.echo(yaml.safe_dump(cfgmod.load(config_path), sort_keys=False), nl=False)

"""What several commands share: the default config, option types and checks of --out."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import click

from ganrepro.errors import ConfigError
from ganrepro.settings import config as cfgmod
from ganrepro.settings.limits import SEED_MAX


DEFAULT_CONFIG = "config/config.yaml"



def load_config(config_path: str, config_json: str | None) -> dict:
    """The config from --config-json (Snakemake passes the resolved config) or --config."""
    if config_json is None:
        return cfgmod.load(config_path)
    return cfgmod.resolve(cfgmod.parse_json(config_json, "--config-json"), origin="--config-json")


def either_config(config_path: str | None, config_json: str | None, default: str | None) -> dict | None:
    """For commands whose --config has no default of its own: the config from one of
    --config-json and --config (never both), else from `default` (None: no config)."""
    if config_json is not None and config_path is not None:
        raise ConfigError("give either --config-json or --config, not both")
    if config_json is None and (config_path or default) is None:
        return None
    return load_config(config_path or default, config_json)


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan (which compares false with both bounds)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{rv} is not a finite number; allowed: {self.min:g}<=x<={self.max:g}", param, ctx)
        return rv


PSI = FiniteFloatRange(0, 1)          # truncation psi, as metrics.evaluate and the schema allow it
SEED = click.IntRange(0, SEED_MAX)     # 32-bit seeds, as StyleGAN's scripts (NumPy's RandomState) take


def writable_folder(path: str | Path, option: str = "--out") -> Path:
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


def check_writable_parent(path: str | Path, option: str = "--out") -> None:
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

"""The config schema: where it is, and what it declares.

One schema (workflow/schemas/config.schema.yaml, shipped inside the package as
ganrepro/schemas/config.schema.yaml) serves Snakemake's validate() in the Snakefile and
every `ganrepro` command that reads a config (settings.config). Its defaults are the
official code's recipe (settings.presets reads them).
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SCHEMA_RESOURCE = "schemas/config.schema.yaml"
SCHEMA_DOC = "workflow/schemas/config.schema.yaml"


@functools.cache
def schema() -> dict[str, Any]:
    """The config schema as a dict (read once)."""
    text = resources.files("ganrepro").joinpath(SCHEMA_RESOURCE).read_text()
    return yaml.safe_load(text)


def schema_path() -> Path:
    """Filesystem path of the schema file (for Snakemake's validate())."""
    return Path(str(resources.files("ganrepro").joinpath(SCHEMA_RESOURCE)))


def dataset_schema() -> dict[str, Any]:
    return schema()["$defs"]["dataset"]


def default(key: str) -> Any:
    """The schema's default for a top-level key."""
    return copy.deepcopy(schema()["properties"][key]["default"])


def source_names() -> list[str]:
    return list(dataset_schema()["properties"]["source"]["enum"])


def model_names() -> list[str]:
    """The models the schema's `models` key allows (the registry's names)."""
    return list(schema()["properties"]["models"]["items"]["enum"])

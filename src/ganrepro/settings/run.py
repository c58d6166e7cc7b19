"""A run's effective settings: what training one model on one dataset uses.

`effective_run` is the one derivation of them. The training job records it, the report
falls back on it where no run recorded its options, the config checks range-check it, and
`ganrepro models params` counts the networks it builds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ganrepro.settings.presets import for_dataset, preset_of
from ganrepro.settings.registry import resolve_hparams
from ganrepro.settings.schema import dataset_schema


@dataclass(frozen=True)
class EffectiveRun:
    model: str
    dataset: str | None              # None: the config's top-level settings
    preset: str                      # the dataset's preset ("none" for the top level)
    train: dict[str, Any]            # the whole `train` section: the recipe and how the run is carried out
    hparams: dict[str, Any]          # every hyper-parameter of `model`, defaults included
    kimg: list[int]                  # the snapshots


def configured_hparams(cfg: dict, name: str, resolution: int, channels: int = 3) -> dict[str, Any]:
    """The hyper-parameters the top level of a resolved config sets for model `name` at a
    dataset's size (the model's defaults not filled in)."""
    return {**cfg.get("hparams", {}).get(name, {}), "resolution": resolution, "channels": channels}


def effective_run(cfg: dict[str, Any], dataset: str | None, model: str, *,
                  resolution: int | None = None, channels: int | None = None) -> EffectiveRun:
    """What a run of `model` on `dataset` uses, from a resolved config: the top level, the
    dataset's preset and its own overrides (settings.presets), the model's defaults, and the
    dataset's size. `resolution` and `channels` replace the config entry's (the training
    job passes its prepared dataset's; a dataset the config does not list, or None, gets
    the top-level settings and the schema's default size). A bad hyper-parameter raises
    ConfigError."""
    entry = (cfg.get("datasets", {}).get(dataset) or {}) if dataset is not None else {}
    size = dataset_schema()["properties"]
    resolution = entry.get("resolution", size["resolution"]["default"]) if resolution is None else resolution
    channels = entry.get("channels", size["channels"]["default"]) if channels is None else channels
    own = for_dataset(cfg, dataset)
    hparams = resolve_hparams(model, **configured_hparams(own, model, resolution, channels))
    return EffectiveRun(model=model, dataset=dataset, preset=preset_of(entry), train=dict(own.get("train", {})),
                        hparams=dataclasses.asdict(hparams), kimg=list(own.get("kimg", [])))

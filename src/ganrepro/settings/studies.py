"""Studies: one variation over a base, expanded into the points the DAG trains.

A config's `studies:` section names, per study, a base (a dataset of `datasets`, the models,
optionally its own recipe keys `train`, hyper-parameters `hparams`, `seeds` and `kimg`) and
ONE variation under `vary:`, a key with a list of values:

    fraction: [0.1, 0.25, 0.5, 1.0]           the share of the prepared dataset trained on
    attention_resolutions: [[4, 8], [4, 32]]  the attention range, as [start_res, end_res]
    <hyper-parameter>: [values]               any field of the models' hyper-parameter classes
                                              (components, integration, heads, ...)

`expand` turns a resolved config's studies into points, one per value. A point carries the
complete config of its runs: a resolved config with the study's one dataset, its models,
seeds and kimg, and the value applied at the highest precedence (the dataset entry's own
`train` / `hparams`, settings.presets), so the Snakefile's per-job config functions and
settings.run.effective_run serve a point exactly as they serve the main runs, and a job's
params hold its own point's value only (editing one point reruns that point's jobs).
Where a point's files live is ganrepro.layout's `study_root` and `subset_dir`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ganrepro.errors import ConfigError
from ganrepro.settings.hparams import HPARAM_MAXIMA, HPARAM_RANGES
from ganrepro.settings.registry import MODELS, resolve_hparams

FRACTION = "fraction"
ATTENTION_RESOLUTIONS = "attention_resolutions"
# A study's kind: its key in config/published.yaml's `studies:` block (the varied key, except
# that a fraction study is the paper's data-efficiency experiment).
DATA_EFFICIENCY = "data_efficiency"
# Keys no study may vary: they come from the dataset.
_FIXED = ("resolution", "channels")


@dataclass(frozen=True)
class Point:
    """One value of one study: its runs are (model, seed) for the study's models and seeds."""
    study: str
    vary: str                        # FRACTION, ATTENTION_RESOLUTIONS or a hyper-parameter name
    value: Any                       # the value as the config gives it
    label: str                       # the value as text: "0.25", "8", "4-32", "mul"
    index: int                       # its place in the study's list
    dataset: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    kimg: tuple[int, ...]            # snapshots; the last one is measured
    config: dict[str, Any] = field(compare=False, repr=False)   # the resolved config of its runs

    @property
    def name(self) -> str:
        """The point's folder name under results/studies/{study}/ (ganrepro.layout)."""
        return f"{self.vary}-{self.label}"

    @property
    def kind(self) -> str:
        return kind_of(self.vary)

    @property
    def subset(self) -> bool:
        """Whether its runs train on a subset of the prepared dataset (a fraction below 1)."""
        return self.vary == FRACTION and float(self.value) < 1.0


def kind_of(vary: str) -> str:
    return DATA_EFFICIENCY if vary == FRACTION else vary


def label(value: Any) -> str:
    """A value as the text of its point's name: path-safe and the same on every machine."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(label(v) for v in value)
    return str(value)


def fraction_label(fraction: float) -> str:
    """The text of a fraction in a subset's folder name (the {fraction} wildcard)."""
    return label(float(fraction))


def vary_of(study: dict[str, Any]) -> tuple[str, list[Any]]:
    """(the varied key, its values) of a study entry (the schema allows exactly one key)."""
    (key, values), = study["vary"].items()
    return key, list(values)


def _allowed(models: list[str]) -> list[str]:
    """The hyper-parameters every model of `models` has (what a study of them may vary)."""
    fields = [[f.name for f in dataclasses.fields(MODELS[m].hparams) if f.name not in _FIXED] for m in models]
    return [f for f in fields[0] if all(f in other for other in fields[1:])]


def _check_value(where: str, model: str, key: str, value: Any) -> None:
    """One value of a varied hyper-parameter: its type and choices (the registry) and its
    range (settings.hparams), one sentence naming the key."""
    try:
        resolve_hparams(model, **{key: value})
    except ConfigError as err:
        raise ConfigError(f"config key '{where}': {err}") from None
    if key in HPARAM_RANGES and not HPARAM_RANGES[key][0](value):
        raise ConfigError(f"config key '{where}' is {json.dumps(value)}; {key} must be {HPARAM_RANGES[key][1]}")
    if key in HPARAM_MAXIMA and value > HPARAM_MAXIMA[key]:
        raise ConfigError(f"config key '{where}' is {json.dumps(value)}; {key} must be <= {HPARAM_MAXIMA[key]}")


def updates(vary: str, value: Any) -> dict[str, Any]:
    """The hyper-parameters one point sets for each of its models."""
    if vary == FRACTION:
        return {}
    if vary == ATTENTION_RESOLUTIONS:
        return {"start_res": value[0], "end_res": value[1]}
    return {vary: value}


def _check_study(name: str, study: dict[str, Any], cfg: dict[str, Any]) -> tuple[str, list[Any]]:
    key = f"studies.{name}"
    if study["dataset"] not in cfg["datasets"]:
        raise ConfigError(f"config key '{key}.dataset' is {json.dumps(study['dataset'])}; allowed: a name under "
                          f"'datasets' ({', '.join(cfg['datasets'])})")
    for i, model in enumerate(study["models"]):
        if model not in MODELS:
            raise ConfigError(f"config key '{key}.models[{i}]' is {json.dumps(model)}; allowed: {', '.join(MODELS)}")
    vary, values = vary_of(study)
    models = list(study["models"])
    if vary == FRACTION:
        return vary, values
    if vary == ATTENTION_RESOLUTIONS:
        plain = [m for m in models if "start_res" not in _allowed([m])]
        if plain:
            raise ConfigError(f"config key '{key}.vary.{vary}' varies the attention range, but model {plain[0]} has "
                              f"no attention; allowed models: "
                              f"{', '.join(m for m in MODELS if 'start_res' in _allowed([m]))}")
        for i, (start, end) in enumerate(values):
            for model in models:
                _check_value(f"{key}.vary.{vary}[{i}][0]", model, "start_res", start)
                _check_value(f"{key}.vary.{vary}[{i}][1]", model, "end_res", end)
            if start > end:
                raise ConfigError(f"config key '{key}.vary.{vary}[{i}]' is [{start}, {end}]; the start resolution "
                                  "must not exceed the end resolution")
        return vary, values
    allowed = _allowed(models)
    if vary not in allowed:
        lacking = [m for m in models if vary not in _allowed([m])]
        why = (f"model {lacking[0]} has no hyper-parameter {vary}" if lacking and any(vary in _allowed([m]) for m in MODELS)
               else f"{vary!r} is neither {FRACTION}, {ATTENTION_RESOLUTIONS} nor a hyper-parameter")
        raise ConfigError(f"config key '{key}.vary.{vary}' cannot be varied: {why}; allowed: {FRACTION}, "
                          f"{ATTENTION_RESOLUTIONS} (models with attention) or a hyper-parameter of "
                          f"{' and '.join(models)} ({', '.join(allowed)})")
    for i, value in enumerate(values):
        for model in models:
            _check_value(f"{key}.vary.{vary}[{i}]", model, vary, value)
    return vary, values


def _point_config(cfg: dict[str, Any], study: dict[str, Any], vary: str, value: Any) -> dict[str, Any]:
    """The resolved config of one point's runs: the study's one dataset (its entry with the
    study's recipe keys and hyper-parameters and the point's value on top), models, seeds
    and kimg; no studies and no released checkpoints."""
    dataset = study["dataset"]
    entry = copy.deepcopy(cfg["datasets"][dataset])
    entry["train"] = {**entry.get("train", {}), **copy.deepcopy(study.get("train", {}))}
    hparams = {m: dict(h) for m, h in entry.get("hparams", {}).items()}
    for model, own in study.get("hparams", {}).items():
        hparams[model] = {**hparams.get(model, {}), **own}
    for model in study["models"]:
        if updates(vary, value):
            hparams[model] = {**hparams.get(model, {}), **updates(vary, value)}
    entry["hparams"] = hparams
    out = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in ("datasets", "studies", "pretrained")}
    out.update(datasets={dataset: entry}, models=list(study["models"]),
               seeds=[int(s) for s in study.get("seeds") or cfg["seeds"]],
               kimg=[int(k) for k in study.get("kimg") or cfg["kimg"]], pretrained={}, studies={})
    return out


def expand(cfg: dict[str, Any]) -> list[Point]:
    """Every point of every study of a resolved config, in the config's order. A study the
    schema admits but that makes no sense (an unknown dataset or model, a hyper-parameter
    its models lack, a value out of range) raises ConfigError naming its key."""
    points = []
    for name, study in (cfg.get("studies") or {}).items():
        vary, values = _check_study(name, study, cfg)
        for i, value in enumerate(values):
            config = _point_config(cfg, study, vary, value)
            points.append(Point(study=name, vary=vary, value=value, label=label(value), index=i,
                                dataset=study["dataset"], models=tuple(study["models"]),
                                seeds=tuple(config["seeds"]), kimg=tuple(config["kimg"]), config=config))
    return points


def by_study(cfg: dict[str, Any]) -> dict[str, list[Point]]:
    """The points of each study, by study name."""
    out: dict[str, list[Point]] = {}
    for point in expand(cfg):
        out.setdefault(point.study, []).append(point)
    return out

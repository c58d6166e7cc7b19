"""The official per-dataset presets, and the effective settings of one dataset.

The official `--ganformer-default` (run_network.py of github.com/dorarad/gansformer) sets
some of the recipe by dataset: R1 gamma (FFHQ 10, Cityscapes 20, CLEVR 40, Bedrooms 100,
any other 10), x-flip augmentation (FFHQ and Cityscapes), and, for CLEVR, a smaller
GANformer (8 components of 16 dims, no global style modulation, no self-attention among the
latents in the mapping). A dataset entry names its preset (`preset:`, by default the one its
source implies) and may override recipe keys (`train:`) and model hyper-parameters
(`hparams:`) for itself, so one config can hold datasets that need different settings.

Precedence, lowest first: the schema's and the registry's defaults (the official code's),
the config's top-level `train` / `hparams`, the dataset's preset, the dataset's own `train`
/ `hparams`. `for_dataset` applies it; the training job, the throughput benchmark and the
Snakefile's per-job config all go through it (settings.run.effective_run completes it into
a run's every setting), so one function decides what a run uses.

The preset's recipe keys apply to every model trained on the dataset (the official code sets
them under `--ganformer-default`; a fair comparison trains the baseline the same way); the
CLEVR shape applies to the models with attention (the GANformers) only.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from ganrepro.settings.registry import MODELS, resolve_hparams
from ganrepro.settings.schema import schema

# name -> {"train": recipe overrides, "hparams": {model: overrides}}. "none" = the official
# code's settings for any other dataset (R1 gamma 10, no x-flip, the full GANformer).
_WITH_ATTENTION = tuple(name for name, entry in MODELS.items() if entry.has_attention)
_CLEVR_SHAPE = {"components": 8, "z_dim": 16, "w_dim": 16, "style": False, "mapping_ltnt2ltnt": False}
PRESETS: dict[str, dict[str, Any]] = {
    "none": {"train": {}, "hparams": {}},
    "ffhq": {"train": {"r1_gamma": 10, "xflip": True}, "hparams": {}},
    "cityscapes": {"train": {"r1_gamma": 20, "xflip": True}, "hparams": {}},
    "clevr": {"train": {"r1_gamma": 40}, "hparams": {m: dict(_CLEVR_SHAPE) for m in _WITH_ATTENTION}},
    "bedrooms": {"train": {"r1_gamma": 100}, "hparams": {}},
}

# The recipe keys a dataset may override and that decide what training computes (the rest
# of `train` says how a run is carried out: device, threads, ticks, segments, ...).
RECIPE_KEYS = ("batch_size", "g_lr", "d_lr", "betas", "eps", "loss", "r1_gamma", "r1_interval",
               "pl_weight", "pl_interval", "gp_weight", "style_mixing", "ema_kimg", "ema_rampup",
               "xflip", "precision")
# Keys of a dataset entry that concern training, not the preparation of its images.
TRAINING_KEYS = ("preset", "train", "hparams")


def preset_of(entry: dict[str, Any]) -> str:
    """The preset a dataset entry uses (the schema fills in the source's own by default)."""
    return entry.get("preset") or ("clevr" if entry.get("source") == "clevr" else "none")


def data_spec(entry: dict[str, Any]) -> dict[str, Any]:
    """A dataset entry without its training keys: what preparing its images depends on."""
    return {k: v for k, v in entry.items() if k not in TRAINING_KEYS}


def effective(cfg: dict[str, Any], dataset: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(train, hparams by model) that runs on `dataset` use; a dataset the config does not
    list gets the top-level settings."""
    entry = cfg.get("datasets", {}).get(dataset) or {}
    preset = PRESETS[preset_of(entry)]
    train = {**cfg.get("train", {}), **preset["train"], **entry.get("train", {})}
    models = set(cfg.get("hparams", {})) | set(preset["hparams"]) | set(entry.get("hparams", {}))
    hparams = {m: {**cfg.get("hparams", {}).get(m, {}), **preset["hparams"].get(m, {}),
                   **entry.get("hparams", {}).get(m, {})} for m in sorted(models)}
    return train, {m: h for m, h in hparams.items() if h}


def for_dataset(cfg: dict[str, Any], dataset: str) -> dict[str, Any]:
    """A copy of `cfg` whose top-level `train` and `hparams` are what `dataset` uses; the
    dataset's own preset and overrides are cleared, so applying it twice changes nothing."""
    out = copy.deepcopy(cfg)
    out["train"], out["hparams"] = effective(cfg, dataset)
    if dataset in out.get("datasets", {}):
        out["datasets"][dataset].update(preset="none", train={}, hparams={})
    return out


def official(model: str, preset: str, resolution: int, channels: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(recipe, hyper-parameters) of the official code for `model` on a dataset of `preset`."""
    recipe = {}
    for key, prop in schema()["properties"]["train"]["properties"].items():
        if key in RECIPE_KEYS:
            recipe[key] = copy.deepcopy(prop["default"])
    recipe.update(PRESETS[preset]["train"])
    hp = resolve_hparams(model, **PRESETS[preset]["hparams"].get(model, {}),
                                resolution=resolution, channels=channels)
    return recipe, dataclasses.asdict(hp)


def departures(model: str, preset: str, hparams: dict[str, Any], train: dict[str, Any],
               precision: str) -> list[dict[str, Any]]:
    """Every setting of a run that differs from the official code's for its model and
    dataset preset: [{"key": "train.r1_gamma", "value": 0.01, "official": 10}, ...].
    `hparams`: the run's complete hyper-parameters; `train`: its recipe; `precision`: the
    precision it resolved to (fp32 is the official one)."""
    recipe, official_hp = official(model, preset, hparams["resolution"], hparams["channels"])
    out = []
    for key in RECIPE_KEYS:
        value = precision if key == "precision" else train.get(key)
        if _differs(value, recipe[key]):
            out.append({"key": f"train.{key}", "value": value, "official": recipe[key]})
    for key, want in official_hp.items():
        if key not in ("resolution", "channels") and _differs(hparams.get(key), want):
            out.append({"key": f"hparams.{key}", "value": hparams.get(key), "official": want})
    return out


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) != len(b) or any(_differs(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) != float(b)
    return a != b

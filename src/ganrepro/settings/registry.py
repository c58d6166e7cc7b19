"""The models: one entry per name, the only place a model's name is spelled out.

An entry holds what a config's `hparams.<name>` may set (its hyper-parameter class), how
ganrepro.models builds its networks (references "module:callable" it imports when asked,
so this module, like all of settings, never imports torch), how the report names and draws
it, and what it can do. Code asks an entry for a capability (`has_attention`) instead of
testing the name. The config schema lists the same names (a test checks that they agree).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ganrepro.errors import ConfigError
from ganrepro.settings.hparams import (
    CHOICES, DCGANConfig, GANConfig, GANformerConfig, KGANConfig, SAGANConfig, StyleGAN2Config)


# The paper's comparisons: the StyleGAN2 baseline against the two GANformers.
ROLES = ("baseline", "simplex", "duplex")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    hparams: type            # dataclass of hyper-parameters (its fields are the allowed keys)
    label: str               # display name in the report
    generator: str           # "module:callable" building G from an instance of `hparams`
    discriminator: str       # "module:callable" building D from an instance of `hparams`
    has_attention: bool      # bipartite attention whose maps the grids and the report draw
    published_as: str | None # its row in the literature's tables (config/published.yaml); None: none
    from_tf: bool            # official TF checkpoints can be imported as this model
    color: str               # its line colour and marker in the report's figures
    marker: str
    role: str | None         # its part in the paper's comparisons (ROLES), which the claims test


_ENTRIES = (
    ModelEntry("stylegan2", StyleGAN2Config, "StyleGAN2", "ganrepro.models.stylegan2:Generator",
               "ganrepro.models.stylegan2:plain_discriminator", has_attention=False, published_as="stylegan2",
               from_tf=True, color="tab:gray", marker="o", role="baseline"),
    ModelEntry("ganformer-simplex", GANformerConfig, "GANformer simplex", "ganrepro.models.ganformer:simplex",
               "ganrepro.models.ganformer:ganformer_discriminator", has_attention=True, published_as="ganformer",
               from_tf=True, color="tab:blue", marker="s", role="simplex"),
    ModelEntry("ganformer-duplex", GANformerConfig, "GANformer duplex", "ganrepro.models.ganformer:duplex",
               "ganrepro.models.ganformer:ganformer_discriminator", has_attention=True, published_as="ganformer",
               from_tf=True, color="tab:red", marker="D", role="duplex"),
    ModelEntry("gan", GANConfig, "GAN", "ganrepro.models.stylegan2:Generator",
               "ganrepro.models.stylegan2:plain_discriminator", has_attention=False, published_as="gan",
               from_tf=False, color="tab:green", marker="^", role=None),
    ModelEntry("dcgan", DCGANConfig, "DCGAN", "ganrepro.models.dcgan:DCGANGenerator",
               "ganrepro.models.stylegan2:plain_discriminator", has_attention=False, published_as=None,
               from_tf=False, color="tab:olive", marker="v", role=None),
    ModelEntry("sagan", SAGANConfig, "SAGAN", "ganrepro.models.baselines:sagan",
               "ganrepro.models.stylegan2:plain_discriminator", has_attention=False, published_as="sagan",
               from_tf=False, color="tab:purple", marker="P", role=None),
    ModelEntry("kgan", KGANConfig, "k-GAN", "ganrepro.models.baselines:kgan",
               "ganrepro.models.stylegan2:plain_discriminator", has_attention=False, published_as="k-gan",
               from_tf=False, color="tab:brown", marker="X", role=None),
)

# Name -> entry, in the order the report and `ganrepro models params` list them.
MODELS: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}


def with_role(role: str) -> str:
    """The name of the model that plays `role` (one of ROLES) in the paper's comparisons."""
    return next(name for name, entry in MODELS.items() if entry.role == role)


def has_attention(name: str) -> bool:
    """Whether model `name` has attention maps to draw (False for a name not registered)."""
    return name in MODELS and MODELS[name].has_attention


def model_label(name: str) -> str:
    """The report's display name of model `name` (the name itself when not registered)."""
    return MODELS[name].label if name in MODELS else name


def resolve_hparams(name: str, **hparams) -> Any:
    """The model's hyper-parameter dataclass from `hparams`; a clear error for anything wrong."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")
    cls = MODELS[name].hparams
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(hparams) - set(fields))
    if unknown:
        raise ConfigError(f"unknown hyper-parameter(s) for {name}: {', '.join(unknown)}; "
                          f"allowed: {', '.join(fields)}")
    defaults = cls()
    for key, value in hparams.items():
        want = type(getattr(defaults, key))
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ConfigError(f"hyper-parameter {name}.{key} must be {want.__name__} (got {value!r})")
        if key in CHOICES and value not in CHOICES[key]:
            raise ConfigError(f"hyper-parameter {name}.{key} is {value!r}; allowed: {', '.join(CHOICES[key])}")
    cfg = cls(**{k: float(v) if type(getattr(defaults, k)) is float else v for k, v in hparams.items()})
    res = cfg.resolution
    if res < 8 or res & (res - 1):
        raise ConfigError(f"hyper-parameter {name}.resolution must be a power of two >= 8 (got {res})")
    return cfg

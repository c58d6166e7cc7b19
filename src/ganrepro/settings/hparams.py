"""The models' hyper-parameters: their classes with defaults, their choices and ranges.

One dataclass per architecture (the registry says which model uses which); a field is an
allowed key of `hparams.<model>` in a config, its default is the official code's. Beside
them: the values a string field may take (CHOICES), the range of every numeric field
(HPARAM_RANGES, HPARAM_MAXIMA) and the checks that relate them to each other and to the
datasets (attention heads must divide the channels of every attention layer). Without these
checks a bad value passes validation and ends in a RuntimeError traceback mid-training.

Ranges are keyed by hyper-parameter name, whichever model has it; every message is one
sentence naming the key. The torch networks of ganrepro.models take these classes as their
arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable

from ganrepro.errors import ConfigError
from ganrepro.settings.limits import BATCH_MAX, RESOLUTION_MAX


@dataclass
class StyleGAN2Config:
    resolution: int = 64            # output side length in pixels (a power of two >= 8)
    channels: int = 3               # image channels
    z_dim: int = 512                # input latent size
    w_dim: int = 512                # intermediate latent (style) size
    mapping_layers: int = 8         # mapping FC layers before its output FC (official num_layers)
    mapping_lr_mul: float = 0.01    # learning-rate multiplier of the mapping network
    mapping_residual: bool = False  # residual mapping blocks (official --mapping-resnet, GANformer's)
    channel_base: int = 32768       # channels at resolution r: min(channel_base // r, channel_max) (official)
    channel_max: int = 512
    architecture: str = "skip"      # generator: "skip" (official StyleGAN2 baseline) or "resnet" (D is resnet)
    mbstd_group: int = 4            # minibatch-std group size in the discriminator
    w_avg_beta: float = 0.995       # decay of the tracked w average (for truncation)


@dataclass
class GANformerConfig(StyleGAN2Config):
    z_dim: int = 32                 # size of each latent component (the official 512 / 16)
    w_dim: int = 32
    mapping_residual: bool = True   # official --mapping-resnet
    mapping_ltnt2ltnt: bool = True  # self-attention among the local latents in the mapping (official; CLEVR: off)
    style: bool = True              # global style modulation of the convs (official; CLEVR preset: off)
    architecture: str = "resnet"    # official --ganformer-default generator
    components: int = 16            # k local latent components (plus 1 global)
    heads: int = 1                  # attention heads
    attention_dropout: float = 0.12 # official: two dropouts of half this (single weights, whole latents)
    integration: str = "mul"        # "mul" (official default), "add"; "both" = the paper's eq. 6 reading
    start_res: int = 4              # attention at resolutions start_res..end_res (inclusive)
    end_res: int = 128              # (official: every resolution below 256)
    duplex_keys: str = "kmeans"     # "kmeans" (official --ganformer-default); "centroids" = the paper's eq. 8 reading
    kmeans_iters: int = 1           # k-means rounds per layer (official default 1)
    pos_dim: int = 0                # sinusoidal image-grid features; 0 = w_dim (official)
    d_attention: bool = False       # attention in the discriminator too (not in the official code)
    normalize_global: bool = True   # RMS-normalize the global z (official PyTorch; the TF code, hence the
                                    # released TF checkpoints as the official loader reads them, did not)


@dataclass
class GANConfig(StyleGAN2Config):
    """The official `--baseline GAN` (pytorch_version/run_network.py: style=False,
    latent_stem=True): StyleGAN2's skeleton without style modulation, its 4x4 input mapped
    from w by an FC stem. Both are fixed by the model, not config keys."""
    style: ClassVar[bool] = False          # plain convs: no affine, modulation or demodulation
    latent_stem: ClassVar[bool] = True     # the 4x4 input is FC(w), not a learned constant


@dataclass
class DCGANConfig:
    """The `dcgan` model: a DCGAN generator from z (not in the paper) against StyleGAN2's D."""
    resolution: int = 64            # output side length in pixels (a power of two >= 8)
    channels: int = 3               # image channels
    z_dim: int = 128                # latent size
    channel_base: int = 32768       # channels at resolution r: min(channel_base // r, channel_max) (official)
    channel_max: int = 512
    mbstd_group: int = 4            # minibatch-std group size in the discriminator


@dataclass
class SAGANConfig(StyleGAN2Config):
    """The official TF `--baseline SAGAN` (run_network.py: style=False, latent_stem=True,
    g_img2img=5): the TF GAN skeleton plus self-attention among all image positions in
    both convs at attention_res. ganrepro.models.baselines has the source of every choice."""
    mapping_layers: int = 8         # mapping FC layers in all (the TF mlp has no separate output FC)
    attention_res: int = 32         # resolution of the self-attention layers (official g_img2img 5: 2**5)
    attention_dropout: float = 0.12 # official: two dropouts of half this (single weights, whole positions)
    pos_dim: int = 0                # sinusoidal image-grid features; 0 = w_dim (official)


@dataclass
class KGANConfig(StyleGAN2Config):
    """The official TF `--baseline kGAN` (run_network.py: kgan, merge_layer=5,
    merge_type=softmax, components_num=8): k StyleGAN2 generators that share their weights,
    merged by a per-pixel softmax after the block at merge_res. See ganrepro.models.baselines."""
    z_dim: int = 64                 # each generator's latent: the official 512 split into k = 8
    w_dim: int = 64
    mapping_layers: int = 8         # mapping FC layers in all (the TF mlp has no separate output FC)
    components: int = 8             # k generators (official components_num 8)
    merge_res: int = 32             # their features merge after this block (official merge_layer 5: 2**5);
                                    # after the last block when the images are smaller


# The values a string hyper-parameter may take.
ARCHITECTURES = ("resnet", "skip")
INTEGRATIONS = ("add", "mul", "both")
DUPLEX_KEYS = ("kmeans", "centroids")
CHOICES: dict[str, tuple[str, ...]] = {"architecture": ARCHITECTURES, "integration": INTEGRATIONS,
                                       "duplex_keys": DUPLEX_KEYS}

# Model hyper-parameters: name -> largest value (a name a model lacks is never looked up).
HPARAM_MAXIMA: dict[str, int] = {
    "z_dim": 4096,              # 8x StyleGAN2's 512
    "w_dim": 4096,              # 8x StyleGAN2's 512
    "pos_dim": 4096,            # as w_dim (0 = w_dim)
    "mapping_layers": 64,       # 8x the official 8
    "channel_base": 2 ** 20,    # 32x the official 32768
    "channel_max": 4096,        # 8x the official 512
    "mbstd_group": BATCH_MAX,   # official 4; it must divide the batch anyway
    "components": 256,          # 16x GANformer's official 16 latent components
    "heads": 256,               # official 1; it must divide every attention layer's channels
    "start_res": RESOLUTION_MAX,
    "end_res": RESOLUTION_MAX,  # official 128 (every resolution below 256)
    "kmeans_iters": 64,         # official 1 k-means round per layer
    "attention_res": RESOLUTION_MAX,
    "merge_res": RESOLUTION_MAX,
}


def _power_of_two_from(low: int) -> Callable[[Any], bool]:
    return lambda v: v >= low and v & (v - 1) == 0


_POSITIVE_INT = (lambda v: v >= 1, ">= 1")
# name -> (test, what is allowed). A name a model lacks is simply never looked up.
HPARAM_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "z_dim": _POSITIVE_INT,
    "w_dim": _POSITIVE_INT,
    "mapping_layers": _POSITIVE_INT,
    "mapping_lr_mul": (lambda v: v > 0, "> 0"),
    "channel_base": _POSITIVE_INT,
    "channel_max": _POSITIVE_INT,
    "mbstd_group": _POSITIVE_INT,
    "w_avg_beta": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "components": _POSITIVE_INT,
    "heads": _POSITIVE_INT,
    "attention_dropout": (lambda v: 0 <= v < 1, ">= 0 and < 1"),
    "start_res": (_power_of_two_from(4), "a power of two >= 4"),
    "end_res": (_power_of_two_from(4), "a power of two >= 4"),
    "kmeans_iters": _POSITIVE_INT,
    "pos_dim": (lambda v: v == 0 or (v >= 4 and v % 4 == 0), "0 (= w_dim, official) or a multiple of 4 (>= 4)"),
    "attention_res": (_power_of_two_from(4), "a power of two >= 4"),
    "merge_res": (_power_of_two_from(8), "a power of two >= 8"),
}


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """StyleGAN2's channel schedule: channel_base / resolution, capped at channel_max."""
    return max(1, min(channel_base // resolution, channel_max))


def one_of(values: Iterable[Any]) -> str:
    """'a, b or c': the allowed values of a message."""
    values = list(values)
    return ", ".join(map(str, values[:-1])) + f" or {values[-1]}" if len(values) > 1 else str(values[0])


def check_hparams(model: str, hp: dict[str, Any], datasets: dict[str, int], prefix: str = "hparams") -> None:
    """`hp`: every hyper-parameter of `model` (defaults included); `datasets`: name ->
    resolution of each dataset it will be trained on; `prefix`: where the config sets them
    (`hparams`, or `datasets.NAME.hparams` for one dataset's own)."""
    key = lambda name: f"config key '{prefix}.{model}.{name}'"    # noqa: E731
    for name, value in hp.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key(name)} must be a finite number (got {value})")
        if name in HPARAM_RANGES and not HPARAM_RANGES[name][0](value):
            raise ConfigError(f"{key(name)} must be {HPARAM_RANGES[name][1]} (got {value})")
        if name in HPARAM_MAXIMA and value > HPARAM_MAXIMA[name]:
            raise ConfigError(f"{key(name)} must be <= {HPARAM_MAXIMA[name]} (got {value})")
    if "attention_res" in hp:
        for dataset, res in datasets.items():
            if hp["attention_res"] > res:
                raise ConfigError(f"{key('attention_res')} ({hp['attention_res']}) leaves no self-attention layer "
                                  f"at dataset '{dataset}' ({res} px); allowed: a power of two from 4 to {res}")
    if "heads" not in hp:
        return
    if hp["start_res"] > hp["end_res"]:
        raise ConfigError(f"{key('start_res')} ({hp['start_res']}) must not exceed "
                          f"'{prefix}.{model}.end_res' ({hp['end_res']})")
    for dataset, res in datasets.items():
        layers = [r for r in (2 ** i for i in range(2, res.bit_length())) if hp["start_res"] <= r <= hp["end_res"]]
        if not layers:
            raise ConfigError(f"{key('start_res')} ({hp['start_res']}) leaves no attention layer at "
                              f"dataset '{dataset}' ({res} px); allowed: {res} or less")
        widths = {r: channels_at(r, hp["channel_base"], hp["channel_max"]) for r in layers}
        if any(w % hp["heads"] for w in widths.values()):
            allowed = [h for h in range(1, min(widths.values()) + 1) if all(w % h == 0 for w in widths.values())]
            per_layer = ", ".join(f"{w} at {r} px" for r, w in widths.items())
            raise ConfigError(f"{key('heads')} ({hp['heads']}) must divide the channels of every attention "
                              f"layer of dataset '{dataset}' ({per_layer}); allowed: {one_of(allowed)}")

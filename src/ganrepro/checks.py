"""Ranges of the model hyper-parameters and the training batch, checked up front.

The config schema cannot say that `hparams.<model>` values are in range (its keys come
from the model registry's dataclasses) nor relate them to each other and to the datasets
(attention heads must divide the channels of every attention layer, the batch must be a
multiple of the minibatch-std group and split evenly over the processes). Without these
checks a bad value passes validation and ends in a RuntimeError traceback mid-training.

Ranges are keyed by hyper-parameter name, whichever model has it, so they do not depend on
how the model classes are written; every message is one sentence naming the key.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from ganrepro.errors import ConfigError


def _power_of_two_from(low: int) -> Callable[[Any], bool]:
    return lambda v: v >= low and v & (v - 1) == 0


# Upper bounds on every integer that sizes memory, disk or time. Each is far above what a
# real run uses (the official values are in the comments), so only a typo or a hostile file
# reaches one; they keep such a value from validating and then dying in the allocator, in a
# seed overflow or in a disk-filling loop. The config schema repeats the config-side ones
# (tests/test_hostile_config.py checks that the two agree); the CLI options use them too.
SEED_MAX = 2 ** 32 - 1          # seeds of NumPy's RandomState and StyleGAN's scripts: 32 bits
RESOLUTION_MAX = 1024           # the largest official dataset (FFHQ at 1024 px)
BATCH_MAX = 4096                # official 32; BigGAN's largest batch was 2048
NUM_IMAGES_MAX = 10_000_000     # over 3x LSUN Bedroom (3M images), the largest dataset of the paper
NUM_GEN_MAX = 1_000_000         # 20x fid50k, the largest count any metric of the paper uses
KIMG_MAX = 1_000_000            # 1e9 images: 40x StyleGAN2's 25,000-kimg FFHQ run
KIMG_LIST_MAX = 1000            # snapshots per run (each one is written and evaluated)
REPEATS_MAX = 100               # sampling seeds per checkpoint (official 1; the paper's protocol 3)
WORKERS_MAX = 64                # processes (DataLoader workers, image decoders)
FRAMES_MAX = 10_000             # frames of one `generate --interpolate` walk (5 min at 30 fps)
STEPS_MAX = 100_000             # timed steps or rounds of one benchmark

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
}

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
}


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """StyleGAN2's channel schedule, as the models' dataclasses document it."""
    return max(1, min(channel_base // resolution, channel_max))


def _list(values: Iterable[int]) -> str:
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
                              f"layer of dataset '{dataset}' ({per_layer}); allowed: {_list(allowed)}")


def shortened_batches(batch: int, kimg: list[int], start: int = 0) -> set[int]:
    """Sizes of the batches the training loop shortens to land exactly on a snapshot,
    from image `start` on (every other batch is full)."""
    sizes, nimg = set(), start
    for target in (k * 1000 for k in kimg):
        if target > nimg and (target - nimg) % batch:
            sizes.add((target - nimg) % batch)
        nimg = max(nimg, target)
    return sizes


def _batch_problem(batch: int, kimg: list[int], groups: dict[str, int], world: int, start: int) -> str | None:
    if batch % world:
        return f"does not split over {world} processes"
    for model, group in groups.items():
        if (batch // world) % group:
            per = f"{batch // world} images per process" if world > 1 else f"{batch} images"
            return (f"gives {per}, not a multiple of the minibatch-std group of {model} "
                    f"(hparams.{model}.mbstd_group = {group})")
    for size in sorted(shortened_batches(batch, kimg, start)):
        share = size // world          # whole: the images between snapshots split (checked first)
        for model, group in groups.items():
            if share % min(group, share):
                per = " per process" if world > 1 else ""
                return (f"leaves a batch of {share} images{per} before a snapshot (kimg {kimg}): "
                        f"neither below nor a multiple of the minibatch-std group of {model} ({group})")
    return None


def check_batch(batch: int, kimg: list[int], groups: dict[str, int], world: int = 1, start: int = 0) -> None:
    """The global batch splits evenly over `world` processes, every process's batch is a
    multiple of each model's minibatch-std group (`groups`: model -> mbstd_group), the
    images between snapshots split evenly too (so no batch drops an image), and the batches
    shortened to land on a snapshot do not break a group (one below the group size forms a
    single smaller group). `start`: the images already seen, for a resumed run."""
    nimg = start
    for k in kimg:
        if k * 1000 > nimg and (k * 1000 - nimg) % world:
            raise ConfigError(f"config key 'kimg' ({kimg}) under {world} processes puts {k * 1000 - nimg} images "
                              f"before kimg {k}, which {world} processes cannot share without dropping images; "
                              f"allowed: steps between snapshots that are multiples of {world // math.gcd(world, 1000)} kimg")
        nimg = max(nimg, k * 1000)
    problem = _batch_problem(batch, kimg, groups, world, start)
    if problem is None:
        return
    step = world * math.lcm(*groups.values())        # candidates: whole groups on every process
    near = sorted(range(step, 4 * max(batch, step) + 1, step), key=lambda b: (abs(b - batch), b))
    allowed = sorted([b for b in near if _batch_problem(b, kimg, groups, world, start) is None][:3])
    hint = f"; allowed, for example: {_list(allowed)}" if allowed else ""
    where = f" under {world} processes" if world > 1 else ""
    raise ConfigError(f"config key 'train.batch_size' ({batch}){where} {problem}{hint}")

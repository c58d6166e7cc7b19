"""The training batch against the snapshots, the processes and the minibatch-std groups.

The batch must split evenly over the processes, every process's batch must be a multiple
of each model's minibatch-std group, and the batches the loop shortens to land exactly on a
snapshot must not break a group; otherwise a run drops images or dies mid-training. Every
message is one sentence naming `train.batch_size` or `kimg`, with batches that would work.
"""

from __future__ import annotations

import math

from ganrepro.errors import ConfigError
from ganrepro.settings.hparams import one_of


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
    hint = f"; allowed, for example: {one_of(allowed)}" if allowed else ""
    where = f" under {world} processes" if world > 1 else ""
    raise ConfigError(f"config key 'train.batch_size' ({batch}){where} {problem}{hint}")

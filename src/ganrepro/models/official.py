"""Official GANformer PyTorch state_dicts (github.com/dorarad/gansformer,
`pytorch_version/training/networks.py`) -> ganrepro state_dicts.

Only names and shapes change: the official networks and ours compute the same functions
(tests/test_official.py proves it against fixtures made with the official code). The
official modules keep a few tensors that hold no trained information, which are dropped
here: the FIR filter copies (`resample_kernel`), the sinusoidal grids (`grid_pos`, which
ganrepro computes), and, in the k-means duplex, the key projections `to_keys` /
`to_pos_map`, whose outputs the official attention scores never read.

This is also the base of importing released checkpoints: a loader that turns their
tensors into an official-named state_dict can hand it to these functions.
"""

from __future__ import annotations

import math
import re

import torch

Tensors = dict[str, torch.Tensor]

# Official tensors that carry nothing a ganrepro module stores.
_CONSTANT = re.compile(r"(^|\.)(resample_kernel|grid_pos)$")


def _block_index(resolution: int, top: int) -> int:
    """Index in ganrepro's Discriminator.blocks of the official block `b{resolution}`."""
    return int(math.log2(top)) - int(math.log2(resolution))


def discriminator(official: Tensors, resolution: int) -> Tensors:
    """The official `Discriminator` (resnet, no conditioning) -> ganrepro's `Discriminator`."""
    out: Tensors = {}
    for key, value in official.items():
        if _CONSTANT.search(key):
            continue
        m = re.fullmatch(r"b(\d+)\.(.+)", key)
        if m is None:
            raise KeyError(f"unexpected official discriminator tensor {key!r}")
        res, rest = int(m.group(1)), m.group(2)
        rest = rest.replace("biasAct.bias", "bias")
        if res == 4:                                   # the epilogue: conv, fc, out
            out[rest] = value
        elif rest.startswith("fromrgb."):
            out["from_rgb." + rest[len("fromrgb."):]] = value
        else:
            out[f"blocks.{_block_index(res, resolution)}.{rest}"] = value
    return out

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


# Official attention parameter names -> ganrepro's (synthesis `transformer`, mapping `sa{i}`).
_ATTENTION = {"to_queries": "q", "to_keys": "k", "to_values": "v", "from_pos_map": "q_pos",
              "to_pos_map": "k_pos", "modulation": "control",
              "att_weight": "att_weight", "centroids": "centroids"}
# Synthesis-layer tensors -> ganrepro, with the reshape our layout needs.
_LAYER = {"weight": "conv.weight", "affine.weight": "conv.affine.weight",
          "affine.bias": "conv.affine.bias", "noise_strength": "noise.strength",
          "noise_const": "noise.const", "biasAct.bias": "bias"}


def _attention_key(name: str) -> str:
    head, _, tail = name.partition(".")
    if head not in _ATTENTION:
        raise KeyError(name)
    return _ATTENTION[head] + ("." + tail if tail else "")


def _mapping(rest: str) -> str:
    """`global_mlp.*` / `mlp.*` tail -> ganrepro MappingNetwork tail."""
    if rest.startswith("out_layer."):
        return "out." + rest[len("out_layer."):]
    m = re.fullmatch(r"l(\d+)\.(.+)", rest)
    if m:
        return f"blocks.{m.group(1)}.{m.group(2)}"
    m = re.fullmatch(r"sa(\d+)\.(.+)", rest)
    if m:
        return f"attention.{m.group(1)}.{_attention_key(m.group(2))}"
    raise KeyError(rest)


def _synthesis(res: int, rest: str, value: torch.Tensor) -> tuple[str, torch.Tensor]:
    block = f"blocks.{int(math.log2(res)) - 2}"
    if rest == "const":
        return f"{block}.const", value[None]
    if rest in ("skip.weight", "conv_stem.weight", "conv_stem.bias"):     # conv_stem: the GAN baseline's latent stem
        return f"{block}.{rest.replace('conv_stem', 'stem')}", value
    layer, _, tail = rest.partition(".")
    if layer == "torgb":
        if tail == "biasAct.bias":
            return f"{block}.torgb.bias", value.reshape(1, -1, 1, 1)
        return f"{block}.torgb.conv.{tail}", value
    if layer in ("conv0", "conv1", "conv_last"):
        if tail.startswith("transformer."):
            return f"{block}.{layer}.attention.{_attention_key(tail[len('transformer.'):])}", value
        if tail in _LAYER:
            if tail == "noise_const":
                value = value[None, None]
            elif tail == "biasAct.bias":
                value = value.reshape(1, -1, 1, 1)
            return f"{block}.{layer}.{_LAYER[tail]}", value
    raise KeyError(rest)


def generator(official: Tensors, style: bool = True) -> Tensors:
    """The official `Generator` (StyleGAN2 baseline or GANformer; unconditional, square)
    -> ganrepro's generator of the matching registry model. style=False is for a generator
    built with the official `style=False` (the CLEVR preset, the GAN baseline), whose
    `affine` layers exist but are never read; ganrepro does not build them."""
    out: Tensors = {}
    dead = {k.rsplit(".", 1)[0] for k in official if k.endswith("transformer.att_weight")}
    for key, value in official.items():
        if _CONSTANT.search(key):
            continue
        owner = key.rsplit(".", 2)[0]
        if owner in dead and key.rsplit(".", 2)[1] in ("to_keys", "to_pos_map"):
            continue                 # k-means duplex: keys are computed but never read
        if not style and ".affine." in key:
            continue
        try:
            if key == "pos":
                out["pos"] = value
            elif key == "mapping.w_avg":
                out["w_avg"] = value
            elif key.startswith("mapping.global_mlp."):
                out["mapping." + _mapping(key[len("mapping.global_mlp."):])] = value
            elif key.startswith("mapping.mlp."):
                out["local_mapping." + _mapping(key[len("mapping.mlp."):])] = value
            elif key.startswith("synthesis.b"):
                res, _, rest = key[len("synthesis.b"):].partition(".")
                name, value = _synthesis(int(res), rest, value)
                out[name] = value
            else:
                raise KeyError(key)
        except KeyError:
            raise KeyError(f"unexpected official generator tensor {key!r}") from None
    return out

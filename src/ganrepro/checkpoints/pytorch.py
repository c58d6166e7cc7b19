"""Official PyTorch training snapshots (`network-snapshot-*.pkl` of the GANformer PyTorch
code): a dict with G, D, G_ema, ... whose modules are pickled through
`torch_utils.persistence`. A network's official kwargs and official-named state_dict are
read from the pickled module state alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ganrepro.checkpoints.unpickler import CheckpointError, Persistent, TorchModule, short
from ganrepro.checkpoints.walk import MAX_TENSORS, plain_kwargs, walk_tree

# The dict key and the official class of each network a snapshot holds.
NETWORKS = {"Gs": ("G_ema", "Generator"), "G": ("G", "Generator"), "D": ("D", "Discriminator")}


def _module_state(obj: Any, name: str) -> dict:
    state = obj.state if isinstance(obj, Persistent) else obj.__dict__.get("state", {})
    if state is None:
        return {}
    if not isinstance(state, dict):
        raise CheckpointError(f"the state of module {name!r} is a {type(state).__name__}, not a dict")
    return state


def _named(table: Any, what: str, name: str) -> dict:
    if table is None:
        return {}
    if not isinstance(table, dict) or not all(type(k) is str and len(k) <= 200 for k in table):
        raise CheckpointError(f"the {what} of module {name!r} are not a dict of names")
    return table


def state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """state_dict() of a pickled module, from its state alone (parameters, persistent
    buffers), walked without recursion; a module met twice (a cycle or shared child) or
    nested too deep is refused."""
    out: dict[str, torch.Tensor] = {}
    for module, name, prefix, push in walk_tree(obj, "<root>", "module", "the network"):
        state = _module_state(module, name)
        skip = state.get("_non_persistent_buffers_set") or ()
        if not isinstance(skip, (set, frozenset, list, tuple)) or not all(type(k) is str for k in skip):
            raise CheckpointError(f"the non-persistent buffer names of module {name!r} are not a set of names")
        skip = set(skip)
        for kind in ("_parameters", "_buffers"):
            for key, value in _named(state.get(kind), kind.strip("_"), name).items():
                if value is None or (kind == "_buffers" and key in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise CheckpointError(f"{kind.strip('_')[:-1]} {prefix + key!r} is a {type(value).__name__}, "
                                          "not a tensor")
                out[prefix + key] = value.detach()
        if len(out) > MAX_TENSORS:
            raise CheckpointError(f"it holds more than {MAX_TENSORS:,} tensors in one network")
        children = _named(state.get("_modules"), "sub-modules", name)
        for key, child in reversed(list(children.items())):
            if child is None:
                continue
            if not isinstance(child, (Persistent, TorchModule)):
                raise CheckpointError(f"sub-module {prefix + key!r} is a {type(child).__name__}, not a module")
            push(child, f"{prefix}{key}.")
    return out


def network(data: dict, network: str, path: Path) -> tuple[dict, dict]:
    """(official kwargs, official state_dict) of `network` (Gs, G or D) of an official
    PyTorch pickle."""
    key, cls = NETWORKS[network]
    obj = data.get(key, data.get("Gs") if network == "Gs" else None)
    if not isinstance(obj, Persistent) or obj.class_name != cls:
        keys = ", ".join(short(k, 40) for k in list(data)[:10])
        what = "generator" if cls == "Generator" else "discriminator"
        raise CheckpointError(f"{path} holds no official {what} {key!r} (keys: {keys})")
    kwargs = plain_kwargs(obj.state.get("_init_kwargs") or {}, f"{key}'s kwargs")
    return dict(kwargs), state_dict(obj)

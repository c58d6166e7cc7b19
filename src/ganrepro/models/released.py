"""Released checkpoints -> ganrepro snapshots, without running code from the file.

Two formats come from the official GANformer code (github.com/dorarad/gansformer):

* TensorFlow pickles (the released clevr/cityscapes/ffhq/bedrooms snapshots): a tuple
  (G, D, Gs) of `dnnlib.tflib.network.Network` objects whose state holds the static
  kwargs, sub-networks, named TF variables (numpy arrays) and the builder's source code.
* PyTorch pickles (`network-snapshot-*.pkl` of its PyTorch training loop): a dict with G,
  D, G_ema, ... whose modules are pickled through `torch_utils.persistence`, with the
  source of their Python module inside.

Plain `pickle.load` runs code named by the file: the persistence hook execs the embedded
source, and any pickle may call any importable function. models/unpickler.py maps the few
globals these files need to inert stand-ins or to validating data constructors (plain
numeric numpy arrays, torch tensors checked against storages it parses itself), after a
bounded dry run of the opcodes (models/picklescan.py), and refuses every other global
with one sentence naming the file and the global. The embedded source
is kept as a string and never executed.

The weights then go, under the official PyTorch names, through the converter of the
equivalence work (models/official.py) into this package's networks, which compute the
official functions (tests/test_official.py); tests/test_checkpoints.py checks imported
fixtures in both formats against the official code's own conversion and outputs.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ganrepro.data.download import sha256_file
from ganrepro.models import official

from ganrepro.models.unpickler import (
    CheckpointError, EasyDict, Persistent, SafeArray, TFNetwork, TorchModule, safe_load, short)

MAX_TENSORS = 100_000                  # tensors of one network
MAX_NESTING = 32                       # sub-modules / components within each other
MAX_KWARG_NODES = 10_000
MAX_KWARG_DEPTH = 16


def plain_kwargs(value: Any, what: str) -> dict:
    """`value` if it is a dict of plain data (str keys; None, bool, numbers, short strings,
    lists, tuples and dicts of them), bounded in size and depth; refused otherwise. Walked
    without recursion, so a deep or cyclic structure is refused, not a RecursionError."""
    if not isinstance(value, dict):
        raise CheckpointError(f"its {what} are a {type(value).__name__}, not a dict")
    todo, nodes = [(value, 1)], 0
    while todo:
        item, depth = todo.pop()
        nodes += 1
        if nodes > MAX_KWARG_NODES or depth > MAX_KWARG_DEPTH:
            raise CheckpointError(f"its {what} nest deeper than {MAX_KWARG_DEPTH} levels or hold more than "
                                  f"{MAX_KWARG_NODES:,} values")
        if item is None or type(item) in (bool, float) or isinstance(item, (np.number, np.bool_)):
            continue
        if type(item) is int:
            if item.bit_length() > 64:
                raise CheckpointError(f"its {what} hold an integer of {item.bit_length()} bits")
        elif type(item) is str:
            if len(item) > 10_000:
                raise CheckpointError(f"its {what} hold a string of {len(item):,} characters")
        elif type(item) in (list, tuple):
            todo.extend((x, depth + 1) for x in item)
        elif isinstance(item, dict) and type(item) in (dict, EasyDict, collections.OrderedDict):
            for k, v in item.items():
                if type(k) is not str or len(k) > 200:
                    raise CheckpointError(f"its {what} have a key that is not a short string")
                todo.append((v, depth + 1))
        else:
            raise CheckpointError(f"its {what} hold a {type(item).__name__}, which is not plain data")
    return value


# ---------------------------------------------------------------------------- PyTorch pickles

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


def _walk_tree(root: Any, root_name: str, kind: str, where: str) -> Iterator[tuple[Any, str, str, Callable]]:
    """Depth-first, without recursion, over a tree of pickled networks: yields (node, name,
    prefix, push), where push(child, child_prefix) queues a child (pushed last, visited
    first). A node met twice (a cycle or a shared child) or nested deeper than MAX_NESTING
    is refused, naming the `kind` of node and `where` it is."""
    seen: set[int] = set()
    todo = [(root, "", 0)]
    while todo:
        node, prefix, depth = todo.pop()
        name = prefix[:-1] or root_name
        if id(node) in seen:
            raise CheckpointError(f"{kind} {name!r} appears twice in {where} (a cycle or a shared {kind})")
        if depth > MAX_NESTING:
            raise CheckpointError(f"the {kind}s of {where} nest more than {MAX_NESTING} levels deep")
        seen.add(id(node))
        yield node, name, prefix, lambda child, child_prefix, depth=depth: todo.append((child, child_prefix, depth + 1))


def _state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """state_dict() of a pickled module, from its state alone (parameters, persistent
    buffers), walked without recursion; a module met twice (a cycle or shared child) or
    nested too deep is refused."""
    out: dict[str, torch.Tensor] = {}
    for module, name, prefix, push in _walk_tree(obj, "<root>", "module", "the network"):
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


def _pytorch_network(data: dict, network: str, path: Path) -> tuple[dict, dict]:
    """(official kwargs, official state_dict) of one generator of an official PyTorch pickle."""
    key = {"Gs": "G_ema", "G": "G"}[network]
    obj = data.get(key, data.get("Gs") if network == "Gs" else None)
    if not isinstance(obj, Persistent) or obj.class_name != "Generator":
        keys = ", ".join(short(k, 40) for k in list(data)[:10])
        raise CheckpointError(f"{path} holds no official generator {key!r} (keys: {keys})")
    kwargs = plain_kwargs(obj.state.get("_init_kwargs") or {}, f"{key}'s kwargs")
    return dict(kwargs), _state_dict(obj)


# ---------------------------------------------------------------------------- TensorFlow pickles

def _tf_state(net: Any, name: str) -> dict:
    if not isinstance(net, TFNetwork):
        raise CheckpointError(f"component {name!r} is a {type(net).__name__}, not a TensorFlow network")
    state = net.__dict__.get("state") or {}
    if not isinstance(state, dict):
        raise CheckpointError(f"the state of network {name!r} is a {type(state).__name__}, not a dict")
    return state


def _tf_variables(net: TFNetwork, network: str) -> dict[str, np.ndarray]:
    """{variable name: array} of a TF network and its components, walked without
    recursion; a component met twice or nested too deep is refused."""
    out: dict[str, np.ndarray] = {}
    for node, name, prefix, push in _walk_tree(net, network, "component", network):
        state = _tf_state(node, name)
        variables = state.get("variables") or []
        if type(variables) not in (list, tuple):
            raise CheckpointError(f"the variables of {name!r} are a {type(variables).__name__}, not a list of "
                                  "(name, array) pairs")
        for pair in variables:
            if type(pair) not in (list, tuple) or len(pair) != 2 or type(pair[0]) is not str \
                    or len(pair[0]) > 500 or not isinstance(pair[1], SafeArray) or pair[1].array is None:
                raise CheckpointError(f"the variables of {name!r} hold {short(pair, 60)}, not a (name, array) pair")
            out[prefix + pair[0]] = pair[1].array
        if len(out) > MAX_TENSORS:
            raise CheckpointError(f"it holds more than {MAX_TENSORS:,} variables in {network}")
        components = state.get("components") or {}
        if not isinstance(components, dict) or not all(type(k) is str and len(k) <= 200 for k in components):
            raise CheckpointError(f"the components of {name!r} are not a dict of named networks")
        for key, comp in reversed(list(components.items())):
            push(comp, f"{prefix}{key}/")
    return out


def _tf_kwargs(static: dict) -> dict:
    """The official PyTorch Generator kwargs a TF generator's static kwargs stand for (the
    official loader's reading, including its defaults)."""
    def kw(names, default=None):
        for n in [names] if isinstance(names, str) else names:
            if n in static and static[n] is not None:
                return static[n]
        return default
    transformer = bool(kw("transformer", False))
    return {
        "z_dim": kw(["latent_size", "z_dim"], 512), "c_dim": kw(["label_size", "c_dim"], 0),
        "w_dim": kw(["dlatent_size", "w_dim"], 512), "k": kw("components_num", 1) + int(transformer),
        "img_resolution": kw("resolution", 1024), "img_channels": kw("num_channels", 3),
        "mapping_kwargs": {
            "num_layers": kw(["mapping_layersnum", "mapping_num_layers"], 8), "layer_dim": kw("mapping_dim"),
            "act": kw("mapping_nonlinearity", "lrelu"), "lrmul": kw("mapping_lrmul", 0.01),
            "w_avg_beta": kw(["dlatent_avg_beta", "w_avg_beta"], 0.995), "resnet": kw("mapping_resnet", False),
            "ltnt2ltnt": kw("mapping_ltnt2ltnt", False), "transformer": transformer,
            "num_heads": kw("num_heads", 1), "attention_dropout": kw("attention_dropout", 0.12),
            "ltnt_gate": kw("ltnt_gate", False), "use_pos": kw("use_pos", False),
            "normalize_global": False},                  # the loader's setting for TF networks
        "synthesis_kwargs": {
            "crop_ratio": kw("crop_ratio"), "channel_base": kw(["fmap_base", "channel_base"], 16 << 10) * 2,
            "channel_max": kw(["fmap_max", "channel_max"], 512), "architecture": kw("architecture", "skip"),
            "resample_kernel": kw("resample_kernel", [1, 3, 3, 1]), "local_noise": kw("local_noise", True),
            "act": kw("nonlinearity", "lrelu"), "latent_stem": kw(["latent_stem", "ltnt_stem"], False),
            "style": kw("style", True), "transformer": transformer, "start_res": kw("start_res", 0),
            "end_res": kw("end_res", 8), "num_heads": kw("num_heads", 1),
            "attention_dropout": kw("attention_dropout", 0.12), "ltnt_gate": kw("ltnt_gate", False),
            "img_gate": kw("img_gate", False), "integration": kw("integration", "add"), "norm": kw("norm"),
            "kmeans": kw("kmeans", False), "kmeans_iters": kw("kmeans_iters", 1), "iterative": kw("iterative", False),
            "use_pos": kw("use_pos", False), "pos_dim": kw("pos_dim"), "pos_type": kw("pos_type", "sinus"),
            "pos_init": kw("pos_init", "uniform"), "pos_directions_num": kw("pos_directions_num", 2)},
    }


_ATT = {"weight_query": "to_queries.weight", "bias_query": "to_queries.bias", "weight_key": "to_keys.weight",
        "bias_key": "to_keys.bias", "weight_value": "to_values.weight", "bias_value": "to_values.bias",
        "weight_from_pos": "from_pos_map.weight", "bias_from_pos": "from_pos_map.bias",
        "weight_to_pos": "to_pos_map.weight", "bias_to_pos": "to_pos_map.bias",
        "weight_out": "modulation.weight", "bias_out": "modulation.bias", "toasgn_init": "centroids",
        "iter_0/st_weights": "att_weight"}
_LAYER = {"bias": "biasAct.bias", "noise_strength": "noise_strength", "mod_weight": "affine.weight",
          "mod_bias": "affine.bias", "weight": "weight"}


def _tf_value(tf_tail: str, value: np.ndarray, flip: bool = False) -> np.ndarray:
    """TF layouts -> PyTorch: dense [in, out] -> [out, in]; conv [kh, kw, in, out] ->
    [out, in, kh, kw] (an upsampling or skip conv's kernel flipped); the affine bias +1."""
    if tf_tail in ("weight", "mod_weight") or tf_tail.startswith("weight_"):
        if value.ndim == 4:
            return (value[::-1, ::-1] if flip else value).transpose(3, 2, 0, 1)
        return value.transpose()
    if tf_tail == "mod_bias":
        return value + 1
    return value


def _tf_generator_name(name: str, value: np.ndarray) -> tuple[str, np.ndarray]:
    """One TF generator variable -> (official PyTorch name, value)."""
    if name == "ltnt_emb/emb":
        return "pos", value
    if name == "dlatent_avg":
        return "mapping.w_avg", value
    m = re.fullmatch(r"mapping/(global/)?Dense(\d+)_(\d+)/(weight|bias)", name)
    if m:
        mlp = "global_mlp" if m.group(1) else "mlp"
        return f"mapping.{mlp}.l{m.group(2)}.fc{m.group(3)}.{m.group(4)}", _tf_value(m.group(4), value)
    m = re.fullmatch(r"mapping/(global/)?Dense3/(weight|bias)", name)
    if m:
        mlp = "global_mlp" if m.group(1) else "mlp"
        return f"mapping.{mlp}.out_layer.{m.group(2)}", _tf_value(m.group(2), value)
    m = re.fullmatch(r"mapping/AttLayer_(\d+)/(.+)", name)
    if m and m.group(2) in _ATT:
        return f"mapping.mlp.sa{m.group(1)}.{_ATT[m.group(2)]}", _tf_value(m.group(2), value)
    if name == "synthesis/4x4/Const/const":
        return "synthesis.b4.const", value[0]
    m = re.fullmatch(r"synthesis/noise(\d+)", name)
    if m:
        n = int(m.group(1))
        i = 1 if n == 0 else (n + 1) % 2
        res = 4 if n == 0 else 2 ** ((n + 5 - i) // 2)
        return f"synthesis.b{res}.conv{i}.noise_const", value[0, 0]
    m = re.fullmatch(r"synthesis/(\d+)x\1/(.+)", name)
    if m:
        res, rest = int(m.group(1)), m.group(2)
        block = f"synthesis.b{res}"
        m2 = re.fullmatch(r"(Conv|Conv0_up|Conv1)/(.+)", rest)
        if m2:
            conv = {"Conv": "conv1", "Conv0_up": "conv0", "Conv1": "conv1"}[m2.group(1)]
            tail = m2.group(2)
            if tail.startswith("AttLayer_l2n/") and tail[len("AttLayer_l2n/"):] in _ATT:
                key = tail[len("AttLayer_l2n/"):]
                return f"{block}.{conv}.transformer.{_ATT[key]}", _tf_value(key, value)
            if tail in _LAYER:
                return f"{block}.{conv}.{_LAYER[tail]}", _tf_value(tail, value, flip=conv == "conv0")
        m2 = re.fullmatch(r"ToRGB/(extraLayer/)?(weight|bias|mod_weight|mod_bias)", rest)
        if m2 and not (m2.group(1) and m2.group(2) == "bias"):
            layer = "conv_last" if m2.group(1) else "torgb"
            return f"{block}.{layer}.{_LAYER[m2.group(2)]}", _tf_value(m2.group(2), value)
        if rest == "Skip/weight":
            return f"{block}.skip.weight", _tf_value("weight", value, flip=True)
    raise KeyError(name)


def _tf_network(data: tuple, network: str, path: Path) -> tuple[dict, dict]:
    G = data[2] if network == "Gs" else data[0]
    state = _tf_state(G, network)
    version = state.get("version", 0)
    if type(version) is not int:
        raise CheckpointError(f"{path}: TensorFlow network version {short(version)} is not a number")
    if version < 4:
        raise CheckpointError(f"{path}: TensorFlow network version {version} is too old (4 or later)")
    static = plain_kwargs(state.get("static_kwargs") or {}, f"{network}'s static kwargs")
    try:
        kwargs = _tf_kwargs(dict(static))
    except (TypeError, ValueError, OverflowError) as err:
        raise CheckpointError(f"{path}: {network}'s static kwargs are malformed ({type(err).__name__}: "
                              f"{str(err)[:200]})") from None
    out = {}
    for name, value in _tf_variables(G, network).items():
        if re.fullmatch(r"(ToRGB|FromRGB)_lod\d+/.*", name):
            raise CheckpointError(f"{path}: the 'orig' progressive-growing layout ({name}) has no ganrepro counterpart")
        try:
            key, tensor = _tf_generator_name(name, value)
        except KeyError:
            raise CheckpointError(f"{path}: unexpected TensorFlow variable {short(name)} in {network}; ganrepro "
                                  "imports the official GANformer generators") from None
        except (IndexError, ValueError) as err:
            raise CheckpointError(f"{path}: TensorFlow variable {name!r} of {network} has the shape "
                                  f"{list(value.shape)}, not the official layout ({err})") from None
        out[key] = torch.tensor(np.array(tensor, dtype=np.float32))      # a copy: flips have negative strides
    return kwargs, out


# ---------------------------------------------------------------------------- kwargs -> hparams

def _log2_res(x: int) -> int:
    return int(math.log2(x))


def hparams_from_official(kwargs: dict, where: str) -> tuple[str, dict[str, Any]]:
    """(registry model, hyper-parameters) of an official Generator's kwargs; anything ganrepro
    cannot compute exactly is refused with the kwarg and its value."""
    try:
        return _hparams_from_official(kwargs, where)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
        raise CheckpointError(f"{where}: its generator's kwargs are incomplete or malformed "
                              f"({type(err).__name__}: {err}); not an official GANformer generator") from None


def _hparams_from_official(kwargs: dict, where: str) -> tuple[str, dict[str, Any]]:
    mk, sk = dict(kwargs.get("mapping_kwargs") or {}), dict(kwargs.get("synthesis_kwargs") or {})

    def refuse(name, value, allowed):
        raise CheckpointError(f"{where}: official kwarg {name}={short(value)} has no exact ganrepro counterpart "
                              f"(ganrepro imports {allowed})")

    for name, value, ok in [("c_dim", kwargs.get("c_dim", 0), 0), ("crop_ratio", sk.get("crop_ratio"), None),
                            ("latent_stem", sk.get("latent_stem", False), False),
                            ("local_noise", sk.get("local_noise", True), True),
                            ("act", sk.get("act", "lrelu"), "lrelu"), ("mapping act", mk.get("act", "lrelu"), "lrelu"),
                            ("ltnt_gate", sk.get("ltnt_gate", False) or mk.get("ltnt_gate", False), False),
                            ("img_gate", sk.get("img_gate", False), False),
                            ("iterative", sk.get("iterative", False), False),
                            ("layer_dim", mk.get("layer_dim"), None), ("shared", mk.get("shared", False), False)]:
        if value != ok:
            refuse(name, value, f"{name}={ok!r}")
    if list(sk.get("resample_kernel", [1, 3, 3, 1])) != [1, 3, 3, 1]:
        refuse("resample_kernel", sk["resample_kernel"], "[1, 3, 3, 1]")
    res = int(kwargs["img_resolution"])
    k = int(kwargs.get("k", 1))
    # Sizes are checked before anything is built, so a forged file cannot ask for a huge network.
    if res not in (8, 16, 32, 64, 128, 256, 512, 1024):
        refuse("img_resolution", res, "8 to 1024 px, a power of two")
    for name, value, most in (("k", k, 257), ("z_dim", kwargs.get("z_dim", 512), 4096),
                              ("w_dim", kwargs.get("w_dim", 512), 4096),
                              ("channel_max", sk.get("channel_max", 512), 4096),
                              ("channel_base", sk.get("channel_base", 32 << 10), 1 << 20),
                              ("num_layers", mk.get("num_layers", 8), 64)):
        if not 1 <= int(value) <= most:
            refuse(name, value, f"{name} from 1 to {most}")
    transformer = bool(sk.get("transformer", False))
    hp: dict[str, Any] = {
        "resolution": res, "channels": int(kwargs.get("img_channels", 3)),
        "z_dim": int(kwargs.get("z_dim", 512)), "w_dim": int(kwargs.get("w_dim", 512)),
        "mapping_layers": int(mk.get("num_layers", 8)), "mapping_lr_mul": float(mk.get("lrmul", 0.01)),
        "mapping_residual": bool(mk.get("resnet", False)),
        "channel_base": int(sk.get("channel_base", 32 << 10)), "channel_max": int(sk.get("channel_max", 512)),
        "architecture": sk.get("architecture", "skip"),
        "w_avg_beta": float(mk.get("w_avg_beta") if mk.get("w_avg_beta") is not None else 1.0),
    }
    if hp["architecture"] not in ("skip", "resnet"):
        refuse("architecture", hp["architecture"], "skip or resnet")
    if not transformer:
        if k != 1:
            refuse("k", k, "k = 1 without attention (StyleGAN2)")
        return "stylegan2", hp
    if sk.get("norm") != "layer" or not sk.get("use_pos", False) or sk.get("pos_type", "sinus") != "sinus":
        refuse("norm/use_pos/pos_type", (sk.get("norm"), sk.get("use_pos"), sk.get("pos_type")),
               "the GANformer presets: norm='layer', use_pos=True, pos_type='sinus'")
    if sk.get("integration", "add") not in ("mul", "add"):
        refuse("integration", sk.get("integration"), "'mul' or 'add'")
    start, end = int(sk.get("start_res", 0)), int(sk.get("end_res", 20))
    lowest, highest = max(start, 2), min(end - 1, _log2_res(res))
    if lowest > highest:
        refuse("start_res/end_res", (start, end), "at least one attention resolution")
    hp.update(components=k - 1, heads=int(sk.get("num_heads", 1)),
              attention_dropout=float(sk.get("attention_dropout", 0.12)), integration=sk.get("integration", "add"),
              start_res=2 ** lowest, end_res=2 ** highest, kmeans_iters=int(sk.get("kmeans_iters", 1)),
              pos_dim=int(sk.get("pos_dim") or 0), style=bool(sk.get("style", True)),
              mapping_ltnt2ltnt=bool(mk.get("ltnt2ltnt", False)), duplex_keys="kmeans",
              normalize_global=bool(mk.get("normalize_global", True)))
    return ("ganformer-duplex" if sk.get("kmeans", False) else "ganformer-simplex"), hp


# ---------------------------------------------------------------------------- import

def read_checkpoint(path: str | Path, network: str = "Gs") -> dict[str, Any]:
    """An official checkpoint file -> {"model", "hparams", "state_dict" (ganrepro names),
    "source": {file, sha256, format, network}, "kimg"}. Nothing from the file runs."""
    path = Path(path)
    try:
        return _read_checkpoint(path, network)
    except CheckpointError as err:                 # every message names the file
        if str(path) in str(err):
            raise
        raise CheckpointError(f"{path}: {err}") from None


def _read_checkpoint(path: Path, network: str) -> dict[str, Any]:
    if network not in ("Gs", "G"):
        raise CheckpointError(f"network must be Gs or G (got {network!r})")
    data = safe_load(path)
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
        fmt = "tensorflow-pickle"
        kwargs, state = _tf_network(data, network, path)
        kimg = 0
    elif isinstance(data, dict) and any(isinstance(v, Persistent) for v in data.values()):
        fmt = "pytorch-pickle"
        kwargs, state = _pytorch_network(data, network, path)
        nimg = data.get("cur_nimg")
        kimg = nimg // 1000 if type(nimg) is int and 0 <= nimg < 1 << 62 else 0
    else:
        raise CheckpointError(f"{path} is a pickle, but not an official GANformer checkpoint (a TensorFlow "
                              "tuple (G, D, Gs) or a PyTorch dict with G, D and G_ema); found "
                              f"{type(data).__name__}")
    model, hparams = hparams_from_official(kwargs, str(path))
    try:
        converted = official.generator(state, style=hparams.get("style", True))
    except KeyError as err:
        raise CheckpointError(f"{path}: {err.args[0]}") from None
    except (ValueError, RuntimeError, IndexError, TypeError) as err:     # a tensor of the wrong rank
        raise CheckpointError(f"{path}: a tensor of its {network} does not have the official layout "
                              f"({type(err).__name__}: {str(err)[:200]})") from None
    check_state(path, network, model, hparams, converted)
    return {"model": model, "hparams": hparams, "state_dict": converted, "kimg": kimg,
            "source": {"file": path.name, "sha256": sha256_file(path), "format": fmt, "network": network,
                       "official_kwargs": json.loads(json.dumps(kwargs, default=str))}}


def check_state(path: Path, network: str, model: str, hparams: dict, state: dict[str, torch.Tensor]) -> None:
    """Refuse, before the real network is built, a state whose names or shapes differ from
    what `model` at `hparams` holds (counted on the meta device), or a network larger than
    this machine's memory."""
    from ganrepro import models
    from ganrepro.errors import ConfigError

    try:
        models.check_network_size(model, hparams, str(path))
        expected = models.expected_state(model, **hparams)
    except ConfigError as err:
        raise CheckpointError(str(err) if str(path) in str(err) else f"{path}: {err}") from None
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{path}: its {network} does not fill ganrepro's {model} exactly "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for key, shape in expected.items():
        value = state[key]
        if tuple(value.shape) != shape:
            raise CheckpointError(f"{path}: its {network} tensor {key!r} has the shape {list(value.shape)}, but "
                                  f"ganrepro's {model} with its kwargs needs {list(shape)}")
        if not value.is_floating_point():
            raise CheckpointError(f"{path}: its {network} tensor {key!r} holds {value.dtype}, not floats")


def import_checkpoint(path: str | Path, out: str | Path, network: str = "Gs", expect_sha256: str | None = None,
                      expect_model: str | None = None) -> dict[str, Any]:
    """Import `path` and write an ordinary ganrepro snapshot to `out` (atomically); returns
    the snapshot's metadata."""
    from ganrepro import models
    from ganrepro.settings.registry import resolve_hparams

    path = Path(path)
    if expect_sha256 is not None and path.is_file():
        actual = sha256_file(path)
        if actual != expect_sha256:
            raise CheckpointError(f"{path} has sha256 {actual}, not the expected {expect_sha256}")
    ckpt = read_checkpoint(path, network)
    if expect_model is not None and ckpt["model"] != expect_model:
        raise CheckpointError(f"{path} holds a {ckpt['model']} generator, not the expected {expect_model}")
    G = models.build_generator(ckpt["model"], **ckpt["hparams"])
    missing, unexpected = G.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: its {network} does not fill ganrepro's {ckpt['model']} exactly "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    hparams = dataclasses.asdict(resolve_hparams(ckpt["model"], **ckpt["hparams"]))
    models.save_snapshot(out, G, ckpt["model"], hparams, ckpt["kimg"], source=ckpt["source"])
    return {"model": ckpt["model"], "hparams": hparams, "kimg": ckpt["kimg"], "source": ckpt["source"],
            "parameters": models.count_parameters(G)}

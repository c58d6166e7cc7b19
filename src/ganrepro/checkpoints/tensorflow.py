"""The released TensorFlow pickles of the official GANformer code: a tuple (G, D, Gs) of
`dnnlib.tflib.network.Network` objects whose state holds the static kwargs, sub-networks
(components), named TF variables (numpy arrays) and the builder's source code (kept as
text, never run). Here the TF variable names, layouts and static kwargs become the
official PyTorch code's, as its own loader maps them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganrepro.checkpoints.unpickler import CheckpointError, SafeArray, TFNetwork, short
from ganrepro.checkpoints.walk import MAX_TENSORS, plain_kwargs, walk_tree

# The position of each network in the pickled tuple.
NETWORKS = {"G": 0, "D": 1, "Gs": 2}


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
    for node, name, prefix, push in walk_tree(net, network, "component", network):
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


def _lookup(static: dict, names: str | list[str], default: Any = None) -> Any:
    """The first of the static kwargs `names` that is set, else `default`."""
    for n in [names] if isinstance(names, str) else names:
        if n in static and static[n] is not None:
            return static[n]
    return default


def _tf_kwargs(static: dict) -> dict:
    """The official PyTorch Generator kwargs a TF generator's static kwargs stand for (the
    official loader's reading, including its defaults)."""
    def kw(names, default=None):
        return _lookup(static, names, default)
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


def _tf_discriminator_kwargs(static: dict) -> dict:
    """The official PyTorch Discriminator kwargs a TF discriminator's static kwargs stand
    for (the TF code's defaults where one is not set)."""
    def kw(names, default=None):
        return _lookup(static, names, default)
    return {
        "c_dim": kw(["label_size", "c_dim"], 0), "img_resolution": kw("resolution", 1024),
        "img_channels": kw("num_channels", 3), "architecture": kw("architecture", "resnet"),
        "channel_base": kw(["fmap_base", "channel_base"], 16 << 10) * 2, "channel_max": kw(["fmap_max", "channel_max"], 512),
        "block_kwargs": {"activation": kw("nonlinearity", "lrelu")},
        "epilogue_kwargs": {"mbstd_group_size": kw("mbstd_group_size", 4),
                            "mbstd_num_channels": kw("mbstd_num_features", 1)},
    }


_D_LAYER = {"FromRGB": "fromrgb", "Conv0": "conv0", "Conv1_down": "conv1", "Skip": "skip"}


def _tf_discriminator_name(name: str, value: np.ndarray) -> tuple[str, np.ndarray]:
    """One TF discriminator variable -> (official PyTorch name, value); as the official
    loader maps them, no discriminator kernel is flipped."""
    m = re.fullmatch(r"(\d+)x\1/(FromRGB|Conv0|Conv1_down|Skip)/(weight|bias)", name)
    if m and not (m.group(2) == "Skip" and m.group(3) == "bias"):
        tail = "weight" if m.group(3) == "weight" else "biasAct.bias"
        return f"b{m.group(1)}.{_D_LAYER[m.group(2)]}.{tail}", _tf_value(m.group(3), value)
    m = re.fullmatch(r"4x4/Conv/(weight|bias)", name)
    if m:
        return f"b4.conv.{'weight' if m.group(1) == 'weight' else 'biasAct.bias'}", _tf_value(m.group(1), value)
    m = re.fullmatch(r"(4x4/Dense0|Output)/(weight|bias)", name)
    if m:
        return f"b4.{'fc' if m.group(1) == '4x4/Dense0' else 'out'}.{m.group(2)}", _tf_value(m.group(2), value)
    raise KeyError(name)


def network(data: tuple, network: str, path: Path) -> tuple[dict, dict]:
    """(official kwargs, official state_dict) of `network` (Gs, G or D) of a TF pickle."""
    net = data[NETWORKS[network]]
    discriminator = network == "D"
    state = _tf_state(net, network)
    version = state.get("version", 0)
    if type(version) is not int:
        raise CheckpointError(f"{path}: TensorFlow network version {short(version)} is not a number")
    if version < 4:
        raise CheckpointError(f"{path}: TensorFlow network version {version} is too old (4 or later)")
    static = plain_kwargs(state.get("static_kwargs") or {}, f"{network}'s static kwargs")
    try:
        kwargs = (_tf_discriminator_kwargs if discriminator else _tf_kwargs)(dict(static))
    except (TypeError, ValueError, OverflowError) as err:
        raise CheckpointError(f"{path}: {network}'s static kwargs are malformed ({type(err).__name__}: "
                              f"{str(err)[:200]})") from None
    out = {}
    for name, value in _tf_variables(net, network).items():
        if re.fullmatch(r"(ToRGB|FromRGB)_lod\d+/.*", name):
            raise CheckpointError(f"{path}: the 'orig' progressive-growing layout ({name}) has no ganrepro counterpart")
        try:
            key, tensor = (_tf_discriminator_name if discriminator else _tf_generator_name)(name, value)
        except KeyError:
            what = "discriminators" if discriminator else "generators"
            raise CheckpointError(f"{path}: unexpected TensorFlow variable {short(name)} in {network}; ganrepro "
                                  f"imports the official GANformer {what}") from None
        except (IndexError, ValueError) as err:
            raise CheckpointError(f"{path}: TensorFlow variable {name!r} of {network} has the shape "
                                  f"{list(value.shape)}, not the official layout ({err})") from None
        out[key] = torch.tensor(np.array(tensor, dtype=np.float32))      # a copy: flips have negative strides
    return kwargs, out

"""Released checkpoints -> ganrepro snapshots, without running code from the file.

Two formats come from the official GANformer code (github.com/dorarad/gansformer):

* TensorFlow pickles (the released clevr/cityscapes/ffhq/bedrooms snapshots): a tuple
  (G, D, Gs) of `dnnlib.tflib.network.Network` objects whose state holds the static
  kwargs, sub-networks, named TF variables (numpy arrays) and the builder's source code.
* PyTorch pickles (`network-snapshot-*.pkl` of its PyTorch training loop): a dict with G,
  D, G_ema, ... whose modules are pickled through `torch_utils.persistence`, with the
  source of their Python module inside.

Plain `pickle.load` runs code named by the file: the persistence hook execs the embedded
source, and any pickle may call any importable function. `SafeUnpickler` maps the few
globals these files need to inert stand-ins or to pure data constructors (numpy arrays,
torch tensors, whose storages are read by `torch.load(weights_only=True)`) and refuses
every other global with one sentence naming the file and the global. The embedded source
is kept as a string and never executed.

The weights then go, under the official PyTorch names, through the converter of the
equivalence work (models/official.py) into this package's networks, which compute the
official functions (tests/test_official.py); tests/test_checkpoints.py checks imported
fixtures in both formats against the official code's own conversion and outputs.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import math
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganrepro.data.download import sha256_file
from ganrepro.errors import GanreproError
from ganrepro.models import official


class CheckpointError(GanreproError):
    """A checkpoint file cannot be imported (unsafe, damaged, foreign or unsupported)."""


# ---------------------------------------------------------------------------- inert stand-ins

class _Inert:
    """An object of a class the file names, holding its pickled state and nothing else."""
    qualname = "?"

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state


class TFNetwork(_Inert):
    """`dnnlib.tflib.network.Network`: state = {version, name, static_kwargs, components,
    variables, build_module_src, build_func_name}."""
    qualname = "dnnlib.tflib.network.Network"


class TorchModule(_Inert):
    """A torch.nn module class the file names (e.g. Dropout); its state is its __dict__."""


class Persistent:
    """A `torch_utils.persistence` object: its class name, the module source (kept as text,
    never run) and its state (the module's __dict__)."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise CheckpointError("it holds a persistent object of an unknown kind (not an official network)")
        self.class_name = str(meta.get("class_name"))
        self.state = meta.get("state") or {}


class EasyDict(dict):
    """`dnnlib.util.EasyDict`: a plain dict here."""


def _load_storage(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True)


_TORCH_MODULES: dict[str, type] = {}


def _torch_module(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _TORCH_MODULES:
        _TORCH_MODULES[key] = type(name, (TorchModule,), {"qualname": key})
    return _TORCH_MODULES[key]


_ALLOWED: dict[tuple[str, str], Any] = {
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): Persistent,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
try:                                   # numpy 2 moved numpy.core to numpy._core; files name either
    from numpy._core import multiarray as _multiarray
except ImportError:                    # numpy 1
    from numpy.core import multiarray as _multiarray
for _np in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_np, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_np, "scalar")] = _multiarray.scalar


class SafeUnpickler(pickle.Unpickler):
    """Resolves only the globals of the official checkpoint formats (see the module doc)."""

    def __init__(self, file, name: str):
        super().__init__(file)
        self.name = name

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module.startswith("torch.nn.modules.") and re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
            return _torch_module(module, name)
        raise CheckpointError(
            f"{self.name}: refused to load: it names the global {module}.{name}, which is not one of the "
            "classes of an official GANformer checkpoint (loading it could run code from the file)")

    def persistent_load(self, pid):
        raise CheckpointError(f"{self.name}: refused to load: it uses persistent ids, which official "
                              "checkpoint pickles do not")


def safe_load(path: Path) -> Any:
    """The unpickled content of `path` with inert stand-ins; one clear error otherwise."""
    try:
        with open(path, "rb") as f:
            return SafeUnpickler(f, str(path)).load()
    except CheckpointError as err:
        if str(path) in str(err):
            raise
        raise CheckpointError(f"{path}: {err}") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a checkpoint file") from None
    except (EOFError, pickle.UnpicklingError) as err:
        raise CheckpointError(f"{path} is not a complete pickle ({type(err).__name__}: {err}); "
                              "a truncated download or another kind of file") from None
    except Exception as err:                     # a malformed pickle of allowed parts
        raise CheckpointError(f"{path} cannot be read as an official checkpoint "
                              f"({type(err).__name__}: {err})") from None


# ---------------------------------------------------------------------------- PyTorch pickles

def _state_dict(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """state_dict() of a pickled module, from its state alone (parameters, persistent buffers)."""
    state = obj.state if isinstance(obj, Persistent) else obj.__dict__.get("state", {})
    out: dict[str, torch.Tensor] = {}
    if not isinstance(state, dict):
        return out
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for name, value in (state.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + name] = value.detach()
    for name, value in (state.get("_buffers") or {}).items():
        if value is not None and name not in skip:
            out[prefix + name] = value.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(_state_dict(child, f"{prefix}{name}."))
    return out


def _pytorch_network(data: dict, network: str, path: Path) -> tuple[dict, dict]:
    """(official kwargs, official state_dict) of one generator of an official PyTorch pickle."""
    key = {"Gs": "G_ema", "G": "G"}[network]
    obj = data.get(key, data.get("Gs") if network == "Gs" else None)
    if not isinstance(obj, Persistent) or obj.class_name != "Generator":
        raise CheckpointError(f"{path} holds no official generator {key!r} (keys: {', '.join(map(str, data))})")
    kwargs = dict(obj.state.get("_init_kwargs") or {})
    return kwargs, _state_dict(obj)


# ---------------------------------------------------------------------------- TensorFlow pickles

def _tf_variables(net: TFNetwork, prefix: str = "") -> dict[str, np.ndarray]:
    state = net.__dict__.get("state") or {}
    out = {prefix + name: np.asarray(value) for name, value in state.get("variables") or []}
    for name, comp in (state.get("components") or {}).items():
        out.update(_tf_variables(comp, f"{prefix}{name}/"))
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
    state = G.__dict__.get("state") or {}
    if int(state.get("version", 0)) < 4:
        raise CheckpointError(f"{path}: TensorFlow network version {state.get('version')} is too old (4 or later)")
    kwargs = _tf_kwargs(dict(state.get("static_kwargs") or {}))
    out = {}
    for name, value in _tf_variables(G).items():
        if re.fullmatch(r"(ToRGB|FromRGB)_lod\d+/.*", name):
            raise CheckpointError(f"{path}: the 'orig' progressive-growing layout ({name}) has no ganrepro counterpart")
        try:
            key, tensor = _tf_generator_name(name, value)
        except KeyError:
            raise CheckpointError(f"{path}: unexpected TensorFlow variable {name!r} in {network}; ganrepro imports "
                                  "the official GANformer generators") from None
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
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{where}: its generator's kwargs are incomplete or malformed "
                              f"({type(err).__name__}: {err}); not an official GANformer generator") from None


def _hparams_from_official(kwargs: dict, where: str) -> tuple[str, dict[str, Any]]:
    mk, sk = dict(kwargs.get("mapping_kwargs") or {}), dict(kwargs.get("synthesis_kwargs") or {})

    def refuse(name, value, allowed):
        raise CheckpointError(f"{where}: official kwarg {name}={value!r} has no exact ganrepro counterpart "
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
        kimg = int(data.get("cur_nimg", 0) or 0) // 1000 if isinstance(data.get("cur_nimg"), int) else 0
    else:
        raise CheckpointError(f"{path} is a pickle, but not an official GANformer checkpoint (a TensorFlow "
                              "tuple (G, D, Gs) or a PyTorch dict with G, D and G_ema); found "
                              f"{type(data).__name__}")
    model, hparams = hparams_from_official(kwargs, str(path))
    try:
        converted = official.generator(state, style=hparams.get("style", True))
    except KeyError as err:
        raise CheckpointError(f"{path}: {err.args[0]}") from None
    return {"model": model, "hparams": hparams, "state_dict": converted, "kimg": kimg,
            "source": {"file": path.name, "sha256": sha256_file(path), "format": fmt, "network": network,
                       "official_kwargs": json.loads(json.dumps(kwargs, default=str))}}


def import_checkpoint(path: str | Path, out: str | Path, network: str = "Gs", expect_sha256: str | None = None,
                      expect_model: str | None = None) -> dict[str, Any]:
    """Import `path` and write an ordinary ganrepro snapshot to `out` (atomically); returns
    the snapshot's metadata."""
    from ganrepro import models

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
    hparams = dataclasses.asdict(models.resolve_hparams(ckpt["model"], **ckpt["hparams"]))
    models.save_snapshot(out, G, ckpt["model"], hparams, ckpt["kimg"], source=ckpt["source"])
    return {"model": ckpt["model"], "hparams": hparams, "kimg": ckpt["kimg"], "source": ckpt["source"],
            "parameters": models.count_parameters(G)}

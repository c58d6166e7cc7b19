"""Released checkpoints -> ganrepro files, without running code from the file.

`read_checkpoint` unpickles an official file with the restricted unpickler, reads one of
its networks (Gs, G or D) in its format (tensorflow.py, pytorch.py), maps its kwargs to a
registry model and hyper-parameters (kwargs.py) and converts its official-named tensors
to ganrepro's (official.py), checking names and shapes against the model before anything
real is built. `import_checkpoint` writes the result: a generator as an ordinary
snapshot (models.save_snapshot), a discriminator as a discriminator file
(discriminator.py).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from ganrepro import models
from ganrepro.checkpoints import discriminator, official, pytorch, tensorflow
from ganrepro.checkpoints.kwargs import discriminator_hparams, hparams_from_official
from ganrepro.checkpoints.unpickler import CheckpointError, Persistent, TFNetwork, safe_load
from ganrepro.errors import ConfigError
from ganrepro.files import sha256_file
from ganrepro.settings.registry import resolve_hparams

NETWORKS = ("Gs", "G", "D")


def read_checkpoint(path: str | Path, network: str = "Gs") -> dict[str, Any]:
    """One network (NETWORKS: Gs, G or D) of an official checkpoint file -> {"model",
    "hparams", "state_dict" (ganrepro names), "source": {file, sha256, format, network,
    official_kwargs}, "kimg"}. The model and hparams are those the file's generator stands
    for, also for its D. Nothing from the file runs."""
    path = Path(path)
    try:
        return _read_checkpoint(path, network)
    except CheckpointError as err:                 # every message names the file
        if str(path) in str(err):
            raise
        raise CheckpointError(f"{path}: {err}") from None


def _read_checkpoint(path: Path, network: str) -> dict[str, Any]:
    if network not in NETWORKS:
        raise CheckpointError(f"network must be {', '.join(NETWORKS[:-1])} or {NETWORKS[-1]} (got {network!r})")
    data = safe_load(path)
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
        fmt, reader, kimg = "tensorflow-pickle", tensorflow.network, 0
    elif isinstance(data, dict) and any(isinstance(v, Persistent) for v in data.values()):
        fmt, reader = "pytorch-pickle", pytorch.network
        nimg = data.get("cur_nimg")
        kimg = nimg // 1000 if type(nimg) is int and 0 <= nimg < 1 << 62 else 0
    else:
        raise CheckpointError(f"{path} is a pickle, but not an official GANformer checkpoint (a TensorFlow "
                              "tuple (G, D, Gs) or a PyTorch dict with G, D and G_ema); found "
                              f"{type(data).__name__}")
    if network == "D":
        g_kwargs, _ = reader(data, "Gs", path)             # the model the discriminator belongs to
        model, hparams = hparams_from_official(g_kwargs, str(path))
        kwargs, state = reader(data, "D", path)
        hparams = discriminator_hparams(kwargs, model, hparams, str(path))
    else:
        kwargs, state = reader(data, network, path)
        model, hparams = hparams_from_official(kwargs, str(path))
    try:
        converted = (official.discriminator(state, hparams["resolution"]) if network == "D" else
                     official.generator(state, style=hparams.get("style", True)))
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
    what `model`'s generator (or, for D, discriminator) at `hparams` holds (counted on the
    meta device), or a network larger than this machine's memory."""
    try:
        models.check_network_size(model, hparams, str(path))
        expected = (discriminator.expected_state(model, hparams) if network == "D" else
                    models.expected_state(model, **hparams))
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
    """Import one network of `path` and write it to `out` (atomically): a generator (Gs, G)
    as an ordinary ganrepro snapshot, the discriminator (D) as a discriminator file
    (checkpoints.discriminator). Returns the file's metadata and the parameter count."""
    path = Path(path)
    if expect_sha256 is not None and path.is_file():
        actual = sha256_file(path)
        if actual != expect_sha256:
            raise CheckpointError(f"{path} has sha256 {actual}, not the expected {expect_sha256}")
    ckpt = read_checkpoint(path, network)
    if expect_model is not None and ckpt["model"] != expect_model:
        raise CheckpointError(f"{path} holds a {ckpt['model']} generator, not the expected {expect_model}")
    net = (models.build(ckpt["model"], **ckpt["hparams"]).D if network == "D" else
           models.build_generator(ckpt["model"], **ckpt["hparams"]))
    missing, unexpected = net.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: its {network} does not fill ganrepro's {ckpt['model']} exactly "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    hparams = dataclasses.asdict(resolve_hparams(ckpt["model"], **ckpt["hparams"]))
    save = discriminator.save_discriminator if network == "D" else models.save_snapshot
    save(out, net, ckpt["model"], hparams, ckpt["kimg"], source=ckpt["source"])
    return {"model": ckpt["model"], "hparams": hparams, "kimg": ckpt["kimg"], "source": ckpt["source"],
            "parameters": models.count_parameters(net)}

"""Networks and snapshots of the registered models.

`build(name, **hparams)` makes a generator and a discriminator from a plain dict of
hyper-parameters, with the classes the settings registry names for `name`; a snapshot
stores that dict, the model name and the EMA generator's state_dict (never pickled code),
so `load_snapshot` rebuilds the generator from this package's own classes.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ganrepro import __version__
from ganrepro.errors import ConfigError
from ganrepro.settings import presets
from ganrepro.settings.registry import MODELS, resolve_hparams
from ganrepro.settings.run import configured_hparams

# 2: the networks compute the official code's functions (conv_last, official mapping and
# attention); snapshots of format 1 hold other modules and do not load.
SNAPSHOT_FORMAT = "ganrepro-snapshot-2"


def _network(reference: str) -> Callable[[Any], nn.Module]:
    """The callable a registry reference "module:name" names."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _generator(name: str, cfg: Any) -> nn.Module:
    return _network(MODELS[name].generator)(cfg)


def _discriminator(name: str, cfg: Any) -> nn.Module:
    return _network(MODELS[name].discriminator)(cfg)


@dataclass
class Networks:
    name: str
    hparams: dict[str, Any]            # every hyper-parameter, defaults included
    G: nn.Module
    D: nn.Module


def build_generator(name: str, **hparams) -> nn.Module:
    cfg = resolve_hparams(name, **hparams)
    try:
        return _generator(name, cfg)
    except ValueError as err:
        raise ConfigError(f"cannot build {name}: {err}") from None


def build(name: str, **hparams) -> Networks:
    """Generator and discriminator of model `name` (a name of the settings registry) from
    plain hyper-parameters."""
    cfg = resolve_hparams(name, **hparams)
    try:
        G, D = _generator(name, cfg), _discriminator(name, cfg)
    except ValueError as err:
        raise ConfigError(f"cannot build {name}: {err}") from None
    return Networks(name, dataclasses.asdict(cfg), G, D)


# Training holds G, D and G_ema, a gradient and two Adam moments for G and D: about this many
# fp32 copies of (G + D)'s parameters.
TRAINING_COPIES = 5


def expected_state(name: str, **hparams) -> dict[str, tuple[int, ...]]:
    """The generator's state_dict shapes for `hparams`, from a build on the meta device
    (nothing allocated, so any size is cheap to ask about)."""
    cfg = resolve_hparams(name, **hparams)
    try:
        with torch.device("meta"):
            G = _generator(name, cfg)
    except ValueError as err:
        raise ConfigError(f"cannot build {name}: {err}") from None
    return {k: tuple(v.shape) for k, v in G.state_dict().items()}


def network_bytes(name: str, *, training: bool = False, **hparams) -> int:
    """Bytes of fp32 weights of `name` at `hparams`, counted on the meta device: the
    generator's state alone, or (training) G, D and their optimizer state."""
    cfg = resolve_hparams(name, **hparams)
    try:
        with torch.device("meta"):
            G = _generator(name, cfg)
            count = sum(v.numel() for v in G.state_dict().values())
            if training:
                D = _discriminator(name, cfg)
                count = TRAINING_COPIES * (count + sum(p.numel() for p in D.parameters()))
    except ValueError as err:
        raise ConfigError(f"cannot build {name}: {err}") from None
    return 4 * count


def check_network_size(name: str, hparams: dict[str, Any], where: str, *, training: bool = False,
                       limit: int | None = None) -> int:
    """Refuse, before anything is allocated, a network whose weights (training: with D and
    the optimizer state) would not fit in `limit` bytes (default: the machine's memory).
    `where` names the keys or file that set `hparams`. Returns the bytes."""
    from ganrepro.machine import memory_bytes

    need = network_bytes(name, training=training, **hparams)
    whose = "this machine has" if limit is None else "allowed"
    limit = memory_bytes() if limit is None else limit
    if need > limit:
        sizes = ", ".join(f"{k}={hparams[k]}" for k in ("resolution", "channel_base", "channel_max", "z_dim",
                                                        "w_dim", "components") if k in hparams)
        raise ConfigError(f"{where}: {name} at {sizes} needs about {need / 2**30:.1f} GiB of weights"
                          f"{' and optimizer state' if training else ''}, more than the "
                          f"{limit / 2**30:.1f} GiB {whose}; "
                          "lower those keys")
    return need


def check_network_sizes(cfg: dict[str, Any], dataset: str | None, resolution: int, channels: int,
                        model_names, origin: str | None = None, *, training: bool = True) -> None:
    """Refuse, before anything is allocated, a network that the resolved config `cfg` asks
    for on `dataset` (its preset and overrides applied; None = the top-level hparams) at
    `resolution` x `channels` and that would not fit in this machine's memory (training: G,
    D and their optimizer state), naming the config keys that set it.

    This is done by the commands that build networks (train, models params, bench), not by
    the config's validation: a config is validated on whatever machine runs Snakemake or
    `config show`, while the memory that matters is that of the machine that trains."""
    entry = (cfg.get("datasets", {}).get(dataset) or {}) if dataset is not None else {}
    own_cfg = presets.for_dataset(cfg, dataset)
    preset_hp = presets.PRESETS[presets.preset_of(entry)]["hparams"] if entry else {}
    for model in model_names:
        own = model in (entry.get("hparams") or {}) or model in preset_hp
        key = f"datasets.{dataset}.hparams.{model}" if own else f"hparams.{model}"
        at = f"dataset '{dataset}' at {resolution} px" if dataset is not None else f"{resolution} px"
        where = f"config key '{key}' ({at})"
        check_network_size(model, configured_hparams(own_cfg, model, resolution, channels),
                           f"{origin}: {where}" if origin else where, training=training)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def save_snapshot(path: str | Path, G: nn.Module, name: str, hparams: dict[str, Any],
                  kimg: int, config_hash: str | None = None, source: dict[str, Any] | None = None) -> None:
    """Write an inference snapshot atomically (temp file + rename). `source`: where an
    imported snapshot came from (file, sha256, format), recorded as metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": SNAPSHOT_FORMAT, "model": name, "hparams": dict(hparams), "kimg": int(kimg),
        "config_hash": config_hash, "ganrepro_version": __version__,
        "state_dict": {k: v.detach().cpu() for k, v in G.state_dict().items()},
    }
    if source is not None:
        payload["source"] = source
    from ganrepro.files import atomic_write

    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)          # a file object: the archive's inner name never depends on the temp name


def _brief(err: Exception, limit: int = 200) -> str:
    """An exception as one line of at most about `limit` characters (for an `Error:` line)."""
    text = " ".join(str(err).split())
    text = text if len(text) <= limit else text[:limit].rstrip() + " ..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# A snapshot's archive: members torch.save writes stored (never compressed), a small
# data.pkl, and no more data than the file holds.
SNAPSHOT_MAX_MEMBERS = 100_000
SNAPSHOT_MAX_PICKLE = 64 << 20


def _check_archive(path: Path) -> None:
    """Refuse, before torch reads it, a snapshot archive whose members are compressed,
    declare more data than the file holds, or whose data.pkl fails the bounded dry run."""
    import zipfile

    from ganrepro import picklescan

    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > SNAPSHOT_MAX_MEMBERS:
                raise ConfigError(f"{path} is not a ganrepro snapshot: its archive has {len(members):,} members")
            total, pickles = 0, []
            for m in members:
                if m.compress_type != zipfile.ZIP_STORED or m.file_size > m.compress_size \
                        or m.header_offset + m.compress_size > size:
                    raise ConfigError(f"{path} is not a ganrepro snapshot: its member {m.filename[:100]!r} declares "
                                      f"{m.file_size:,} bytes from {m.compress_size:,} stored "
                                      f"({'compressed' if m.compress_type else 'stored'}); torch.save stores "
                                      "members uncompressed")
                total += m.file_size
                if m.filename.endswith("/data.pkl") and m.filename.count("/") == 1:
                    pickles.append(m)
            if total > size or len(pickles) != 1 or pickles[0].file_size > SNAPSHOT_MAX_PICKLE:
                raise ConfigError(f"{path} is not a ganrepro snapshot: its archive declares {total:,} bytes in a "
                                  f"file of {size:,}, or not one data.pkl of at most {SNAPSHOT_MAX_PICKLE:,} bytes")
            data = archive.read(pickles[0])
    except zipfile.BadZipFile as err:
        raise ConfigError(f"{path} is not a readable ganrepro snapshot (not a torch.save archive: {err})") from None
    try:
        picklescan.scan_bytes(data, picklescan.Limits(max_bytes=1 << 20, max_depth=64, max_unfolded=1_000_000,
                                                      allow_persistent_ids=True))
    except picklescan.ScanError as err:
        raise ConfigError(f"{path} is not a readable ganrepro snapshot: its data.pkl is refused ({err})") from None


def check_payload(path: Path, payload: dict,
                  expected_shapes: Callable[[str, dict], dict[str, tuple[int, ...]]] | None = None) -> tuple[str, dict]:
    """(model, hparams) of a snapshot payload whose state_dict matches, name by name and
    shape by shape, what the model at its hparams holds (counted on the meta device), and
    fits this machine; refused otherwise, before the real network is built.
    `expected_shapes(model, hparams)` gives the network's shapes (default: the generator's)."""
    name, hparams, state = payload.get("model"), payload.get("hparams"), payload.get("state_dict")
    if type(name) is not str or name not in MODELS:
        raise ConfigError(f"{path} is a damaged ganrepro snapshot: its model is {str(name)[:50]!r}; "
                          f"allowed: {', '.join(MODELS)}")
    if type(hparams) is not dict or len(hparams) > 200 or not all(type(k) is str for k in hparams):
        raise ConfigError(f"{path} is a damaged ganrepro snapshot: its hparams are not a dict of names")
    if not isinstance(state, dict) or len(state) > 100_000 or not all(type(k) is str for k in state):
        raise ConfigError(f"{path} is a damaged ganrepro snapshot: its state_dict is a "
                          f"{type(state).__name__}, not a dict of named tensors")
    try:
        check_network_size(name, hparams, str(path))
        expected = (expected_shapes or (lambda n, h: expected_state(n, **h)))(name, hparams)
    except ConfigError as err:
        raise ConfigError(str(err) if str(path) in str(err) else f"{path}: {err}") from None
    for key, value in state.items():         # missing and unexpected names: load_state_dict says which
        shape = expected.get(key)
        if type(value) is not torch.Tensor or value.layout != torch.strided:
            raise ConfigError(f"{path} is a damaged ganrepro snapshot: {key[:100]!r} is not a dense tensor")
        if shape is not None and tuple(value.shape) != shape:
            raise ConfigError(f"{path} is a damaged ganrepro snapshot: {key!r} has the shape {list(value.shape)}, "
                              f"but {name} with its hparams needs {list(shape)}")
        if value.dtype.is_complex or value.dtype == torch.bool:
            raise ConfigError(f"{path} is a damaged ganrepro snapshot: {key!r} holds {value.dtype}")
    return name, hparams


def read_snapshot_file(path: str | Path) -> Any:
    """The payload of a file in torch.save's archive format, read with weights_only after
    its archive and pickle are checked for size and shape; one ConfigError otherwise. The
    payload itself is not checked here (see `load_snapshot` and `check_payload`)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(1)
        if magic == b"\x80":           # pickle's PROTO opcode: a bare pickle, not torch.save's zip archive
            raise ConfigError(f"{path} is not a ganrepro snapshot but a plain pickle (like the official "
                              "GANformer .pkl files): make a snapshot of an official checkpoint with "
                              "`ganrepro import-checkpoint FILE --out snapshot.pt`")
        _check_archive(path)
        with warnings.catch_warnings():      # torch warns about the pickle protocol of foreign files
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"snapshot {path} does not exist") from None
    except pickle.UnpicklingError as err:
        # torch's message is paragraphs of advice around the one line that says what was refused.
        detail = str(err).partition("WeightsUnpickler error:")[2].split("Please use")[0]
        if not detail.strip():       # keep what was refused, never torch's advice to load unsafely
            detail = " ".join(part for part in str(err).split("\n\n") if not any(
                w in part for w in ("weights_only", "Weights only", "torch.load", "pytorch.org")))
        detail = " ".join(detail.split())[:300] or "UnpicklingError"
        if "GLOBAL" in detail and "Unsupported global" not in detail:
            raise ConfigError(f"{path} is not a ganrepro snapshot: it tried to call something forbidden "
                              f"({detail}); nothing from it ran, and ganrepro snapshots hold tensors only") from None
        if "Unsupported global" in detail:
            raise ConfigError(f"{path} is not a ganrepro snapshot: it holds pickled Python objects ({detail}), "
                              f"which are not loaded; ganrepro snapshots hold tensors only") from None
        raise ConfigError(f"{path} is not a readable ganrepro snapshot (UnpicklingError: {detail})") from None
    except ConfigError:
        raise
    except Exception as err:  # a truncated or foreign file
        raise ConfigError(f"{path} is not a readable ganrepro snapshot ({_brief(err)})") from None
    return payload


def load_snapshot(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """(generator in eval mode on `device`, metadata) from a snapshot file. Its archive and
    pickle are checked for size and shape before torch reads them, and its tensors against
    the model its hparams name before the network is built."""
    path = Path(path)
    payload = read_snapshot_file(path)
    if isinstance(payload, dict) and type(payload.get("format")) is str \
            and payload["format"].startswith("ganrepro-snapshot-") and payload["format"] != SNAPSHOT_FORMAT:
        raise ConfigError(f"{path} is a {payload['format'][:60]} snapshot from an older ganrepro whose networks "
                          f"differ; this version reads {SNAPSHOT_FORMAT} (retrain, or use the older version)")
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        raise ConfigError(f"{path} is not a ganrepro snapshot (format {SNAPSHOT_FORMAT} expected)")
    name, hparams = check_payload(path, payload)
    try:
        G = build_generator(name, **hparams)
        G.load_state_dict(payload["state_dict"])
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except (KeyError, TypeError, RuntimeError) as err:      # a damaged or hand-edited payload
        raise ConfigError(f"{path} is a damaged ganrepro snapshot ({_brief(err)})") from None
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return G.eval().requires_grad_(False).to(device), meta

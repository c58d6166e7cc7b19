"""Discriminator files: an imported official discriminator kept for ganrepro.

`import-checkpoint --network D` writes one. It is a torch.save archive like a snapshot
and is read with the same checks (models.read_snapshot_file, models.check_payload), but
its format is DISCRIMINATOR_FORMAT and its state_dict is that of the model's
discriminator: {"format", "model", "hparams" (every hyper-parameter of the model, as a
snapshot's), "kimg", "ganrepro_version", "source" (the file it came from), "state_dict"}.
A generator snapshot and a discriminator file of one checkpoint share model and hparams,
so `build(model, **hparams)` makes networks both load into. `load_discriminator` gives
the discriminator back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganrepro import __version__, models
from ganrepro.errors import ConfigError
from ganrepro.files import atomic_write

# The discriminator of the networks snapshot format 2 holds (models.SNAPSHOT_FORMAT).
DISCRIMINATOR_FORMAT = "ganrepro-discriminator-1"


def expected_state(model: str, hparams: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The discriminator's state_dict shapes of `model` at `hparams`, from a build on the
    meta device (nothing allocated)."""
    with torch.device("meta"):
        D = models.build(model, **hparams).D
    return {k: tuple(v.shape) for k, v in D.state_dict().items()}


def save_discriminator(path: str | Path, D: nn.Module, model: str, hparams: dict[str, Any], kimg: int,
                       source: dict[str, Any] | None = None) -> None:
    """Write a discriminator file atomically (see the module doc)."""
    payload = {"format": DISCRIMINATOR_FORMAT, "model": model, "hparams": dict(hparams), "kimg": int(kimg),
               "ganrepro_version": __version__,
               "state_dict": {k: v.detach().cpu() for k, v in D.state_dict().items()}}
    if source is not None:
        payload["source"] = source
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)          # a file object: the archive's inner name never depends on the temp name


def load_discriminator(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """(discriminator in eval mode on `device`, metadata) from a discriminator file, checked
    as a snapshot is before anything is built."""
    path = Path(path)
    payload = models.read_snapshot_file(path)
    if not isinstance(payload, dict) or payload.get("format") != DISCRIMINATOR_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        hint = " (a generator snapshot: load it with load_snapshot)" if found == models.SNAPSHOT_FORMAT else ""
        raise ConfigError(f"{path} is not a ganrepro discriminator file (format {DISCRIMINATOR_FORMAT} "
                          f"expected){hint}")
    name, hparams = models.check_payload(path, payload, expected_state)
    try:
        D = models.build(name, **hparams).D
        D.load_state_dict(payload["state_dict"])
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except (KeyError, TypeError, RuntimeError) as err:      # a damaged or hand-edited payload
        raise ConfigError(f"{path} is a damaged ganrepro discriminator file ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:200]})") from None
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return D.eval().requires_grad_(False).to(device), meta

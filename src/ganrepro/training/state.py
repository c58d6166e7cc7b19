"""The resumable training state, kept beside a run in `<run>/state/` (not a Snakemake
output, so Snakemake never deletes it before a re-run).

Each state file holds everything needed to continue bit for bit: G, D, G_ema, both
optimizers, the RNG states, the images seen (which also fixes the data-sampler
position), the path-length mean, and the options with their hash. Files are written to a
temporary name and renamed; the last few are kept, so a truncated or corrupt newest
file falls back to the one before it, with a warning.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganrepro.errors import GanreproError

log = logging.getLogger(__name__)
KEEP = 3


class ResumeError(GanreproError):
    """The saved state belongs to a different configuration."""


def state_path(folder: Path, nimg: int) -> Path:
    return folder / f"training-state-{nimg:010d}.pt"


def rng_states() -> dict[str, Any]:
    # Plain containers and tensors only, so the file loads with weights_only=True.
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        # Every step reseeds from (seed, rank, images seen), so these matter little; a resume on
        # a machine with fewer GPUs restores the devices it has.
        for device, state in enumerate(states["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, device)


def save_state(folder: Path, nimg: int, payload: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = state_path(folder, nimg)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save({**payload, "nimg": nimg, "rng": rng_states()}, tmp)
    os.replace(tmp, path)
    for old in sorted(folder.glob("training-state-*.pt"))[:-KEEP]:
        old.unlink()
    return path


def load_latest_state(folder: Path, options_hash: str, options: dict) -> dict[str, Any] | None:
    """The newest readable state, or None when there is none; ResumeError if it was made
    with other options. A damaged file is skipped with a warning."""
    for path in sorted(folder.glob("training-state-*.pt"), reverse=True):
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            payload["nimg"]
        except Exception as err:    # truncated, corrupt, or not ours
            log.warning("training state %s is unreadable (%s: %s); trying the previous one",
                        path, type(err).__name__, str(err)[:120])
            continue
        if payload.get("options_hash") != options_hash:
            changed = _diff(payload.get("options", {}), options)
            raise ResumeError(
                f"{folder} holds a run made with other options ({changed}); refusing to resume. "
                f"Restore those options, or delete {folder.parent} to start over")
        log.info("resuming from %s (kimg %.3f)", path, payload["nimg"] / 1000)
        return payload
    return None


def _diff(old: dict, new: dict, prefix: str = "") -> str:
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _diff(a, b, f"{prefix}{key}.")
            if inner:
                changes.append(inner)
        elif a != b:
            changes.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return "; ".join(changes)

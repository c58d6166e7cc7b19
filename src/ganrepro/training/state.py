"""The resumable training state, kept beside a run in `<run>/state/` (not a Snakemake
output, so Snakemake never deletes it before a re-run).

Each state file holds everything needed to continue bit for bit: G, D, G_ema, both
optimizers, the RNG states, the images seen (which also fixes the data-sampler
position), the path-length mean, the options with their hash, and the thread count and
software versions it was made under. It is written through `atomic_write`, and then its
sha256 beside it, `training-state-N.pt.sha256` (the `sha256sum` format). A state is
trusted only when its content matches that checksum: one flipped bit, a truncated file or
a missing checksum makes it invalid. The last few are kept, so an invalid newest state
falls back to the one before it, with a warning naming both; when states exist but none is
valid the run stops with an error rather than silently starting over.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ganrepro.errors import GanreproError
from ganrepro.files import atomic_write, atomic_write_text, sha256_file

log = logging.getLogger(__name__)
KEEP = 3
PATTERN = "training-state-*.pt"
# What every state holds; anything else is not a state of ours.
REQUIRED = {"G": dict, "D": dict, "G_ema": dict, "opt_G": dict, "opt_D": dict, "nimg": int, "steps": int,
            "pl_mean": torch.Tensor, "rng": dict, "options_hash": str, "options": dict}
_DIGEST = re.compile(r"([0-9a-f]{64})  (\S+)\n?")


class ResumeError(GanreproError):
    """The saved state belongs to a different configuration, or none of the states is valid."""


def state_path(folder: Path, nimg: int) -> Path:
    return folder / f"training-state-{nimg:010d}.pt"


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def states(folder: Path) -> list[Path]:
    """The state files in `folder`, oldest first."""
    return sorted(folder.glob(PATTERN))


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
    """Write the state of `nimg` images seen and then its checksum; keep the newest KEEP."""
    path = state_path(folder, nimg)
    with atomic_write(path) as tmp:
        torch.save({**payload, "nimg": nimg, "rng": rng_states()}, tmp)
        digest = sha256_file(tmp)
    # Killed between the two renames, the state has no (or an old) checksum: it is then
    # invalid, and the resume falls back to the state before it.
    atomic_write_text(checksum_path(path), f"{digest}  {path.name}\n")
    for old in states(folder)[:-KEEP]:
        old.unlink()
        checksum_path(old).unlink(missing_ok=True)
    for orphan in folder.glob(PATTERN + ".sha256"):
        if not orphan.with_suffix("").exists():
            orphan.unlink()
    return path


def discard_states(folder: Path) -> int:
    """Remove every state and checksum in `folder` (an explicit restart); the count of states."""
    found = states(folder)
    for path in found:
        path.unlink()
    for path in folder.glob(PATTERN + ".sha256"):
        path.unlink()
    return len(found)


def verify(path: Path) -> str | None:
    """Why the state file `path` cannot be trusted, or None when its checksum matches."""
    sidecar = checksum_path(path)
    try:
        text = sidecar.read_text(errors="replace") if sidecar.stat().st_size < 4096 else ""
    except FileNotFoundError:
        return f"it has no checksum file {sidecar.name}, so it cannot be verified"
    except OSError as err:
        return f"its checksum file {sidecar.name} cannot be read ({err.strerror or err})"
    match = _DIGEST.fullmatch(text)
    if not match or match.group(2) != path.name:
        return f"its checksum file {sidecar.name} is not a sha256 line for {path.name}"
    try:
        actual = sha256_file(path)
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"
    if actual != match.group(1):
        return f"its content does not match the sha256 in {sidecar.name} (damaged or changed)"
    return None


def _read(path: Path, check: Callable[[dict], str | None] | None) -> tuple[dict | None, str | None]:
    problem = verify(path)
    if problem:
        return None, problem
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:    # checksum fine but not a plain-data torch file: forged, or not ours
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        return None, f"it is not a plain-data torch file ({type(err).__name__}: {first})"
    if not isinstance(payload, dict):
        return None, f"it holds a {type(payload).__name__}, not a training state"
    wrong = [k for k, kind in REQUIRED.items() if not isinstance(payload.get(k), kind)]
    if wrong:
        return None, f"it is not a training state (missing or wrong: {', '.join(wrong)})"
    if state_path(path.parent, payload["nimg"]) != path:
        return None, f"it says it holds {payload['nimg']} images seen, not what its name says"
    problem = check(payload) if check else None
    return (None, problem) if problem else (payload, None)


def load_latest_state(folder: Path, options_hash: str, options: dict,
                      check: Callable[[dict], str | None] | None = None) -> dict[str, Any] | None:
    """The newest valid state, or None when there is no state at all. An invalid one (see
    `verify`, or one `check` finds a problem with) is skipped with a warning; ResumeError if
    the newest valid one was made with other options, or if none is valid."""
    found = states(folder)
    damaged: list[tuple[Path, str]] = []
    for path in reversed(found):
        payload, problem = _read(path, check)
        if problem:
            log.warning("training state %s is unreadable: %s; trying the previous one", path, problem)
            damaged.append((path, problem))
            continue
        if payload.get("options_hash") != options_hash:
            changed = _diff(payload.get("options", {}), options)
            raise ResumeError(
                f"{folder} holds a run made with other options ({changed}); refusing to resume. "
                f"Restore those options, or delete {folder.parent} (or train with --restart) to start over")
        if damaged:
            log.warning("resuming from %s instead of the invalid newer %s", path,
                        ", ".join(str(p) for p, _ in damaged))
        log.info("resuming from %s (kimg %.3f)", path, payload["nimg"] / 1000)
        return payload
    if damaged:
        newest, problem = damaged[0]
        raise ResumeError(
            f"{folder}: none of its {len(found)} training states is valid (the newest, {newest.name}: "
            f"{problem}); refusing to start over from kimg 0. Restore a valid state, or run "
            f"`ganrepro train` again with --restart to start this run over")
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

"""Where a process computes: the one reading of a device string, the GPU claims that keep
jobs sharing a workstation on GPUs of their own, and peak memory.

Device strings (`--device`, `train.device`, `metrics.device`): `auto` (a GPU when there is
one, else the CPU), `cpu`, `cuda` (a GPU, refused when there is none) or `cuda:N` (that
GPU, used as given).

GPU claims. `snakemake --cores all --resources gpu=N` runs up to N jobs that each declare
`gpu=1` at once, but Snakemake gives a job no device number (snakemake/snakemake#281), so
every job would pick cuda:0. Instead each process that wants "a GPU" (`auto` or `cuda`)
claims one: it takes an exclusive, non-blocking flock on a lock file named after the
device's UUID and keeps it until it exits. The kernel drops the lock when the process
ends, however it ends (SIGKILL included), so no stale claim survives a crash. Naming the
file after the UUID, not the index, keeps jobs with different CUDA_VISIBLE_DEVICES
(SLURM's) from colliding. A single visible GPU needs no claim.

torch is imported inside the functions that need it, so a claim alone stays cheap.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Sequence

from ganrepro import layout
from ganrepro.errors import ConfigError, GanreproError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
LOCK_DIR_ENV = "GANREPRO_GPU_LOCKS"
_DEVICE = re.compile(r"auto|cpu|cuda(?::(\d+))?")


def resolve(choice: str, option: str = "--device") -> "torch.device":
    """The torch device `choice` names (see the module doc); `auto` and `cuda` get a GPU this
    process has claimed. A choice that is malformed or names a GPU that is not there is a
    ConfigError that names `option`, the option or config key it came from."""
    import torch

    m = _DEVICE.fullmatch(str(choice))
    if not m:
        raise ConfigError(f"{option} {choice!r}: use auto, cpu, cuda or cuda:N")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if choice.startswith("cuda"):
        if count == 0:
            raise ConfigError(f"{option} {choice}: no CUDA device is available here; use {option} auto or cpu")
        if m[1] is not None:
            if int(m[1]) >= count:
                raise ConfigError(f"{option} {choice}: there are {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
            return torch.device(choice)
    if choice == "cpu" or count == 0:
        return torch.device("cpu")
    return process_device()


# ---------------------------------------------------------------------------- GPU claims

def choose_device(devices: Sequence[str], taken: Collection[str]) -> int:
    """Index (as this process numbers its visible devices) of the first device in
    `devices` (their UUIDs) that no other process has claimed."""
    for index, uuid in enumerate(devices):
        if uuid not in taken:
            return index
    raise GanreproError(
        f"all {len(devices)} visible GPUs are in use by other ganrepro processes (their claims are in "
        f"{lock_dir()}); run at most that many GPU jobs at once (snakemake --resources gpu={len(devices)})")


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or layout.gpu_locks())


@dataclass
class Claim:
    index: int
    uuid: str
    fd: int                 # open for as long as the process lives: closing it frees the GPU


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())     # for a person looking: who holds it
    return fd


def claim_device(devices: Sequence[str], folder: Path | None = None) -> Claim:
    """Claim the first free device of `devices` (UUIDs); GanreproError if all are taken."""
    folder = folder or lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    held, taken = {}, set()
    for uuid in devices:
        fd = _try_lock(folder / f"gpu-{uuid}.lock")
        if fd is None:
            taken.add(uuid)
        else:
            held[uuid] = fd
    index = choose_device(devices, taken)      # raises only when nothing was free (held is empty)
    for uuid, fd in held.items():              # keep the chosen lock, give the others back
        if uuid != devices[index]:
            os.close(fd)
    return Claim(index, devices[index], held[devices[index]])


_claim: Claim | None = None


def process_device() -> "torch.device":
    """The CUDA device this process uses for 'auto'/'cuda': the only visible one, or the
    one it claimed (once per process; kept until the process exits)."""
    import torch

    global _claim
    count = torch.cuda.device_count()
    if count <= 1:
        return torch.device("cuda", 0)
    if _claim is None:
        uuids = [str(torch.cuda.get_device_properties(i).uuid) for i in range(count)]
        _claim = claim_device(uuids)
        log.info("using GPU %d of %d (%s), claimed in %s", _claim.index, count, _claim.uuid, lock_dir())
    return torch.device("cuda", _claim.index)


# ---------------------------------------------------------------------------- peak memory

def reset_peak_memory(device: "torch.device") -> None:
    """Start a new peak-memory count on a GPU (the CPU's peak cannot be reset)."""
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: "torch.device", reset: bool = False) -> float:
    """Peak memory in MiB: on a GPU what torch allocated there since the last reset (a new
    count starts after reading when `reset`); on the CPU the process's peak resident set."""
    import torch

    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 20
        if reset:
            torch.cuda.reset_peak_memory_stats(device)
        return peak
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

"""One GPU per process when several jobs share a workstation.

`snakemake --cores all --resources gpu=N` runs up to N jobs that each declare `gpu=1`
at once, but Snakemake gives a job no device number (snakemake/snakemake#281), so every
job would pick cuda:0. Instead each process that wants "a GPU" claims one: it takes an
exclusive, non-blocking flock on a lock file named after the device's UUID and keeps it
until it exits. The kernel drops the lock when the process ends, however it ends
(SIGKILL included), so no stale claim survives a crash. Naming the file after the UUID,
not the index, keeps jobs with different CUDA_VISIBLE_DEVICES (SLURM's) from colliding.

An explicit `cuda:N` is used as given, and a single visible GPU needs no claim.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Sequence

from ganrepro.errors import GanreproError

log = logging.getLogger(__name__)
LOCK_DIR_ENV = "GANREPRO_GPU_LOCKS"
DEFAULT_LOCK_DIR = "results/.gpu-locks"


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
    return Path(os.environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)


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


def process_device():
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


def resolve(device: str) -> str:
    """A metrics --device: 'auto' -> a claimed GPU or cpu; 'cuda' -> a claimed GPU; others as given."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return str(process_device())
    return "cpu" if device == "auto" else device

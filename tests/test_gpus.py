"""One GPU per process on a shared workstation: the choice, and the claims behind it.

No GPU is needed: devices are named by made-up UUIDs, and the claims are real flocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import watchdog, wait_for_line
from ganrepro.devices import choose_device, claim_device
from ganrepro.errors import GanreproError

GPUS = ["GPU-aaaa", "GPU-bbbb", "GPU-cccc"]


def test_the_first_device_no_other_process_claimed_is_chosen():
    assert choose_device(GPUS, set()) == 0
    assert choose_device(GPUS, {"GPU-aaaa"}) == 1
    assert choose_device(GPUS, {"GPU-aaaa", "GPU-bbbb"}) == 2
    assert choose_device(GPUS, {"GPU-bbbb"}) == 0
    # Indices are this process's (after CUDA_VISIBLE_DEVICES); claims are by UUID, so a job
    # that sees other devices is not blocked by a claim on a GPU it cannot see.
    assert choose_device(["GPU-dddd"], {"GPU-aaaa"}) == 0


def test_all_devices_claimed_is_one_sentence_with_what_to_do():
    with pytest.raises(GanreproError, match=r"^all 3 visible GPUs are in use by other ganrepro processes .*"
                                            r"run at most that many GPU jobs at once \(snakemake --resources gpu=3\)$"):
        choose_device(GPUS, set(GPUS))


def test_claims_give_each_holder_its_own_device_until_it_lets_go(tmp_path):
    first = claim_device(GPUS, tmp_path)
    second = claim_device(GPUS, tmp_path)
    third = claim_device(GPUS, tmp_path)
    assert [c.index for c in (first, second, third)] == [0, 1, 2]
    with pytest.raises(GanreproError, match="all 3 visible GPUs are in use"):
        claim_device(GPUS, tmp_path)
    os.close(second.fd)                              # its process ended
    assert claim_device(GPUS, tmp_path).index == 1
    assert (tmp_path / "gpu-GPU-aaaa.lock").read_text() == f"{os.getpid()}\n"


HOLD = """
import sys
from pathlib import Path
from ganrepro.devices import claim_device
claim = claim_device({gpus!r}, Path({folder!r}))
print("claimed", claim.index, flush=True)
sys.stdin.read()                                     # hold the claim until killed
"""


def test_a_killed_job_frees_its_device(tmp_path):
    job = subprocess.Popen([sys.executable, "-c", HOLD.format(gpus=GPUS[:2], folder=str(tmp_path))],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert wait_for_line(job, r"claimed (\d)", []).group(1) == "0"
        mine = claim_device(GPUS[:2], tmp_path)
        assert mine.index == 1                       # the other job's GPU is skipped
        with pytest.raises(GanreproError):
            claim_device(GPUS[:2], tmp_path)
        job.send_signal(signal.SIGKILL)              # no clean-up runs: the kernel drops the lock
        with watchdog(job):
            job.wait()
        assert claim_device(GPUS[:2], tmp_path).index == 0
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()


def test_every_device_string_is_read_one_way(monkeypatch):
    """devices.resolve: the one reading of --device / train.device / metrics.device, with
    the option named in its errors (CUDA simulated where this machine has none)."""
    import torch

    from ganrepro.devices import resolve
    from ganrepro.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve("auto") == torch.device("cpu") and resolve("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"^--device 'tpu': use auto, cpu, cuda or cuda:N$"):
        resolve("tpu")
    with pytest.raises(ConfigError, match=r"^train\.device cuda: no CUDA device is available here; "
                                          r"use train\.device auto or cpu$"):
        resolve("cuda", "train.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve("auto") == resolve("cuda") == torch.device("cuda", 0)      # one GPU: no claim needed
    assert resolve("cuda:0") == torch.device("cuda", 0) and resolve("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"^--device cuda:1: there are 1 CUDA device\(s\), cuda:0 to cuda:0$"):
        resolve("cuda:1")

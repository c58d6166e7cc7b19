"""The throughput stage: every model's training step timed alone on one device.

Its numbers decide the report's attention-cost claim (`ganrepro bench throughput`, rule
bench_throughput), so they are never read from the training jobs, which share the machine
with each other. The timing helpers here also serve the benchmark suite (ganrepro.bench).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganrepro.files import atomic_write_text
from ganrepro.machine import cpu_name
from ganrepro.training.distributed import Context
from ganrepro.training.loop import Trainer


def device_line() -> str:
    """'device: CPU, cores, GPU; versions and torch threads': the machine a timing ran on."""
    cpu = cpu_name()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"device: {cpu}, {cores} cores usable, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, torch threads {torch.get_num_threads()}")


def sync(device: str) -> None:
    """Wait for the GPU's queued work (a timer must not stop before it ends); no-op on a CPU."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], steps: int, device: str, warmup: bool = True) -> float:
    """Seconds per call of fn (after one untimed warm-up call unless warmup=False)."""
    if warmup:
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / steps


def step_functions(trainer: Trainer, batch: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """(main step, R1 step) of a Trainer on one fixed batch of its dataset's images: the
    first with the lazy regularizers not due, the second with them due."""
    reals = trainer.fixed_batch(batch)
    acc = trainer.accumulators()

    def main_step() -> None:
        trainer.timing_step(reals, batch, acc, regularize=False)

    def r1_step() -> None:
        trainer.timing_step(reals, batch, acc, regularize=True)
    return main_step, r1_step


def step_seconds(trainer: Trainer, main_step: Callable[[], None], r1_step: Callable[[], None],
                 steps: int) -> float:
    """Seconds of one training step: `steps` main steps and one R1 step timed, the R1
    step's extra cost amortized over its interval."""
    main = timed(main_step, steps, trainer.device.type, warmup=False)
    with_r1 = timed(r1_step, 1, trainer.device.type, warmup=False)
    return main + max(with_r1 - main, 0.0) / trainer.t["r1_interval"]


def throughput(cfg: dict, dataset_dir: str | Path, rounds: int, steps: int) -> dict:
    """Each model's training step timed alone on one device, the models interleaved
    (A, B, C, A, B, C, ...) so that the machine's load changes fall on all of them alike.
    Returns per model the seconds per step of every round and the median img/s."""
    cfg = {**cfg, "train": {**cfg["train"], "num_workers": 0}}
    with tempfile.TemporaryDirectory() as tmp:
        trainers, steps_of = {}, {}
        for model in cfg["models"]:
            torch.manual_seed(0)
            trainers[model] = Trainer(cfg, Path(dataset_dir), model, Path(tmp) / model, Context(), seed=0)
            batch = trainers[model].t["batch_size"]      # the dataset's own, where it sets one
            steps_of[model] = step_functions(trainers[model], batch)
            for fn in steps_of[model]:                # warm-up, untimed
                fn()
        seconds: dict[str, list[float]] = {m: [] for m in trainers}
        for _ in range(rounds):
            for model, trainer in trainers.items():
                seconds[model].append(step_seconds(trainer, *steps_of[model], steps))
        device = next(iter(trainers.values())).device
    return {"device": device_line().removeprefix("device: "), "torch_device": str(device), "batch": batch, "rounds": rounds,
            "steps_per_round": steps, "order": list(trainers),
            "models": {m: {"seconds": s, "img_per_sec": batch / float(np.median(s))} for m, s in seconds.items()}}


def write_throughput(cfg: dict, dataset: str, dataset_dir: str | Path, rounds: int, steps: int,
                     out: str | Path) -> dict:
    """Measure the configured models on the prepared dataset (see `throughput`) and write
    the record, named after `dataset`, as JSON to `out` (results/throughput/{dataset}.json
    in the pipeline); returns the record."""
    record = throughput(cfg, dataset_dir, rounds, steps)
    record["dataset"] = dataset
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    return record

"""Benchmarks (`ganrepro bench ...`): throughput on the current machine, with its name.

Numbers from here go in the README together with the device line this prints; tests
never assert on wall-clock time.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch


def device_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"device: {cpu}, {cores} cores usable, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, torch threads {torch.get_num_threads()}")


def bench_data(num_images: int, resolution: int, loader_resolution: int,
               batch_size: int, loader_images: int = 4096) -> Iterator[str]:
    from ganrepro import config, data
    from ganrepro.data.loader import ImageDataset

    yield device_line()
    with tempfile.TemporaryDirectory() as tmp:
        spec = config.resolve_dataset("bench", {"source": "shapes", "resolution": resolution,
                                                "num_images": num_images})
        t0 = time.perf_counter()
        data.prepare("bench", spec, Path(tmp) / "shapes", cache_dir=tmp)
        seconds = time.perf_counter() - t0
        yield (f"shapes generation: {num_images} images at {resolution}x{resolution} in "
               f"{seconds:.1f} s = {num_images / seconds:,.0f} img/s (one process, written to disk)")

        n = loader_images
        spec = config.resolve_dataset("bench", {"source": "shapes", "resolution": loader_resolution,
                                                "num_images": n})
        data.prepare("bench64", spec, Path(tmp) / "loader", cache_dir=tmp)
        dataset = ImageDataset(Path(tmp) / "loader", xflip=True)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                             num_workers=0, drop_last=True,
                                             generator=torch.Generator().manual_seed(0))
        seen, t0 = 0, time.perf_counter()
        for _ in range(3):   # three passes over the mirrored set
            for batch in loader:
                seen += batch.shape[0]
        seconds = time.perf_counter() - t0
        yield (f"loader: {seen} images at {loader_resolution}x{loader_resolution}, batch {batch_size}, "
               f"shuffled, x-flip, num_workers=0: {seen / seconds:,.0f} img/s")

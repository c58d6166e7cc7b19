"""Progress a person can follow in a log file.

A tqdm bar turns itself off when its output is not a terminal (a Snakemake or SLURM log),
so long loops also write log lines: one per group of batches, with the count, the rate
and the time left. On a terminal the bar is drawn too, and log lines go above it.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable, Iterator, Sized

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

GROUPS = 10            # log lines per pass (plus one at the end)


def duration(seconds: float) -> str:
    """3725 -> '1:02:05', 65 -> '1:05': hours only when there are some."""
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


def logged(batches: Iterable[Sized], total: int, desc: str, log: logging.Logger,
           unit: str = "images") -> Iterator:
    """Yield `batches` unchanged, logging `desc: done/total unit (rate, ETA)` after every
    tenth of `total` items and after the last batch, with a tqdm bar on a terminal."""
    step = max(1, -(-total // GROUPS))
    done, next_line, start = 0, step, time.perf_counter()
    with tqdm(total=total, desc=desc, unit=unit[:3], disable=None, leave=False) as bar, logging_redirect_tqdm():
        for batch in batches:
            yield batch
            done += len(batch)
            bar.update(len(batch))
            if done >= next_line or done >= total:
                seconds = time.perf_counter() - start
                rate = done / seconds if seconds > 0 else float("inf")
                eta = duration((total - done) / rate) if rate > 0 else "?"
                log.info("%s: %d/%d %s (%.1f %s/s, ETA %s)", desc, done, total, unit, rate, unit, eta)
                next_line = (done // step + 1) * step

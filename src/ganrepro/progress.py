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


def _number(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def tick_line(model: str, r: dict, total_kimg: float) -> str:
    """A training tick's log line from its stats.jsonl record `r`, with the time left at
    this tick's speed."""
    left = total_kimg - r["kimg"]
    eta = duration(left * r["sec_per_kimg"]) if r["sec_per_kimg"] is not None else "?"
    regs = "".join(f", {name} {_number(r[key], '.3g')}" for name, key in (("R1", "r1"), ("PL", "pl"))
                   if r[key] is not None)
    return (f"{model} kimg {r['kimg']:.3f}/{total_kimg:g}: {_number(r['img_per_sec'], '.1f')} img/s, "
            f"{_number(r['sec_per_kimg'], '.1f')} sec/kimg, loss G {_number(r['loss_G'], '.4f')} "
            f"D {_number(r['loss_D'], '.4f')}{regs}, ETA {eta}")

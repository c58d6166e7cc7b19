"""Progress lines for log files: one per tenth of a pass, with the count, rate and ETA."""

from __future__ import annotations

import logging
import re

from ganrepro.progress import duration, logged


def test_durations_read_as_clock_times():
    assert [duration(s) for s in (0, 5.4, 65, 3599.6, 3725, 90061)] == ["0:00", "0:05", "1:05", "1:00:00",
                                                                       "1:02:05", "25:01:01"]


def test_a_pass_logs_each_tenth_and_the_end_and_yields_its_batches_unchanged(caplog):
    batches = [list(range(8))] * 12 + [list(range(4))]           # 100 items, the last batch short
    with caplog.at_level(logging.INFO):
        out = list(logged(iter(batches), 100, "features toy", logging.getLogger("ganrepro.test")))
    assert out == batches
    lines = [r.getMessage() for r in caplog.records]
    counts = [int(re.match(r"features toy: (\d+)/100 images \(\d+\.\d images/s, ETA (\d+:)?\d+:\d\d\)$", line)[1])
              for line in lines]
    assert counts == [16, 24, 32, 40, 56, 64, 72, 80, 96, 100]   # the first batch past each tenth, and the end
    assert lines[-1].endswith("ETA 0:00)")

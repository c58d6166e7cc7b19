"""Running a `ganrepro` command on a hostile input, bounded and observed.

`run_bounded` starts the real command line in a child process with its address space
capped at what the package's imports take plus `extra_gib` (RLIMIT_AS) and its CPU time
capped (RLIMIT_CPU, a bound on work that does not depend on wall-clock time or load),
then reports the exit status, the output and the child's own peak resident memory.
`assert_refused` checks what every hostile case must show: one `Error:` line that says
what is wrong, the exit status, no traceback or crash, no marker file from a payload,
and memory within the bound.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
GIB = 1 << 30
CPU_SECONDS = 120           # far above any honest refusal; only a runaway reaches it

# What a command may import before it reads anything; the bounds are counted above it.
_IMPORTS = ("import torch, numpy, PIL.Image, yaml, click; import ganrepro.cli, ganrepro.models, "
            "ganrepro.checkpoints.released, ganrepro.data.store, ganrepro.data.folder, ganrepro.metrics.inception, "
            "ganrepro.training.loop, ganrepro.sampling")
_ENV = {"MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


@functools.lru_cache(maxsize=1)
def baseline() -> tuple[int, int]:
    """(peak address space, peak resident bytes) of a child that only imports the package."""
    code = (f"{_IMPORTS}\nimport pathlib\nfor l in pathlib.Path('/proc/self/status').read_text().splitlines():\n"
            "    if l.startswith(('VmPeak:', 'VmHWM:')): print(int(l.split()[1]) * 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **_ENV})
    vm, rss = (int(x) for x in out.stdout.split())
    return vm, rss


@dataclasses.dataclass
class Result:
    rc: int                     # exit status, or -signal
    stdout: str
    stderr: str
    peak_rss: int               # bytes
    rss_above_imports: int      # bytes above what the imports alone take
    cpu_seconds: float = 0.0    # user + system time of the child (reported, never asserted)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("Error:")]


# A fresh interpreter between the test process and the command. A forked child starts with its
# parent's resident set as its high-water mark, and exec keeps that mark, so a command forked
# straight from pytest (a gigabyte once torch is loaded) would report pytest's memory as its
# peak. The launcher forks the command from its own few megabytes, applies the bounds in that
# child only, and writes the child's exit status, peak resident bytes and CPU seconds to REPORT.
_LAUNCHER = """
import json, os, resource, sys
report, limit, cpu, *cmd = sys.argv[1:]
pid = os.fork()
if pid == 0:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.execv(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as f:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime], f)
"""


def run_bounded(args: list[str], *, cwd: str | Path | None = None, env: dict | None = None,
                extra_gib: float = 1.0, cpu_seconds: int = CPU_SECONDS, stdin: bytes | None = None) -> Result:
    """Run `ganrepro ARGS` under the bounds described in the module doc."""
    vm, rss = baseline()
    limit = vm + int(extra_gib * GIB)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "usage.json"
        subprocess.run([sys.executable, "-c", _LAUNCHER, str(report), str(limit), str(cpu_seconds),
                        str(BIN / "ganrepro"), *map(str, args)], cwd=cwd, stdout=out, stderr=err,
                       input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                       env={**os.environ, **_ENV, **(env or {})}, check=True)
        rc, peak, cpu = json.loads(report.read_text())
        out.seek(0)
        err.seek(0)
        result = Result(rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                        peak, peak - rss, cpu)
        _LOG.append((" ".join(map(str, args))[:160], result.rc, result.peak_rss, result.cpu_seconds))
        return result


# (command, rc, peak resident bytes, CPU seconds) of every bounded run in this session; the
# suite writes it out when GANREPRO_HOSTILE_LOG names a file (see conftest.py).
_LOG: list[tuple[str, int, int, float]] = []


def assert_refused(result: Result, pattern: str, *, rc: int = 1, markers: tuple[Path, ...] = (),
                   extra_gib: float = 1.0) -> str:
    """One `Error:` line matching `pattern` (a regex, searched), exit status `rc`, no
    traceback or crash, none of `markers` created, and resident memory within `extra_gib`
    of the imports'. Returns the error line."""
    context = f"rc={result.rc}\nstderr:\n{result.stderr[-3000:]}\nstdout:\n{result.stdout[-1000:]}"
    assert "Traceback" not in result.stderr and "Fatal Python error" not in result.stderr, context
    assert result.rc == rc, context
    lines = result.error_lines
    assert len(lines) == 1, context
    assert re.search(pattern, lines[0]), f"{lines[0]!r} does not match {pattern!r}"
    for marker in markers:
        assert not Path(marker).exists(), f"a payload ran: {marker} exists"
    assert result.rss_above_imports < extra_gib * GIB, \
        f"peak resident memory {result.peak_rss / GIB:.2f} GiB, {result.rss_above_imports / GIB:.2f} above the imports"
    return lines[0]

"""What machine and code produced a result: the CPU's name and the git commit."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_bytes() -> int:
    """The machine's physical memory in bytes (what a network's weights must fit in)."""
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def git_commit(where: str | Path = Path(__file__).parent) -> str | None:
    """`git rev-parse HEAD` of the ganrepro checkout that runs, with "-dirty" appended when
    tracked files differ from it (as `git describe --dirty` marks it), or None (an
    installed wheel)."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=where, timeout=10)
    try:
        out = git("rev-parse", "HEAD")
        if out.returncode != 0 or not out.stdout.strip():
            return None
        dirty = git("diff", "--quiet", "HEAD", "--").returncode == 1
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty else "")


def short_commit(commit: str, length: int = 12) -> str:
    """The commit's first `length` characters, keeping git_commit's "-dirty" mark."""
    return commit[:length] + ("-dirty" if commit.endswith("-dirty") else "")

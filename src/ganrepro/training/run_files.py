"""The files of one run folder, results/runs/{dataset}/{model}/:

    snapshot-{kimg:06d}.pt     inference snapshots (Snakemake outputs)
    grid-{kimg:06d}.png        fixed-latent sample grid at that snapshot
    attention-{kimg:06d}.png   GANformer: where a few latents attend
    stats.jsonl, training_options.json
    state/                     training states and the kept snapshots (never Snakemake outputs)

Snapshots are first written to state/snapshots/ and then linked into the run folder, so
one Snakemake deleted before a re-run comes back from there after the resume.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np
import torch

from ganrepro import __version__
from ganrepro.files import atomic_write, atomic_write_text, disk_full_error, is_disk_full
from ganrepro.machine import git_commit


def continuity() -> dict:
    """What a run's numbers depend on besides its options: the software versions and the
    thread count (a CPU run with another one sums in another order). Recorded in every
    state; a resume under different ones continues validly, but not bit for bit."""
    return {"versions": {"ganrepro": __version__, "torch": str(torch.__version__), "numpy": str(np.__version__),
                         "python": str(platform.python_version())},
            "threads": {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}}


def continuity_changes(saved: dict, now: dict) -> list[str]:
    """What differs between two `continuity()` records, as `name: old -> new` (the
    OMP_NUM_THREADS variable only through the thread count it sets); anything not recorded
    in `saved` counts as changed."""
    def part(record, key) -> dict:
        value = record.get(key) if isinstance(record, dict) else None
        return value if isinstance(value, dict) else {}

    changes = []
    old_versions, new_versions = part(saved, "versions"), part(now, "versions")
    for name in sorted(set(old_versions) | set(new_versions)):
        old, new = old_versions.get(name, "<unrecorded>"), new_versions.get(name, "<unrecorded>")
        if old != new:
            changes.append(f"{name} {old} -> {new}")
    old_threads, new_threads = part(saved, "threads"), part(now, "threads")
    if old_threads.get("torch", "<unrecorded>") != new_threads.get("torch"):
        changes.append(f"threads {old_threads.get('torch', '<unrecorded>')} -> {new_threads.get('torch')} "
                       f"(OMP_NUM_THREADS {old_threads.get('OMP_NUM_THREADS')} -> {new_threads.get('OMP_NUM_THREADS')})")
    return changes


def environment() -> dict:
    commit = git_commit()
    return {**continuity(), "host": platform.node(), "git_commit": commit,
            "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


class RunFiles:
    def __init__(self, out: Path):
        self.out = out
        self.state = out / "state"
        self.kept = self.state / "snapshots"

    def snapshot(self, kimg: int) -> Path:
        return self.out / f"snapshot-{kimg:06d}.pt"

    def kept_snapshot(self, kimg: int) -> Path:
        return self.kept / f"snapshot-{kimg:06d}.pt"

    def grid(self, kimg: int) -> Path:
        return self.out / f"grid-{kimg:06d}.png"

    def attention(self, kimg: int) -> Path:
        return self.out / f"attention-{kimg:06d}.png"

    def last_snapshot(self) -> Path | None:
        found = sorted(self.out.glob("snapshot-*.pt"))
        return found[-1] if found else None

    def write_options(self, options: dict) -> None:
        atomic_write_text(self.out / "training_options.json", json.dumps(options, indent=2, default=str) + "\n")

    def append_stats(self, record: dict) -> None:
        """Append one line (a log, not replaced atomically: a line cut short by a kill or a
        full disk is dropped by trim_stats on resume)."""
        path = self.out / "stats.jsonl"
        try:
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as err:
            if is_disk_full(err, path):
                raise disk_full_error(path, err) from None
            raise

    def trim_stats(self, nimg: int) -> None:
        """Drop lines a killed run wrote after the state it resumes from."""
        path = self.out / "stats.jsonl"
        if path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["kimg"] * 1000 <= nimg + 1e-6:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    pass        # a line a killed run left half-written
            atomic_write_text(path, "".join(line + "\n" for line in kept))

    def publish(self, kimg: int, draw) -> None:
        """Link a kept snapshot into the run folder (atomically) and draw its pictures."""
        from ganrepro.models import load_snapshot

        src, dst = self.kept_snapshot(kimg), self.snapshot(kimg)
        with atomic_write(dst) as tmp:
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            G, _ = load_snapshot(src)
            draw(G, kimg)

    def discard(self) -> dict[str, int]:
        """An explicit restart: remove the training states, the kept and published snapshots,
        their pictures and the stats, so nothing of the old run looks like the new one's."""
        from ganrepro.training.state import discard_states

        states = discard_states(self.state) if self.state.exists() else 0
        snapshots = [*self.kept.glob("snapshot-*.pt"), *self.out.glob("snapshot-*.pt")]
        for path in [*snapshots, *self.out.glob("grid-*.png"), *self.out.glob("attention-*.png"),
                     self.out / "stats.jsonl"]:
            path.unlink(missing_ok=True)
        return {"states": states, "snapshots": len({p.name for p in snapshots})}

    def publish_kept(self, nimg: int, draw) -> None:
        """After a resume: bring back snapshots (and pictures) a deleted run folder lost."""
        for path in sorted(self.kept.glob("snapshot-*.pt")):
            kimg = int(path.stem.split("-")[1])
            if kimg * 1000 <= nimg and not self.snapshot(kimg).exists():
                self.publish(kimg, draw)

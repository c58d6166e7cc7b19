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

import torch

from ganrepro import __version__
from ganrepro.machine import git_commit


def environment() -> dict:
    commit = git_commit()
    return {"versions": {"ganrepro": __version__, "torch": torch.__version__,
                         "python": platform.python_version()},
            "host": platform.node(), "git_commit": commit,
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
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "training_options.json"
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(options, indent=2, default=str) + "\n")
        os.replace(tmp, path)

    def append_stats(self, record: dict) -> None:
        with open(self.out / "stats.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

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
            path.write_text("".join(line + "\n" for line in kept))

    def publish(self, kimg: int, draw) -> None:
        """Link a kept snapshot into the run folder (atomically) and draw its pictures."""
        src, dst = self.kept_snapshot(kimg), self.snapshot(kimg)
        tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        from ganrepro.models import load_snapshot

        G, _ = load_snapshot(src)
        draw(G, kimg)
        os.replace(tmp, dst)

    def publish_kept(self, nimg: int, draw) -> None:
        """After a resume: bring back snapshots (and pictures) a deleted run folder lost."""
        for path in sorted(self.kept.glob("snapshot-*.pt")):
            kimg = int(path.stem.split("-")[1])
            if kimg * 1000 <= nimg and not self.snapshot(kimg).exists():
                self.publish(kimg, draw)

"""A full disk is an ordinary error: every command that writes stops with one `Error:` line
naming the path and "no space left", leaves no temporary file, no `.partial` folder and no
output that looks complete, and the same command run again once there is space finishes
with the result a run on an ordinary disk gives.

The disks are real: small tmpfs mounts (CI runs as root). A disk is filled either by its
size (the command runs out of space part-way through a file) or by a filler file that
takes every byte (the first write fails); the space is freed by remounting it bigger or
by deleting the filler.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, ganrepro
from hostile import assert_refused, run_bounded
from ganrepro.settings import config
from ganrepro.data.store import DatasetWriter
from ganrepro.files import DiskFullError

FULL = r"no space left on the device"
LEFTOVERS = (".tmp-", ".partial-", ".old-")


class Tmpfs:
    """A tmpfs mounted on `path` for one test; unmounted in teardown."""

    def __init__(self, path: Path, size: str):
        self.path = path
        path.mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs for the full-disk cases ({done.stderr.strip() or done.returncode})")
        self.filler = path / "filler"

    def resize(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def fill(self) -> None:
        """Take every byte that is left with a filler file."""
        with open(self.filler, "ab", buffering=0) as f:
            try:
                while f.write(b"\0" * 4096):
                    pass
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
        assert os.statvfs(self.path).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()

    def leftovers(self) -> list[str]:
        """Names of temporary files and folders anywhere on the disk."""
        return [str(p.relative_to(self.path)) for p in self.path.rglob("*")
                if any(mark in p.name for mark in LEFTOVERS)]

    def unmount(self) -> None:
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the full-disk cases mount a tmpfs, which needs root (CI runs as root)")
    mounted: list[Tmpfs] = []

    def make(size: str, name: str = "disk") -> Tmpfs:
        disk = Tmpfs(tmp_path / name, size)
        mounted.append(disk)
        return disk

    yield make
    for disk in mounted:
        disk.unmount()


def shapes_spec(name: str, n: int, res: int) -> str:
    return json.dumps(config.resolve_dataset(name, {"source": "shapes", "resolution": res, "num_images": n}))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------- prepare

@pytest.mark.parametrize("how", ["runs-out-part-way", "already-full"])
def test_prepare_on_a_full_disk_leaves_nothing_and_the_rerun_equals_an_ordinary_one(tmpfs, tmp_path, how):
    spec = shapes_spec("shapes", 200, 32)              # 600 KB of images
    reference = tmp_path / "ordinary" / "shapes"
    ganrepro("data", "prepare", "shapes", "--spec", spec, "--out", str(reference))
    disk = tmpfs("64k" if how == "runs-out-part-way" else "4m")
    if how == "already-full":
        disk.fill()
    out = disk.path / "shapes"
    line = assert_refused(run_bounded(["data", "prepare", "shapes", "--spec", spec, "--out", out]), FULL)
    assert str(out) in line
    assert not out.exists() and disk.leftovers() == []
    assert sorted(p.name for p in disk.path.iterdir()) == (["filler"] if how == "already-full" else [])

    disk.free() if how == "already-full" else disk.resize("4m")
    ganrepro("data", "prepare", "shapes", "--spec", spec, "--out", str(out))
    assert tree_bytes(out) == tree_bytes(reference)
    assert disk.leftovers() == []


def test_dataset_store_keeps_the_first_error_when_closing_fails_too(tmpfs):
    """An error inside the block while buffered images wait for a disk that is full: closing
    the file fails as well, but the block's own error is the one raised, and the partial
    folder is gone."""
    disk = tmpfs("16k")
    out = disk.path / "toy"
    with pytest.raises(ValueError, match="image 3 is"):
        with DatasetWriter(out, 8, 3) as writer:
            disk.fill()
            for _ in range(3):
                writer.add(np.zeros((8, 8, 3), np.uint8))      # stays in the file's buffer
            writer.add(np.zeros((8, 8, 1), np.uint8))          # wrong channels
    assert not out.exists() and disk.leftovers() == []


def test_dataset_store_full_disk_is_one_error_naming_the_dataset(tmpfs):
    disk = tmpfs("16k")
    out = disk.path / "toy"
    with pytest.raises(DiskFullError, match=rf"^{re.escape(str(out))}: {FULL}"):
        with DatasetWriter(out, 32, 3) as writer:
            for _ in range(100):
                writer.add(np.full((32, 32, 3), 7, np.uint8))
            writer.finish({"name": "toy", "source": "shapes", "source_url": None, "source_sha256": None,
                           "source_size": None, "spec": {}, "preprocessing": {}})
    assert not out.exists() and disk.leftovers() == []


def test_export_png_on_a_full_disk_is_one_error(tmpfs, tmp_path):
    dataset = tmp_path / "shapes"
    ganrepro("data", "prepare", "shapes", "--spec", shapes_spec("shapes", 40, 16), "--out", str(dataset))
    disk = tmpfs("8k")
    assert_refused(run_bounded(["data", "export-png", dataset, "--out", disk.path / "png"]), FULL)
    assert disk.leftovers() == []


# ---------------------------------------------------------------------------- download

def test_download_that_fills_the_disk_keeps_its_part_and_resumes(tmpfs, server, tmp_path):
    body = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    url = server.serve("/big.tgz", body)
    disk = tmpfs("256k")
    dest = disk.path / "big.tgz"
    line = assert_refused(run_bounded(["download", url, "--out", dest]), FULL)
    part = disk.path / "big.tgz.part"
    assert str(part) in line and "resume" in line
    assert not dest.exists() and 0 < part.stat().st_size < len(body)
    kept = part.stat().st_size
    disk.resize("4m")
    ganrepro("download", url, "--out", str(dest))
    assert dest.read_bytes() == body and not part.exists()
    assert server.requests[-1][1] == f"bytes={kept}-"         # it went on from what was kept


# ---------------------------------------------------------------------------- metrics

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A ten-image dataset, a one-kimg snapshot and its real statistics on an ordinary disk."""
    root = tmp_path_factory.mktemp("metrics")
    ganrepro("data", "prepare", "tiny", "--spec", shapes_spec("tiny", 10, 8), "--out", str(root / "tiny"))
    import torch
    from ganrepro import models
    torch.manual_seed(0)
    nets = models.build("dcgan", resolution=8, z_dim=16, channel_base=64, channel_max=16)
    models.save_snapshot(root / "snapshot-000001.pt", nets.G, nets.name, nets.hparams, kimg=1)
    ganrepro("stats", "--data", str(root / "tiny"), "--out", str(root / "stats.npz"), "--device", "cpu")
    return root


def _npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_real_statistics_on_a_full_disk_then_the_rerun_equals_an_ordinary_one(tmpfs, tiny):
    disk = tmpfs("1m")                                    # the cache is 33 MB: it runs out part-way
    out = disk.path / "stats" / "clean-realall.npz"
    args = ["stats", "--data", tiny / "tiny", "--out", out, "--device", "cpu"]
    line = assert_refused(run_bounded(args, extra_gib=2.0), FULL, extra_gib=2.0)
    assert str(out) in line
    assert not out.exists() and disk.leftovers() == []
    disk.resize("64m")
    ganrepro(*map(str, args))
    got, want = _npz(out), _npz(tiny / "stats.npz")      # a .npz carries zip timestamps: compare contents
    assert got.keys() == want.keys()
    for k in want:
        assert np.array_equal(got[k], want[k]), k


def _evaluate(tiny: Path, out: Path, *extra) -> list:
    return ["evaluate", "--snapshot", tiny / "snapshot-000001.pt", "--dataset", "tiny", "--data", tiny / "tiny",
            "--metrics", "fid,kid", "--num-gen", "10", "--stats", tiny / "stats.npz", "--device", "cpu",
            "--out", out, *extra]


def _record(path: Path) -> dict:
    record = json.loads(path.read_text())
    record.pop("seconds")                                 # wall-clock time, the one field that varies
    return record


@pytest.fixture(scope="module")
def ordinary(tiny, tmp_path_factory):
    """The evaluation on an ordinary disk: its record and its images."""
    root = tmp_path_factory.mktemp("ordinary")
    ganrepro(*map(str, _evaluate(tiny, root / "m.json", "--save-images", root / "images")))
    return root


def test_evaluate_json_on_a_full_disk_then_the_rerun_equals_an_ordinary_one(tmpfs, tiny, ordinary):
    disk = tmpfs("16k")
    disk.fill()
    out = disk.path / "kimg000001.json"
    line = assert_refused(run_bounded(_evaluate(tiny, out), extra_gib=2.0), FULL, extra_gib=2.0)
    assert str(out) in line
    assert not out.exists() and disk.leftovers() == []
    disk.free()
    ganrepro(*map(str, _evaluate(tiny, out)))
    assert _record(out) == _record(ordinary / "m.json")


def test_evaluate_images_on_a_full_disk_then_the_rerun_equals_an_ordinary_one(tmpfs, tiny, ordinary, tmp_path):
    disk = tmpfs("8k")                                    # room for a few PNGs of the ten
    images = disk.path / "images"
    out = tmp_path / "full.json"
    line = assert_refused(run_bounded(_evaluate(tiny, out, "--save-images", images), extra_gib=2.0), FULL,
                          extra_gib=2.0)
    assert str(images) in line and not out.exists() and disk.leftovers() == []
    disk.resize("1m")
    ganrepro(*map(str, _evaluate(tiny, out, "--save-images", images)))
    assert tree_bytes(images) == tree_bytes(ordinary / "images")


# ---------------------------------------------------------------------------- train

TRAIN_CONFIG = {"datasets": {"toy": {"source": "shapes", "resolution": 8}}, "kimg": [0, 1],
                "hparams": {"dcgan": {"z_dim": 16, "channel_base": 64, "channel_max": 16}},
                "train": {"batch_size": 8, "tick_kimg": 0.5, "state_kimg": 0.25, "grid": 2,
                          "num_workers": 0, "r1_interval": 4}}


def _published(run: Path) -> dict[str, bytes]:
    """What a run publishes: snapshots and grids (the stats carry wall-clock times)."""
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.name.startswith(("snapshot-", "grid-"))}


def test_train_on_a_full_disk_then_the_rerun_equals_an_ordinary_run(tmpfs, tmp_path):
    (tmp_path / "config.yaml").write_text(json.dumps(TRAIN_CONFIG))
    toy = tmp_path / "toy"
    ganrepro("data", "prepare", "toy", "--spec", shapes_spec("toy", 200, 8), "--out", str(toy))

    def train(out: Path) -> list:
        return ["train", "--config", tmp_path / "config.yaml", "--dataset", "toy", "--model", "dcgan",
                "--data", toy, "--out", out]

    ganrepro(*map(str, train(tmp_path / "ordinary")))
    disk = tmpfs("200k")                                 # a state is 260 KB: the first one after kimg 0 fails
    run = disk.path / "run"
    assert_refused(run_bounded(train(run), extra_gib=2.0), FULL, extra_gib=2.0)
    assert disk.leftovers() == []
    disk.resize("16m")
    ganrepro(*map(str, train(run)))
    assert _published(run) == _published(tmp_path / "ordinary")
    assert disk.leftovers() == []


# ---------------------------------------------------------------------------- report

@pytest.fixture
def report_results(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_report import GOOD, make_config, make_run
    cfg = make_config()
    make_run(tmp_path / "results", cfg, GOOD)
    return ["--config-json", json.dumps(cfg), "--results", tmp_path / "results"]


@pytest.mark.parametrize("command", ["figures", "tables"])
def test_report_files_on_a_full_disk_then_the_rerun_equals_an_ordinary_one(tmpfs, tmp_path, report_results, command):
    extra = ["--published", REPO / "config" / "published.yaml"] if command == "tables" else []
    ordinary = tmp_path / "ordinary"
    ganrepro(command, *map(str, report_results + extra + ["--out", ordinary]))
    disk = tmpfs("64k")
    out = disk.path / command
    assert_refused(run_bounded([command, *report_results, *extra, "--out", out]), FULL)
    assert disk.leftovers() == []
    disk.resize("8m")
    ganrepro(command, *map(str, report_results + extra + ["--out", out]))
    assert tree_bytes(out) == tree_bytes(ordinary)


def test_render_on_a_full_disk_is_one_error(tmpfs, tmp_path, report_results):
    root = tmp_path / "results"
    published = REPO / "config" / "published.yaml"
    ganrepro("tables", *map(str, report_results + ["--published", published]))
    ganrepro("figures", *map(str, report_results))
    disk = tmpfs("1m")
    disk.fill()
    out = disk.path / "report"
    args = ["render", *report_results, "--published", published, "--template", REPO / "report" / "report.tex.j2",
            "--bib", REPO / "report" / "references.bib", "--tables", root / "tables", "--figures", root / "figures"]
    line = assert_refused(run_bounded([*args, "--out", out]), FULL)
    assert str(out / "report.tex") in line
    assert not (out / "report.tex").exists() and disk.leftovers() == []
    disk.free()
    ganrepro(*map(str, args + ["--out", out]))
    ordinary = tmp_path / "ordinary" / "report"          # as deep as `out`: the .tex links the figures relatively
    ganrepro(*map(str, args + ["--out", ordinary]))
    assert tree_bytes(out) == tree_bytes(ordinary)

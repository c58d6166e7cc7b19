"""Training: exact snapshots, exact resume, fallback, refusal, NaN stop, learning, DDP."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import BIN, REPO, SAFETY_TIMEOUT, ganrepro, png_bytes, wait_for_line, watchdog
from ganrepro import data, models, training
from ganrepro.settings import config
from ganrepro.training.state import ResumeError

pytestmark = pytest.mark.slow

TINY = {"mapping_layers": 2, "channel_base": 64, "channel_max": 16}
HPARAMS = {
    "stylegan2": {**TINY, "z_dim": 16, "w_dim": 16},
    "ganformer-simplex": {**TINY, "z_dim": 16, "w_dim": 16, "components": 4},
    "ganformer-duplex": {**TINY, "z_dim": 16, "w_dim": 16, "components": 4},
    "gan": {**TINY, "z_dim": 16, "w_dim": 16},
    "dcgan": {"z_dim": 16, "channel_base": 64, "channel_max": 16},
}


def make_config(tmp_path, kimg=(0, 1), **train) -> dict:
    raw = {"datasets": {"toy": {"source": "shapes", "resolution": 8}}, "kimg": list(kimg),
           "hparams": HPARAMS,
           "train": {"batch_size": 8, "tick_kimg": 0.5, "state_kimg": 0.25, "grid": 2,
                     "num_workers": 0, "r1_interval": 4, **train}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return config.resolve(raw)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "toy"
    data.prepare("toy", config.resolve_dataset("toy", {"source": "shapes", "resolution": 8, "num_images": 200}), out)
    return out


def final_state(run):
    newest = sorted((run / "state").glob("training-state-*.pt"))[-1]
    return torch.load(newest, weights_only=True)


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("model", list(HPARAMS))
def test_every_model_trains_with_snapshots_exactly_at_the_configured_kimg(toy, tmp_path, model, caplog):
    cfg = make_config(tmp_path, kimg=(0, 1))
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="ganrepro"):
        training.train(cfg, toy, model, run)
    assert sorted(p.name for p in run.glob("snapshot-*.pt")) == ["snapshot-000000.pt", "snapshot-000001.pt"]
    assert sorted(p.name for p in run.glob("grid-*.png")) == ["grid-000000.png", "grid-000001.png"]
    assert Image.open(run / "grid-000001.png").size == (16, 16)          # 2 x 2 tiles of 8 px
    if model.startswith("ganformer"):
        assert (run / "attention-000001.png").exists()
    G, meta = models.load_snapshot(run / "snapshot-000001.pt")
    assert meta["kimg"] == 1 and meta["model"] == model
    assert G(torch.randn(2, *G.z_shape)).shape == (2, 3, 8, 8)
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [s["kimg"] for s in stats] == [0.504, 1.0]                    # ticks of 0.5 kimg, batch 8
    assert all(s["img_per_sec"] > 0 and s["sec_per_kimg"] > 0 and np.isfinite(s["loss_G"]) for s in stats)
    # The log (what a Snakemake or SLURM log file shows) has one line per tick with the same numbers.
    ticks = [r.getMessage() for r in caplog.records if " sec/kimg" in r.getMessage()]
    assert len(ticks) == len(stats)
    for line, s in zip(ticks, stats):
        assert line.startswith(f"{model} kimg {s['kimg']:.3f}/1: {s['img_per_sec']:.1f} img/s, "
                               f"{s['sec_per_kimg']:.1f} sec/kimg, loss G {s['loss_G']:.4f} D {s['loss_D']:.4f}"), line
        assert re.search(r", ETA (\d+:)?\d+:\d\d$", line), line
    assert ticks[-1].endswith("ETA 0:00")
    options = json.loads((run / "training_options.json").read_text())
    assert options["model"] == model and options["resolved"]["device"] == "cpu"
    assert "torch" in options["versions"]
    state = final_state(run)
    assert state["nimg"] == 1000
    # G_ema is an average, not a copy of G.
    assert any(not torch.equal(state["G"][k], state["G_ema"][k]) for k in state["G"] if k.endswith("weight"))


def test_training_in_checkpoint_segments_equals_one_job(toy, tmp_path):
    """What the workflow's segment jobs do: the job of each checkpoint gets the kimg list up
    to it and resumes from the state the previous job left; the weights are bitwise those
    of one uninterrupted job."""
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    training.train(make_config(tmp_path, kimg=(1, 2), batch_size=32), toy, "ganformer-simplex", whole)
    for kimg in ((1,), (1, 2)):
        training.train(make_config(tmp_path, kimg=kimg, batch_size=32), toy, "ganformer-simplex", parts)
    a, b = final_state(whole), final_state(parts)
    assert a["nimg"] == b["nimg"] == 2000
    for net in ("G", "D", "G_ema"):
        assert_same_weights(a[net], b[net])
    assert sorted(p.name for p in parts.glob("snapshot-*.pt")) == ["snapshot-000001.pt", "snapshot-000002.pt"]


def _train_cli(cfg_path, toy, run, model="ganformer-duplex", **kw):
    # stderr (the log) joins stdout, so the test can wait on a line of it. A session of its
    # own, so that a signal can reach every process of the run, as SLURM's does.
    return subprocess.Popen([str(BIN / "ganrepro"), "train", "--config", str(cfg_path), "--dataset", "toy",
                             "--model", model, "--data", str(toy), "--out", str(run)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _stop_after_first_periodic_state(proc, signal_to) -> str:
    """Wait for the log line of the first state after kimg 0, call `signal_to(proc)`, return the whole log."""
    lines = []
    with watchdog(proc):
        wait_for_line(proc, r"kimg 0\.(?!000)\d+: training state saved", lines)
        signal_to(proc)
        lines += proc.stdout.readlines()
        proc.wait()
    assert proc.returncode != 0, "".join(lines)
    return "".join(lines)


def _finish(proc) -> str:
    with watchdog(proc):
        out, _ = proc.communicate()
    return out


@pytest.fixture(scope="module")
def straight(toy, tmp_path_factory):
    """The final state of an uninterrupted ganformer-duplex run to kimg 1."""
    tmp = tmp_path_factory.mktemp("straight")
    training.train(make_config(tmp, kimg=(0, 1)), toy, "ganformer-duplex", tmp / "run")
    return final_state(tmp / "run")


@pytest.mark.parametrize("sig, workers", [(signal.SIGTERM, 0), (signal.SIGKILL, 0), (signal.SIGTERM, 2)],
                         ids=["SIGTERM", "SIGKILL", "SIGTERM-2-workers"])
def test_interrupted_run_resumes_to_bitwise_identical_weights(toy, tmp_path, straight, sig, workers):
    # The signal goes to every process of the run (the data-loader workers too), as SLURM sends it.
    make_config(tmp_path, kimg=(0, 1), num_workers=workers)
    run = tmp_path / "interrupted"
    out = _stop_after_first_periodic_state(_train_cli(tmp_path / "config.yaml", toy, run),
                                           lambda proc: os.killpg(proc.pid, sig))
    if sig == signal.SIGTERM:
        assert "stopped by signal 15" in out and "run the same command again to resume" in out
        assert "Traceback" not in out and "killed by signal" not in out
    assert not (run / "snapshot-000001.pt").exists()
    # Snakemake deletes a failed job's outputs; the kept copy brings snapshot 0 back.
    (run / "snapshot-000000.pt").unlink()
    proc = _train_cli(tmp_path / "config.yaml", toy, run)
    out = _finish(proc)
    assert proc.returncode == 0, out
    assert "resuming from" in out
    assert_same_weights(straight["G_ema"], final_state(run)["G_ema"])
    assert (run / "snapshot-000000.pt").exists() and (run / "grid-000000.png").exists()
    kimgs = [json.loads(line)["kimg"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert kimgs == sorted(set(kimgs))          # no duplicated ticks after the resume


def test_corrupt_newest_state_falls_back_to_the_previous_one(toy, tmp_path, caplog):
    cfg = make_config(tmp_path, kimg=(0, 1))
    straight, run = tmp_path / "straight", tmp_path / "run"
    training.train(cfg, toy, "stylegan2", straight)
    training.train({**cfg, "kimg": [0]}, toy, "stylegan2", run)
    training.train({**cfg, "kimg": [0, 1]}, toy, "stylegan2", run)   # a longer schedule resumes
    assert_same_weights(final_state(straight)["G_ema"], final_state(run)["G_ema"])
    states = sorted((run / "state").glob("training-state-*.pt"))
    states[-1].write_bytes(states[-1].read_bytes()[:1000])          # truncate the newest
    training.train({**cfg, "kimg": [0, 1]}, toy, "stylegan2", run)
    assert "is unreadable" in caplog.text and "trying the previous one" in caplog.text
    assert_same_weights(final_state(straight)["G_ema"], final_state(run)["G_ema"])


def test_changed_config_refuses_to_resume(toy, tmp_path):
    cfg = make_config(tmp_path, kimg=(0,))
    run = tmp_path / "run"
    training.train(cfg, toy, "dcgan", run)
    changed = {**cfg, "kimg": [0, 1], "train": {**cfg["train"], "batch_size": 16}}
    with pytest.raises(ResumeError, match=r"other options \(train.batch_size: 8 -> 16\); refusing to resume"):
        training.train(changed, toy, "dcgan", run)


def test_nan_loss_stops_with_the_kimg_and_keeps_the_last_good_files(toy, tmp_path):
    cfg = make_config(tmp_path, kimg=(0, 1), g_lr=1e30, d_lr=1e30)
    run = tmp_path / "run"
    with pytest.raises(training.TrainingError, match=r"became NaN/inf before kimg 0\.\d+; stopped"):
        training.train(cfg, toy, "stylegan2", run)
    assert [p.name for p in run.glob("snapshot-*.pt")] == ["snapshot-000000.pt"]
    state = final_state(run)
    assert all(torch.isfinite(v).all() for v in state["G"].values())


def test_dry_run_prints_the_resolved_options(toy, tmp_path):
    make_config(tmp_path)
    proc = ganrepro("train", "--config", str(tmp_path / "config.yaml"), "--dataset", "toy",
                    "--model", "ganformer-simplex", "--data", str(toy), "--dry-run")
    options = json.loads(proc.stdout)
    assert options["hparams"]["components"] == 4 and options["hparams"]["resolution"] == 8
    assert options["train"]["style_mixing"] == 0.9 and options["train"]["r1_gamma"] == 10
    assert not (tmp_path / "results").exists()


def test_a_solid_colour_is_learned(tmp_path):
    folder = tmp_path / "solid"
    folder.mkdir()
    for i in range(16):
        (folder / f"{i}.png").write_bytes(png_bytes(Image.new("RGB", (8, 8), (200, 40, 40))))
    spec = config.resolve_dataset("solid", {"source": "folder", "path": str(folder), "resolution": 8})
    data.prepare("solid", spec, tmp_path / "ds")
    cfg = make_config(tmp_path, kimg=(0, 2), ema_kimg=0.05, g_lr=0.005, d_lr=0.005)
    training.train(cfg, tmp_path / "ds", "stylegan2", tmp_path / "run")
    target = torch.tensor([200, 40, 40]) / 127.5 - 1

    def colour_error(kimg):
        G, _ = models.load_snapshot(tmp_path / "run" / f"snapshot-{kimg:06d}.pt")
        with torch.no_grad():
            img = G(torch.randn(64, *G.z_shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
        return (img.mean(dim=(0, 2, 3)) - target).abs().mean().item()
    before, after = colour_error(0), colour_error(2)
    print(f"mean colour error {before:.3f} -> {after:.3f}")
    assert after < before / 3, f"mean colour error {before:.3f} -> {after:.3f}"


def test_two_process_ddp_run_is_valid(toy, tmp_path):
    make_config(tmp_path, kimg=(0, 1))
    run = tmp_path / "ddp"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
                           "-m", "ganrepro.cli", "train", "--config", str(tmp_path / "config.yaml"),
                           "--dataset", "toy", "--model", "stylegan2", "--data", str(toy), "--out", str(run)],
                          capture_output=True, text=True, env=env, timeout=SAFETY_TIMEOUT, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    options = json.loads((run / "training_options.json").read_text())
    assert options["resolved"]["processes"] == 2
    stats = (run / "stats.jsonl").read_text().splitlines()
    assert len(stats) == 2                       # written by rank 0 only
    G, meta = models.load_snapshot(run / "snapshot-000001.pt")
    assert meta["kimg"] == 1 and torch.isfinite(G(torch.randn(2, *G.z_shape))).all()
    assert final_state(run)["nimg"] == 1000


def _rank_pids(parent: int) -> dict[int, int]:
    """RANK -> pid of the processes torchrun `parent` started (from /proc)."""
    ranks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            env = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue                     # gone meanwhile
        rank = [e for e in env if e.startswith(b"RANK=")]
        if ppid == parent and rank:
            ranks[int(rank[0][5:])] = int(stat.parent.name)
    return ranks


def test_two_process_run_stopped_on_one_rank_saves_and_resumes_on_one_process(toy, tmp_path):
    make_config(tmp_path, kimg=(0, 1))
    run = tmp_path / "ddp"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
                             "-m", "ganrepro.cli", "train", "--config", str(tmp_path / "config.yaml"),
                             "--dataset", "toy", "--model", "stylegan2", "--data", str(toy), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
                            start_new_session=True)
    # Only rank 1 gets the signal, the case where ranks that decided alone would hang:
    # rank 1 in the state barrier, rank 0 in the next step's all-reduce.
    out = _stop_after_first_periodic_state(proc, lambda proc: os.kill(_rank_pids(proc.pid)[1], signal.SIGTERM))
    assert "stopped by signal 15" in out and "stopped by a stop signal to another process" in out, out
    assert not (run / "snapshot-000001.pt").exists()
    saved = final_state(run)["nimg"]
    assert 0 < saved < 1000
    # Resumed on another number of processes (one): the same batches, split differently.
    proc = _train_cli(tmp_path / "config.yaml", toy, run, model="stylegan2")
    out = _finish(proc)
    assert proc.returncode == 0, out
    assert f"resuming from {run / 'state'}/training-state-{saved:010d}.pt" in out
    assert final_state(run)["nimg"] == 1000
    G, meta = models.load_snapshot(run / "snapshot-000001.pt")
    assert meta["kimg"] == 1 and torch.isfinite(G(torch.randn(2, *G.z_shape))).all()
    kimgs = [json.loads(line)["kimg"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert kimgs == sorted(set(kimgs)) and kimgs[-1] == 1.0


def test_bench_train_reports_sec_per_kimg_and_img_per_sec():
    proc = ganrepro("bench", "train", "--setting", "default", "--model", "gan", "--steps", "1", cwd=REPO)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("device: ")
    row = lines[3].split()
    cfg = config.load(REPO / "config/config.yaml")      # the default setting is the embedded config
    res = str(next(iter(cfg["datasets"].values()))["resolution"])
    assert row[:4] == ["default", "gan", res, str(cfg["train"]["batch_size"])]
    sec_per_kimg, img_per_sec = float(row[4]), float(row[5])
    assert sec_per_kimg > 0 and img_per_sec > 0
    # The two columns agree to their printed rounding (one decimal each: +-0.05), whatever
    # the machine's speed: |a*b - 1000| <= 0.05 (a + b) + 0.05^2 when a_true * b_true = 1000.
    assert abs(sec_per_kimg * img_per_sec - 1000) <= 0.05 * (sec_per_kimg + img_per_sec) + 0.0025 + 1e-9


def test_half_written_stats_line_from_a_killed_run_is_dropped(tmp_path):
    from ganrepro.training.run_files import RunFiles
    files = RunFiles(tmp_path)
    files.append_stats({"kimg": 0.5, "loss_G": 1.0})
    files.append_stats({"kimg": 1.0, "loss_G": 0.9})
    with open(tmp_path / "stats.jsonl", "a") as f:
        f.write('{"kimg": 1.5, "loss')                      # cut off mid-write
    files.trim_stats(1000)
    lines = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in lines] == [0.5, 1.0]

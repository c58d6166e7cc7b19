"""The workflow on a real SLURM cluster through workflow/profiles/slurm (no mocks).

The cluster is the single node `.ci/slurm` sets up on this machine (fake GPUs, no
accounting). Without SLURM installed these tests are skipped; with SLURM installed but
not running they fail, so CI cannot pass them by accident.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO, SAFETY_TIMEOUT, run

pytestmark = pytest.mark.slow

PROFILE = REPO / "workflow" / "profiles" / "slurm"
READY_STATES = {"idle", "mixed", "allocated", "completing"}
# Tiny networks at 8x8 (test_training.py's sizes), so a CPU trains 1 kimg in seconds.
TINY = {"mapping_layers": 2, "channel_base": 64, "channel_max": 16, "z_dim": 16, "w_dim": 16}
HPARAMS = {"stylegan2": TINY,
           "ganformer-simplex": {**TINY, "components": 4},
           "ganformer-duplex": {**TINY, "components": 4}}


# ---------------------------------------------------------------------------- the cluster

@pytest.fixture(scope="module")
def slurm():
    """The local cluster must be up: skip only where SLURM is not installed at all."""
    if shutil.which("sbatch") is None:
        pytest.skip("SLURM is not installed (no sbatch on PATH); `.ci/slurm` (as root) "
                    "installs and starts a single-node test cluster")
    proc = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True,
                          timeout=60)
    states = proc.stdout.split()
    if proc.returncode != 0 or not READY_STATES & set(states):
        pytest.fail("SLURM is installed but no node is ready to run jobs (sinfo: "
                    f"{(proc.stdout + proc.stderr).strip() or 'no output'}); start the local "
                    "cluster with `.ci/slurm` (as root)", pytrace=False)


def jobs_in(workdir: Path) -> list[dict[str, str]]:
    """Every job slurmctld still knows (MinJobAge is a day on the test cluster) whose
    working directory is `workdir`, as scontrol's key=value fields."""
    out = run(["scontrol", "--oneliner", "show", "job"]).stdout
    jobs = []
    for line in out.splitlines():
        fields = dict(re.findall(r"(?:^|\s)([A-Za-z:/]+)=(\S*)", line))
        if fields.get("WorkDir") and os.path.realpath(fields["WorkDir"]) == os.path.realpath(workdir):
            jobs.append(fields)
    return jobs


@pytest.fixture
def workdir(slurm, tmp_path):
    """A fresh working directory; jobs of a failed test left in the queue are cancelled."""
    yield tmp_path
    for job in jobs_in(tmp_path):
        if job.get("JobState") in ("PENDING", "RUNNING", "CONFIGURING", "SUSPENDED"):
            subprocess.run(["scancel", job["JobId"]], check=False)


# ---------------------------------------------------------------------------- the workflow

def write_config(workdir: Path, models: list[str], kimg: list[int], **train) -> Path:
    cfg = {
        "datasets": {"shapes8": {"source": "shapes", "resolution": 8, "num_images": 200}},
        "models": models,
        "seeds": [0],                       # one training seed: this test is about the cluster
        "hparams": {m: HPARAMS[m] for m in models},
        "kimg": kimg,
        "train": {"batch_size": 32, "tick_kimg": 0.5, "state_kimg": 0.5, "grid": 2,
                  "num_workers": 0, **train},
        "metrics": {"names": ["fid", "kid"], "num_gen": 32, "final_num_gen": None, "num_real": 32,
                    "repeats": 1, "batch_size": 16},
    }
    path = workdir / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake_args(workdir: Path, config: Path, *args: str) -> list[str]:
    """`args` (targets, options) first: --configfile takes every word after it."""
    return [str(BIN / "snakemake"), *args, "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"),
            "-d", str(workdir), "--configfile", str(config)]


def snapshot_targets(models, kimg, dataset="shapes8") -> list[str]:
    return [f"results/runs/{dataset}/{m}/seed0/snapshot-{k:06d}.pt" for m in models for k in kimg]


def submitted_ids(output: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", output)


# ---------------------------------------------------------------------------- tests

def test_the_whole_pipeline_goes_through_slurm_with_a_gpu_per_training_and_evaluation_job(workdir):
    models, kimg = ["stylegan2", "ganformer-duplex"], [0, 1]
    config = write_config(workdir, models, kimg)
    proc = run(snakemake_args(workdir, config), cwd=workdir)     # the default target
    out = proc.stdout + proc.stderr

    for target in snapshot_targets(models, kimg):
        assert (workdir / target).is_file(), target
    assert (workdir / "results/report/report.tex").is_file()
    if shutil.which("latexmk"):
        assert (workdir / "results/report/report.pdf").is_file()
    for m in models:
        assert "done at kimg 1.000" in (workdir / f"results/logs/train/shapes8/{m}/seed0/kimg000001.log").read_text()

    # Every compute job went through sbatch: slurmctld knows it, by the plugin's rule comment.
    jobs = {j["Comment"]: j for j in jobs_in(workdir)}
    prepare = jobs["rule_prepare_dataset_wildcards_shapes8"]
    # one training job per checkpoint interval (train.segments), each its own SLURM job
    trains = [jobs[f"rule_train_wildcards_shapes8_{m}_0_{k:06d}"] for m in models for k in kimg]
    stats = [j for c, j in jobs.items() if c.startswith("rule_real_stats_wildcards_shapes8")]
    evaluations = [jobs[f"rule_evaluate_wildcards_shapes8_{m}_0_{k:06d}"] for m in models for k in kimg]
    throughput = jobs["rule_bench_throughput_wildcards_shapes8"]
    gpu_jobs = [*trains, *stats, *evaluations, throughput]
    assert len(stats) == 1
    assert sorted(submitted_ids(out)) == sorted(j["JobId"] for j in [prepare, *gpu_jobs])
    for job in [prepare, *gpu_jobs]:
        assert (job["JobState"], job["ExitCode"], job["Partition"]) == ("COMPLETED", "0:0", "main"), job
    # Training, statistics and evaluation asked for one GPU with the profile's CPUs per GPU
    # and walltime; the dataset job for none. The report rules run locally (localrule).
    for job in gpu_jobs:
        assert job.get("TresPerJob") == "gres:gpu:1", job
        assert job.get("CpusPerTres") == "gres:gpu:2", job
    assert all(job["TimeLimit"] == "1-00:00:00" for job in trains)
    assert "gpu" not in prepare.get("TresPerJob", "") + prepare["TRES"]
    assert prepare["TimeLimit"] == "04:00:00"
    assert not any(c.startswith(("rule_tables", "rule_figures", "rule_render")) for c in jobs)
    # The plugin's per-job logs are kept (slurm-keep-successful-logs).
    for (m, k), job in zip([(m, k) for m in models for k in kimg], trains):
        log = workdir / f".snakemake/slurm_logs/rule_train/shapes8_{m}_0_{k:06d}/{job['JobId']}.log"
        assert log.is_file(), log

    again = run(snakemake_args(workdir, config), cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_cancelled_training_job_resumes_when_the_workflow_is_run_again(workdir):
    model, kimg = "stylegan2", [0, 4, 8]
    # One job for the whole run (segments off), so that the cancel lands inside a job with
    # checkpoints still ahead; segment jobs resume through the same state files.
    config = write_config(workdir, [model], kimg, tick_kimg=1, state_kimg=1, segments=False)
    targets = snapshot_targets([model], kimg)
    run_dir = workdir / "results/runs/shapes8" / model / "seed0"
    comment = f"rule_train_wildcards_shapes8_{model}_0"

    # First run: no retry, so the cancelled job fails the run as a walltime kill would.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    first_log = workdir / "first-run.log"
    with first_log.open("w") as sink:
        first = subprocess.Popen(snakemake_args(workdir, config, "--retries", "0", *targets), cwd=workdir,
                                 env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            job_id, nimg = None, 0
            deadline = time.monotonic() + SAFETY_TIMEOUT        # a hang only: waits on the state file
            while time.monotonic() < deadline and first.poll() is None:
                states = sorted(run_dir.glob("state/training-state-*.pt"))
                nimg = int(states[-1].stem.rsplit("-", 1)[1]) if states else 0
                if 0 < nimg < kimg[-1] * 1000:      # a state past kimg 0, training not done
                    running = [j for j in jobs_in(workdir) if j["Comment"] == comment and j["JobState"] == "RUNNING"]
                    if running:
                        job_id = running[0]["JobId"]
                        run(["scancel", job_id])
                        break
                time.sleep(0.2)
            assert job_id, f"no running training job with a state past kimg 0 (nimg {nimg})"
            first.wait(timeout=SAFETY_TIMEOUT)      # Snakemake notices the cancelled job and stops
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    out = first_log.read_text()
    assert first.returncode != 0, out
    cancelled = {j["JobId"]: j for j in jobs_in(workdir)}[job_id]
    assert cancelled["JobState"] == "CANCELLED", cancelled
    assert re.search(rf"SLURM-job '{job_id}' failed, SLURM status is: 'CANCELLED'", out), out
    assert not (run_dir / f"snapshot-{kimg[-1]:06d}.pt").exists()
    saved = sorted(run_dir.glob("state/training-state-*.pt"))
    saved_nimg = int(saved[-1].stem.rsplit("-", 1)[1])
    assert 0 < saved_nimg < kimg[-1] * 1000

    # The same command again (retries as the profile says) resumes from the saved state.
    second = run(snakemake_args(workdir, config, *targets), cwd=workdir)
    out2 = second.stdout + second.stderr
    [resubmitted] = submitted_ids(out2)
    assert resubmitted != job_id
    assert {j["JobId"]: j for j in jobs_in(workdir)}[resubmitted]["JobState"] == "COMPLETED"
    for target in targets:
        assert (workdir / target).is_file(), target
    log = (workdir / f"results/logs/train/shapes8/{model}/seed0.log").read_text()
    resumed = re.search(r"resuming from \S+/training-state-\d+\.pt \(kimg (\d+\.\d+)\)", log)
    assert resumed, log
    resumed_kimg = float(resumed.group(1))
    assert round(resumed_kimg * 1000) == saved_nimg        # from the state the cancel left
    options = json.loads((run_dir / "training_options.json").read_text())
    assert options["resumed_from_kimg"] == resumed_kimg
    kimgs = [json.loads(line)["kimg"] for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert kimgs == sorted(set(kimgs)) and kimgs[-1] == kimg[-1]   # one line per tick, none twice

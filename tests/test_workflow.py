"""The dataset stage through Snakemake, as a user runs it (a real run, no mocks)."""

from __future__ import annotations

import hashlib
import re

import pytest
import yaml

from conftest import BIN, REPO, cartoon_archive, run
from ganrepro.data.store import open_images, read_manifest

pytestmark = pytest.mark.slow


def snakemake(workdir, *args, check=True):
    """The dataset stage only (target `datasets`), named before --configfile, which takes
    every word after it."""
    return run([str(BIN / "snakemake"), "datasets", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                "--cores", "2", *args], cwd=workdir, check=check)


def test_dataset_rule_prepares_shapes_at_two_sizes_and_a_downloaded_archive(server, tmp_path):
    body = cartoon_archive(n=5)
    url = server.serve("/cartoonset_public_files/cartoonset10k.tgz", body)
    cfg = {
        "cache_dir": "downloads",
        "datasets": {
            "shapes32": {"source": "shapes", "resolution": 32, "num_images": 50},
            "shapes64": {"source": "shapes", "resolution": 64, "num_images": 30, "max_objects": 6},
            "cartoon64": {"source": "cartoonset10k", "resolution": 64, "url": url,
                          "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)},
        },
    }
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    snakemake(tmp_path, "--configfile", str(cfg_path))

    for name, count, res in [("shapes32", 50, 32), ("shapes64", 30, 64), ("cartoon64", 5, 64)]:
        folder = tmp_path / "results" / "datasets" / name
        m = read_manifest(folder)
        assert (m.name, m.count, m.resolution) == (name, count, res)
        assert open_images(folder).shape == (count, 3, res, res)
        assert (tmp_path / "results" / "logs" / "prepare_dataset" / f"{name}.log").exists()
    assert read_manifest(tmp_path / "results/datasets/shapes64").spec["max_objects"] == 6
    assert (tmp_path / "downloads" / "cartoonset10k.tgz").exists()

    # Nothing to redo on a second run.
    again = snakemake(tmp_path, "--configfile", str(cfg_path))
    assert "Nothing to be done" in again.stdout + again.stderr

    # Changing one dataset's entry redoes that dataset only.
    cfg["datasets"]["shapes32"]["num_images"] = 60
    cfg_path.write_text(yaml.safe_dump(cfg))
    dry = snakemake(tmp_path, "--configfile", str(cfg_path), "-n")
    out = dry.stdout + dry.stderr
    assert "wildcards: dataset=shapes32" in out
    assert "wildcards: dataset=shapes64" not in out and "wildcards: dataset=cartoon64" not in out


def test_failing_dataset_job_leaves_no_outputs(tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({"datasets": {"mine": {"source": "folder", "path": "nowhere"}}}))
    proc = snakemake(tmp_path, "--configfile", str(cfg_path), check=False)
    assert proc.returncode != 0
    assert not (tmp_path / "results" / "datasets" / "mine" / "dataset.json").exists()
    log = (tmp_path / "results" / "logs" / "prepare_dataset" / "mine.log").read_text()
    assert "Error: datasets.mine.path: nowhere does not exist" in log
    assert "Traceback" not in log


def test_workflow_lints_clean():
    """Clean but for one lint, by design: the rules name no conda environment or container,
    since every job runs in the environment Snakemake itself runs in (README: .venv or
    environment.yml; tests/test_docs.py checks that no rule names one)."""
    proc = run([str(BIN / "snakemake"), "--lint", "-s", str(REPO / "Snakefile")], cwd=REPO, check=False)
    out = proc.stdout + proc.stderr
    lints = set(re.findall(r"^\s+\* (.+?):$", out, re.M))
    assert lints <= {"Specify a conda environment or container for each rule."}, out
    assert proc.returncode == 0 or lints, out
    if not lints:
        assert "Congratulations, your workflow is in a good condition!" in out


def test_slurm_profile_resolves_the_dag(tmp_path):
    """The paper config's whole DAG under the SLURM profile (dry run): every job that needs
    a GPU asks for one, with CPUs per GPU and its own walltime; gpu: N > 1 runs torchrun."""
    from ganrepro.settings.config import resolve

    def dry_run(*args):
        proc = run([str(BIN / "snakemake"), "-n", *args, "--profile", str(REPO / "workflow/profiles/slurm"),
                    "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                    "--configfile", str(REPO / "config/paper.yaml")], cwd=REPO)
        out = proc.stdout + proc.stderr
        jobs = []                                 # (rule, resources, shell command) per job
        for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^\[|^Job stats|\Z)", out, re.M | re.S):
            res = re.search(r"^    resources: (.*)$", body, re.M).group(1)
            shell = re.search(r"^Shell command: (.*)$", body, re.M)
            jobs.append((rule, dict(kv.split("=", 1) for kv in res.split(", ")), shell and shell.group(1)))
        return out, jobs

    cfg = resolve(yaml.safe_load((REPO / "config/paper.yaml").read_text()))
    d, m, k, s = len(cfg["datasets"]), len(cfg["models"]), len(cfg["kimg"]), len(cfg["seeds"])
    out, jobs = dry_run()
    runtime = {"prepare_dataset": "240", "train": "1440", "real_stats": "120", "evaluate": "120",
               "bench_throughput": "60"}
    jobs = [job for job in jobs if job[0] in runtime]     # the report rules run locally
    count = {rule: sum(r == rule for r, _, _ in jobs) for rule in runtime}
    # one training job per checkpoint interval (train.segments) of each seed's run
    assert count == {"prepare_dataset": d, "train": d * m * s * k, "real_stats": d, "evaluate": d * m * s * k,
                     "bench_throughput": d}, out
    for rule, res, shell in jobs:
        assert res["slurm_partition"] == "main" and res["runtime"] == runtime[rule], (rule, res)
        if rule == "prepare_dataset":
            assert "gpu" not in res and "cpus_per_gpu" not in res, res
        else:
            assert (res["gpu"], res["cpus_per_gpu"], res["mem_mb"]) == ("1", "2", "16000"), (rule, res)
            assert "cpus_per_task" not in res        # it would override cpus_per_gpu
        if rule == "train":
            assert shell.startswith("ganrepro train "), shell

    # Several GPUs for one training job: torchrun with one process per GPU.
    _, jobs = dry_run("--set-resources", "train:gpu=2", "train:cpus_per_gpu=4")
    trains = [(res, shell) for rule, res, shell in jobs if rule == "train"]
    assert len(trains) == d * m * s * k
    for res, shell in trains:
        assert (res["gpu"], res["cpus_per_gpu"]) == ("2", "4")
        assert shell.startswith("torchrun --standalone --nproc-per-node 2 -m ganrepro.cli train "), shell


def test_bench_data_reports_throughput_with_the_device():
    from conftest import ganrepro
    proc = ganrepro("bench", "data", "--num-images", "20", "--loader-images", "64", "--loader-resolution", "16")
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("device: ") and "cores usable" in lines[0]
    assert lines[1].startswith("shapes generation: 20 images at 32x32") and "img/s" in lines[1]
    assert lines[2].startswith("loader: 384 images at 16x16") and "img/s" in lines[2]

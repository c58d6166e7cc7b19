"""The whole DAG on a tiny config: dataset -> train -> evaluate -> tables/figures -> report."""

import copy
import json
import re
import shutil

import pandas as pd
import pytest
import yaml

from conftest import BIN, REPO, run
from ganrepro.settings.registry import MODELS

pytestmark = pytest.mark.slow

TINY = {
    "seeds": [0, 1],
    "datasets": {"tiny": {"source": "shapes", "resolution": 8, "num_images": 64}},
    # the paper's Table 1 models we train, in its order, then the two GANformers
    "models": ["gan", "kgan", "sagan", "stylegan2", "ganformer-simplex", "ganformer-duplex"],
    "hparams": {**{m: {"channel_base": 128, "channel_max": 16} for m in
                   ("gan", "stylegan2", "ganformer-simplex", "ganformer-duplex")},
                "sagan": {"channel_base": 128, "channel_max": 16, "attention_res": 8},
                "kgan": {"channel_base": 128, "channel_max": 16, "z_dim": 8, "w_dim": 8, "merge_res": 8}},
    "kimg": [0, 1],
    "train": {"batch_size": 8, "tick_kimg": 1, "state_kimg": 1, "num_workers": 0, "grid": 2},
    "metrics": {"num_gen": 8, "final_num_gen": 12, "num_real": 16, "repeats": 2, "batch_size": 8,
                "device": "cpu", "disentanglement": 100},
}


def snakemake(workdir, *args, check=True):
    # the targets first: --configfile takes every word after it
    return run([str(BIN / "snakemake"), *args, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
                "--configfile", str(workdir / "config.yaml")], check=check)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    (work / "config.yaml").write_text(yaml.safe_dump(TINY))
    proc = snakemake(work, "report")
    return work, proc


def test_the_report_is_built_from_the_metrics_files(finished):
    work, _ = finished
    report = work / "results/report/report.tex"
    assert report.is_file()
    metrics = {(p.parent.parent.name, int(p.parent.name[4:]), int(p.stem[4:])): json.loads(p.read_text())
               for p in (work / "results/metrics/tiny").glob("*/seed*/kimg*.json")}
    assert set(metrics) == {(m, s, k) for m in TINY["models"] for s in TINY["seeds"] for k in TINY["kimg"]}
    last = metrics[("ganformer-duplex", 1, 1)]
    assert set(last["num_gen"]) == {8, 12} and last["noise"]["seeds"] == [0, 1]      # sampling seeds
    assert "fid12" not in metrics[("ganformer-duplex", 1, 0)]["metrics"]  # the larger count: last checkpoint only
    # disentanglement: in the last checkpoint's evaluation only (or unavailable, with the reason)
    assert "dci100" in last["metrics"] or "dci100" in last["unavailable"]
    assert "dci100" not in metrics[("ganformer-duplex", 1, 0)]["metrics"]
    # the training seeds give different networks (the sampling seed is the same for both)
    assert metrics[("stylegan2", 0, 1)]["metrics"]["fid8"] != metrics[("stylegan2", 1, 1)]["metrics"]["fid8"]

    # the table's numbers are the JSON's: exactly in the CSV, as printed in the LaTeX
    table = pd.read_csv(work / "results/tables/metrics.csv")
    tex = (work / "results/tables/metrics.tex").read_text()
    labels = {MODELS[m].label: m for m in TINY["models"]}
    assert len(table) == len(metrics)
    for _, row in table.iterrows():
        m = metrics[(labels[row["Model"]], int(row["Seed"]), int(row["kimg"]))]["metrics"]
        assert float(row["FID8"]) == m["fid8"]
        assert float(row["KID8"]) == m["kid8"]
        assert float(row["Precision8"]) == m["pr8"]["precision"]
        assert f"{m['fid8']:.2f}" in tex

    # the paper's Table 1: in the row of every model trained, our last checkpoint at its largest
    # sample count (final_num_gen), each run's mean over the sampling seeds, averaged over the runs
    table1 = pd.read_csv(work / "results/tables/table1.csv")
    ours = table1[table1["source"] == "this pipeline"]
    assert sorted(ours["Model"]) == sorted(labels)
    final = TINY["metrics"]["final_num_gen"]
    for _, row in ours.iterrows():
        assert row["Result"] == f"this run: tiny, 1 kimg, {final} samples"
        fids = [metrics[(labels[row["Model"]], s, 1)]["noise"][f"fid{final}"]["mean"] for s in TINY["seeds"]]
        assert row["FID"] == pytest.approx(sum(fids) / len(fids))

    # every figure and table the report includes exists
    text = report.read_text()
    included = re.findall(r"\\(?:includegraphics(?:\[[^\]]*\])?|input)\{([^}]*)\}", text)
    assert any(p.endswith(".pdf") for p in included)
    for rel in included:
        assert (report.parent / rel).is_file() or (report.parent / f"{rel}.tex").is_file(), rel

    # claims.json carries the per-seed values that decided each FID verdict
    claims = {c["id"]: c for c in json.loads((work / "results/tables/claims.json").read_text())}
    lower = claims["lower-fid"]["numbers"]
    for model in ("stylegan2", "ganformer-duplex"):
        for seed in TINY["seeds"]:
            assert lower["per_seed"][model][str(seed)] == pytest.approx(metrics[(model, seed, 1)]["noise"]["fid8"]["mean"])
    assert lower["n"] == {"stylegan2": 2, "ganformer-duplex": 2} and len(lower["interval"]) == 2
    assert (work / "results/throughput/tiny.json").is_file()
    assert {"disentanglement-ganformer-duplex", "disentanglement-ganformer-simplex"} <= set(claims)
    assert (work / "results/tables/disentanglement.csv").is_file() and "Disentanglement, on a proxy" in report.read_text()


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk is not installed (CI installs it)")
def test_the_pdf_compiles(finished):
    work, _ = finished
    pdf = work / "results/report/report.pdf"
    assert pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")


def test_training_ran_under_snakemake_with_logs_and_benchmarks(finished):
    work, _ = finished
    for model in TINY["models"]:
        for seed in TINY["seeds"]:
            for kimg in TINY["kimg"]:                  # one job per checkpoint (train.segments)
                assert (work / f"results/benchmarks/train/tiny/{model}/seed{seed}/kimg{kimg:06d}.tsv").is_file()
                assert (work / f"results/logs/train/tiny/{model}/seed{seed}/kimg{kimg:06d}.log").is_file()
            assert (work / f"results/runs/tiny/{model}/seed{seed}/grid-000001.png").is_file()
            options = json.loads((work / f"results/runs/tiny/{model}/seed{seed}/training_options.json").read_text())
            assert options["seed"] == seed and options["resolved"]["parameters"]["G"] > 0


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="the HTML report includes the PDF (CI installs TeX)")
def test_snakemakes_html_report_holds_the_figures_tables_and_pdf(finished):
    work, _ = finished
    html = work / "results/report.html"
    run([str(BIN / "snakemake"), "--report", str(html), "-s", str(REPO / "Snakefile"), "-d", str(work),
         "--cores", "1", "--configfile", str(work / "config.yaml")])
    text = html.read_text(errors="replace")
    for name in ("fid_tiny.png", "samples_tiny_ganformer-duplex.png", "claims.csv", "report.pdf"):
        assert name in text, name
    assert "FID over training, one plot per dataset" in text               # a caption


def test_a_second_run_has_nothing_to_do(finished):
    work, _ = finished
    proc = snakemake(work, "report", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _planned(work, cfg) -> dict[str, int]:
    """Rule -> job count that `snakemake -n` plans for the config `cfg` in the finished run."""
    path = work / "edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run([str(BIN / "snakemake"), "report", "-n", "--quiet", "rules", "-s", str(REPO / "Snakefile"),
                "-d", str(work), "--cores", "2", "--configfile", str(path)], timeout=300)
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", proc.stdout + proc.stderr, re.M)
            if m.group(1) != "total"}


REPORT_RULES = {"tables", "figures", "render_report", "compile_pdf", "report"}


def test_an_edit_reruns_only_the_jobs_it_concerns(finished):
    """Each rule gets the part of the config it uses: a metrics edit plans evaluations only
    (the last checkpoints' for repeats), a new model or dataset only its own jobs."""
    work, _ = finished
    cfg = copy.deepcopy(TINY)
    cfg["metrics"]["repeats"] = 3
    plan = _planned(work, cfg)
    assert set(plan) - REPORT_RULES == {"evaluate"}
    assert plan["evaluate"] == len(TINY["models"]) * len(TINY["seeds"])        # the last checkpoint of each run

    cfg = copy.deepcopy(TINY)
    cfg["models"].append("dcgan")
    plan = _planned(work, cfg)
    assert set(plan) - REPORT_RULES == {"train", "evaluate", "bench_throughput"}, plan
    runs = len(TINY["seeds"]) * len(TINY["kimg"])                        # one train job per checkpoint
    assert plan["train"] == runs and plan["evaluate"] == runs

    cfg = copy.deepcopy(TINY)
    cfg["datasets"]["tiny2"] = {"source": "shapes", "resolution": 8, "num_images": 32}
    plan = _planned(work, cfg)
    assert plan["prepare_dataset"] == 1, plan
    assert plan["train"] == len(TINY["models"]) * len(TINY["seeds"]) * len(TINY["kimg"]), plan
    assert plan["real_stats"] == 1 and plan["bench_throughput"] == 1

    # A dataset's own recipe key: its training again, not its preparation.
    cfg = copy.deepcopy(TINY)
    cfg["datasets"]["tiny"]["train"] = {"r1_gamma": 0.5}
    plan = _planned(work, cfg)
    assert set(plan) - REPORT_RULES == {"train", "evaluate", "bench_throughput"}, plan
    assert plan["train"] == len(TINY["models"]) * len(TINY["seeds"]) * len(TINY["kimg"]), plan

    # One model's hyper-parameter for this dataset: that model's jobs only.
    cfg = copy.deepcopy(TINY)
    model = TINY["models"][-1]
    cfg["datasets"]["tiny"]["hparams"] = {model: {"mbstd_group": 2}}
    plan = _planned(work, cfg)
    assert set(plan) - REPORT_RULES == {"train", "evaluate", "bench_throughput"}, plan
    assert plan["train"] == len(TINY["seeds"]) * len(TINY["kimg"]), plan


def test_after_an_interruption_only_what_is_missing_is_redone(finished):
    """As if the run had been stopped during one evaluation: that metrics file and
    everything downstream are missing; the snapshots are there."""
    work, _ = finished
    (work / "results/metrics/tiny/stylegan2/seed1/kimg000000.json").unlink()
    for stage in ("tables", "figures", "report"):
        shutil.rmtree(work / "results" / stage)
    proc = snakemake(work, "report", "-n", "--quiet", "rules")
    out = proc.stdout + proc.stderr
    assert re.search(r"\bevaluate\s+1\b", out) and re.search(r"\brender_report\s+1\b", out), out
    assert not re.search(r"\b(train|prepare_dataset|real_stats)\s+\d", out), out


def test_the_paper_config_resolves_the_whole_dag(tmp_path):
    proc = run([str(BIN / "snakemake"), "-n", "--quiet", "rules", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                "--cores", "1", "--configfile", str(REPO / "config/paper.yaml")])
    out = proc.stdout + proc.stderr
    # one training job per checkpoint interval: 3 models x 3 seeds x 4 checkpoints
    for rule, count in [("prepare_dataset", 1), ("train", 36), ("real_stats", 1), ("evaluate", 36),
                        ("bench_throughput", 1), ("tables", 1), ("figures", 1), ("render_report", 1)]:
        assert re.search(rf"\b{rule}\s+{count}\b", out), (rule, out)

"""The whole DAG on a tiny config: dataset -> train -> evaluate -> tables/figures -> report."""

import json
import re
import shutil

import pandas as pd
import pytest
import yaml

from conftest import BIN, REPO, run

pytestmark = pytest.mark.slow

TINY = {
    "seed": 0,
    "datasets": {"tiny": {"source": "shapes", "resolution": 8, "num_images": 64}},
    "models": ["stylegan2", "ganformer-simplex", "ganformer-duplex"],
    "hparams": {m: {"channel_base": 128, "channel_max": 16} for m in
                ("stylegan2", "ganformer-simplex", "ganformer-duplex")},
    "kimg": [0, 1],
    "train": {"batch_size": 8, "tick_kimg": 1, "state_kimg": 1, "num_workers": 0, "grid": 2},
    "metrics": {"num_gen": 8, "final_num_gen": 12, "num_real": 16, "repeats": 2, "batch_size": 8,
                "device": "cpu"},
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
    metrics = {(p.parent.name, int(p.stem[4:])): json.loads(p.read_text())
               for p in (work / "results/metrics/tiny").glob("*/kimg*.json")}
    assert set(metrics) == {(m, k) for m in TINY["models"] for k in TINY["kimg"]}
    last = metrics[("ganformer-duplex", 1)]
    assert set(last["num_gen"]) == {8, 12} and last["noise"]["seeds"] == [0, 1]
    assert "fid12" not in metrics[("ganformer-duplex", 0)]["metrics"]     # the larger count: last checkpoint only

    # the table's numbers are the JSON's: exactly in the CSV, as printed in the LaTeX
    table = pd.read_csv(work / "results/tables/metrics.csv")
    tex = (work / "results/tables/metrics.tex").read_text()
    labels = {"StyleGAN2": "stylegan2", "GANformer simplex": "ganformer-simplex", "GANformer duplex": "ganformer-duplex"}
    assert len(table) == len(metrics)
    for _, row in table.iterrows():
        m = metrics[(labels[row["Model"]], int(row["kimg"]))]["metrics"]
        assert float(row["FID8"]) == m["fid8"]
        assert float(row["KID8"]) == m["kid8"]
        assert float(row["Precision8"]) == m["pr8"]["precision"]
        assert f"{m['fid8']:.2f}" in tex

    # every figure and table the report includes exists
    text = report.read_text()
    included = re.findall(r"\\(?:includegraphics(?:\[[^\]]*\])?|input)\{([^}]*)\}", text)
    assert any(p.endswith(".pdf") for p in included)
    for rel in included:
        assert (report.parent / rel).is_file() or (report.parent / f"{rel}.tex").is_file(), rel


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk is not installed (CI installs it)")
def test_the_pdf_compiles(finished):
    work, _ = finished
    pdf = work / "results/report/report.pdf"
    assert pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")


def test_training_ran_under_snakemake_with_logs_and_benchmarks(finished):
    work, _ = finished
    for model in TINY["models"]:
        assert (work / f"results/benchmarks/train/tiny/{model}.tsv").is_file()
        assert (work / f"results/logs/train/tiny/{model}.log").is_file()
        assert (work / f"results/runs/tiny/{model}/grid-000001.png").is_file()


def test_a_second_run_has_nothing_to_do(finished):
    work, _ = finished
    proc = snakemake(work, "report", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_after_an_interruption_only_what_is_missing_is_redone(finished):
    """As if the run had been stopped during one evaluation: that metrics file and
    everything downstream are missing; the snapshots are there."""
    work, _ = finished
    (work / "results/metrics/tiny/stylegan2/kimg000000.json").unlink()
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
    for rule, count in [("prepare_dataset", 1), ("train", 3), ("real_stats", 1), ("evaluate", 12), ("tables", 1),
                        ("figures", 1), ("render_report", 1)]:
        assert re.search(rf"\b{rule}\s+{count}\b", out), (rule, out)

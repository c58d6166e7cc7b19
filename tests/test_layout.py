"""The results layout, the evaluation plan, and `ganrepro evaluate` planning as the rules do."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import yaml

from conftest import BIN, REPO, ganrepro, run
from ganrepro import layout, protocol
from ganrepro.settings.config import resolve


def test_every_path_with_values():
    assert layout.dataset_dir("shapes16") == "results/datasets/shapes16"
    assert layout.manifest("shapes16") == "results/datasets/shapes16/dataset.json"
    assert layout.images("shapes16") == "results/datasets/shapes16/images.npy"
    assert layout.stats("shapes16", "clean", 128) == "results/stats/shapes16/clean-real128.npz"
    assert layout.stats("shapes16", "legacy_tensorflow", "all") == "results/stats/shapes16/legacy_tensorflow-realall.npz"
    assert layout.stats("shapes16", "clean", None) == "results/stats/shapes16/clean-realall.npz"
    assert layout.run_dir("shapes16", "stylegan2", 1) == "results/runs/shapes16/stylegan2/seed1"
    assert layout.snapshot("shapes16", "stylegan2", 1, 12) == "results/runs/shapes16/stylegan2/seed1/snapshot-000012.pt"
    assert layout.run_file("d", "m", 0, "stats.jsonl") == "results/runs/d/m/seed0/stats.jsonl"
    assert layout.metrics("d", "m", 2, 8) == "results/metrics/d/m/seed2/kimg000008.json"
    assert layout.metrics("d", "m", None, 8) == "results/metrics/d/m/kimg000008.json"
    assert layout.evaluate_benchmark("d", "m", 2, 8) == "results/benchmarks/evaluate/d/m/seed2/kimg000008.tsv"
    assert layout.train_benchmark("d", "m", 2, 8) == "results/benchmarks/train/d/m/seed2/kimg000008.tsv"
    assert layout.train_benchmark("d", "m", 2) == "results/benchmarks/train/d/m/seed2.tsv"
    assert layout.train_benchmarks("d", "m", 0, [0, 4], segments=True) == [
        "results/benchmarks/train/d/m/seed0/kimg000000.tsv", "results/benchmarks/train/d/m/seed0/kimg000004.tsv"]
    assert layout.train_benchmarks("d", "m", 0, [0, 4], segments=False) == ["results/benchmarks/train/d/m/seed0.tsv"]
    assert layout.throughput("d") == "results/throughput/d.json"
    assert layout.download("downloads", "ffhq") == "downloads/pretrained/ffhq.pkl"
    assert layout.pretrained_snapshot("ffhq") == "results/pretrained/ffhq/snapshot.pt"
    assert layout.pretrained_metrics("ffhq", "clean") == "results/pretrained/ffhq/metrics-clean.json"
    assert layout.pretrained_benchmark("ffhq", "clean") == "results/benchmarks/pretrained/ffhq/clean.tsv"
    assert layout.log("pretrained", "evaluate", "ffhq", "clean") == "results/logs/pretrained/evaluate/ffhq/clean.log"
    assert layout.benchmark("train", "d/m/seed0") == "results/benchmarks/train/d/m/seed0.tsv"
    assert layout.table("metrics.csv") == "results/tables/metrics.csv"
    assert layout.figure("fid_d.png") == "results/figures/fid_d.png"
    assert layout.report_tex() == "results/report/report.tex"
    assert layout.report_bib() == "results/report/references.bib"
    assert layout.report_pdf() == "results/report/report.pdf"
    assert layout.gpu_locks() == "results/.gpu-locks"
    # another root, as the report's reader takes one
    assert layout.metrics("d", "m", 0, 1, root="/x/res") == "/x/res/metrics/d/m/seed0/kimg000001.json"
    assert layout.tables_dir("/x/res") == "/x/res/tables"


def test_the_defaults_are_the_rules_patterns():
    assert layout.manifest() == "results/datasets/{dataset}/dataset.json"
    assert layout.stats() == "results/stats/{dataset}/{mode}-real{num_real}.npz"
    assert layout.run_dir() == "results/runs/{dataset}/{model}/seed{seed}"
    assert layout.snapshot() == "results/runs/{dataset}/{model}/seed{seed}/snapshot-{kimg}.pt"
    assert layout.metrics() == "results/metrics/{dataset}/{model}/seed{seed}/kimg{kimg}.json"
    assert layout.evaluate_benchmark() == "results/benchmarks/evaluate/{dataset}/{model}/seed{seed}/kimg{kimg}.tsv"
    assert layout.train_job() == "{dataset}/{model}/seed{seed}"
    assert layout.train_job(kimg="{kimg}") == "{dataset}/{model}/seed{seed}/kimg{kimg}"
    assert layout.throughput() == "results/throughput/{dataset}.json"
    assert layout.download("cache") == "cache/pretrained/{name}.pkl"
    assert layout.pretrained_metrics() == "results/pretrained/{name}/metrics-{mode}.json"


def test_the_report_reader_finds_the_files_by_layout(tmp_path):
    from ganrepro.report.inputs import Results

    cfg = resolve({"datasets": {"d": {"source": "shapes"}}, "kimg": [0, 4]})
    results = Results(cfg, tmp_path)
    root = str(tmp_path)
    assert str(results.metrics_path("d", "m", 1, 4)) == layout.metrics("d", "m", 1, 4, root=root)
    assert str(results.snapshot_path("d", "m", 1, 4)) == layout.snapshot("d", "m", 1, 4, root=root)
    assert [str(p) for p in results.train_benchmark_paths("d", "m", 1)] == layout.train_benchmarks(
        "d", "m", 1, [0, 4], cfg["train"]["segments"], root=root)
    cfg["train"]["segments"] = False
    assert [str(p) for p in Results(cfg, tmp_path).train_benchmark_paths("d", "m", 1)] == [
        layout.train_benchmark("d", "m", 1, root=root)]


def test_count_suffix_and_its_inverse():
    assert [protocol.count_suffix(n) for n in (10000, 50000, 500, 1000, 64, 0)] == ["10k", "50k", "500", "1k", "64", "0"]
    for n in (0, 2, 999, 1000, 1500, 50000):
        assert protocol.suffix_count(protocol.count_suffix(n)) == n


METRICS = resolve({"datasets": {"d": {"source": "shapes"}},
                   "metrics": {"num_gen": 64, "final_num_gen": 256, "repeats": 3, "seed": 5}})["metrics"]


def test_the_last_checkpoint_gets_final_num_gen_and_repeats():
    last = protocol.plan(METRICS, protocol.stage_of(12, 12))
    assert (last.num_gen, last.repeats, last.seed) == ((64, 256), 3, 5)
    earlier = protocol.plan(METRICS, protocol.stage_of(8, 12))
    assert (earlier.num_gen, earlier.repeats, earlier.seed) == ((64,), 1, 5)
    released = protocol.plan(METRICS, protocol.RELEASED)
    assert (released.num_gen, released.repeats) == ((256,), 3)
    assert last.names == ("fid", "kid", "pr", "is") and last.fid_mode == "clean" and last.num_real == "all"
    # final_num_gen null or equal to num_gen: one count
    for final in (None, 64):
        m = {**METRICS, "final_num_gen": final}
        assert protocol.plan(m, protocol.LAST).num_gen == (64,)
        assert protocol.plan(m, protocol.RELEASED).num_gen == (64,)


def test_a_jobs_metrics_plan_as_the_whole_config_and_hold_no_unused_key():
    for stage in protocol.STAGES:
        job = protocol.job_metrics(METRICS, stage)
        assert protocol.plan(job, stage) == protocol.plan(METRICS, stage)
        assert protocol.plan(job, protocol.LAST) == protocol.plan(METRICS, stage)     # kimg [its kimg]
    # what an earlier checkpoint does not use cannot change its job's params
    edited = {**METRICS, "repeats": 7, "final_num_gen": 1000}
    assert protocol.job_metrics(edited, protocol.CHECKPOINT) == protocol.job_metrics(METRICS, protocol.CHECKPOINT)
    assert protocol.job_metrics(edited, protocol.LAST) != protocol.job_metrics(METRICS, protocol.LAST)
    assert protocol.job_metrics({**METRICS, "num_gen": 32}, protocol.RELEASED) == protocol.job_metrics(
        METRICS, protocol.RELEASED)          # a released checkpoint reads final_num_gen only


def _cli_plan(monkeypatch, args: list[str], meta: dict | None = None) -> protocol.EvaluationPlan:
    """The plan `ganrepro evaluate ARGS` would measure (its command line parsed, nothing run)."""
    import click

    from ganrepro.cli import evaluate as cli_evaluate

    monkeypatch.setattr(cli_evaluate, "snapshot_meta", lambda path: meta)
    command = cli_evaluate.evaluate_command
    ctx = command.make_context("evaluate", ["--dataset", "d", *args])
    p = ctx.params
    explicit = {n for n in cli_evaluate.PLAN_OPTIONS if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT}
    cfg = None
    if p["config_json"] is not None or p["config_path"] is not None:
        from ganrepro.cli.options import load_config
        cfg = load_config(p["config_path"], p["config_json"])
    return cli_evaluate.evaluation_plan(p, explicit, cfg, p["snapshot"], p["kimg"], p["last_kimg"])


def test_evaluate_by_hand_plans_from_a_config_and_options_override(monkeypatch, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"d": {"source": "shapes"}}, "kimg": [0, 4, 12], "metrics": {"num_gen": 64, "final_num_gen": 256,
                                                                    "repeats": 3}}))
    cfg = resolve(yaml.safe_load(path.read_text()))
    last = protocol.plan(cfg["metrics"], protocol.LAST)
    # the snapshot's own kimg against the config's last
    assert _cli_plan(monkeypatch, ["--snapshot", "s.pt", "--config", str(path)], {"kimg": 12}) == last
    assert _cli_plan(monkeypatch, ["--snapshot", "s.pt", "--config", str(path)], {"kimg": 4}) == protocol.plan(
        cfg["metrics"], protocol.CHECKPOINT)
    assert _cli_plan(monkeypatch, ["--snapshot", "s.pt", "--config", str(path)],
                     {"kimg": 0, "source": {"file": "x.pkl"}}) == protocol.plan(cfg["metrics"], protocol.RELEASED)
    # --kimg / --last-kimg instead of the snapshot's kimg and the config's last
    assert _cli_plan(monkeypatch, ["--snapshot", "s.pt", "--config", str(path), "--kimg", "12"]) == last
    assert _cli_plan(monkeypatch, ["--snapshot", "s.pt", "--config", str(path), "--kimg", "4",
                                   "--last-kimg", "4"]) == last
    # explicit options over the plan
    plan = _cli_plan(monkeypatch, ["--snapshot", "s.pt", "--config", str(path), "--kimg", "12", "--repeats", "1",
                                   "--num-gen", "10,20", "--device", "cpu"])
    assert (plan.repeats, plan.num_gen, plan.device, plan.num_real) == (1, (10, 20), "cpu", "all")
    # no config: the options and their defaults, as before
    plan = _cli_plan(monkeypatch, ["--snapshot", "s.pt"])
    assert plan == protocol.EvaluationPlan(names=("fid", "kid", "pr", "is"), num_gen=(10000,), num_real="all",
                                           repeats=1, seed=0, fid_mode="clean", batch_size=64,
                                           weights_dir="resources/inception", device="auto", extractor="reference")


def _rule_commands(tmp_path, configfile) -> list[list[str]]:
    """The evaluate and evaluate_pretrained command lines a dry run plans, split into words."""
    proc = run([str(BIN / "snakemake"), "all", "pretrained", "-n", "-p", "-s", str(REPO / "Snakefile"),
                "-d", str(tmp_path), "--cores", "1", "--configfile", str(configfile)])
    lines = re.findall(r"^Shell command: (ganrepro evaluate .*)$", proc.stdout + proc.stderr, re.M)
    return [shlex.split(line.split(" > ")[0])[2:] for line in lines]


@pytest.mark.slow
def test_evaluate_by_hand_plans_what_the_rules_plan(monkeypatch, tmp_path):
    """Each evaluate job's command line plans what the config plans for its checkpoint, as
    `ganrepro evaluate --config` by hand does for the same snapshot."""
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    cfg["metrics"].update(final_num_gen=96, repeats=3)
    cfg["pretrained"] = {"ffhq": {"dataset": next(iter(cfg["datasets"])), "url": "https://example.org/ffhq.pkl",
                                  "network": "Gs"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    resolved = resolve(cfg)
    commands = _rule_commands(tmp_path, path)
    kimgs = resolved["kimg"]
    runs = len(resolved["datasets"]) * len(resolved["models"]) * len(resolved["seeds"])
    assert len(commands) == runs * len(kimgs) + 1
    stages = []
    for words in commands:
        released = "--kimg" not in words
        meta = {"kimg": 0, "source": {"file": "ffhq.pkl"}} if released else None
        rule_plan = _cli_plan(monkeypatch, words, meta)
        if released:
            stage, by_hand = protocol.RELEASED, ["--snapshot", "s.pt", "--config", str(path)]
        else:
            kimg = int(words[words.index("--kimg") + 1])
            stage = protocol.stage_of(kimg, kimgs[-1])
            by_hand = ["--snapshot", "s.pt", "--config", str(path), "--kimg", str(kimg),
                       "--dataset", words[words.index("--dataset") + 1]]       # its source decides disentanglement
        source = resolved["datasets"][words[words.index("--dataset") + 1]]["source"]
        assert rule_plan == protocol.plan(resolved["metrics"], stage, source), words
        assert _cli_plan(monkeypatch, by_hand, meta) == rule_plan
        assert set(json.loads(words[words.index("--config-json") + 1])) <= {"datasets", "kimg", "metrics"}
        stages.append(stage)
    assert stages.count(protocol.LAST) == runs and stages.count(protocol.RELEASED) == 1


@pytest.mark.parametrize("option", ["--kimg", "--last-kimg"])
def test_evaluate_refuses_a_place_in_the_plan_without_a_config(option, tmp_path):
    done = ganrepro("evaluate", "--snapshot", str(tmp_path / "snapshot-000012.pt"), "--dataset", "toy",
                    option, "12", cwd=tmp_path, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"Error: {option} places the snapshot in a config's evaluation plan; "
                                   "give --config (or --config-json) too")

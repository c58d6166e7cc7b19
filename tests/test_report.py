"""The report stage on small synthetic runs built in tmp_path: tables, claims, figures,
rendering and (where TeX is installed) the PDF. The metrics, run and benchmark files here
are test data in the earlier stages' formats; there are no snapshots, because the report
must never need one (parameter counts come from the run files)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import SAFETY_TIMEOUT
from ganrepro.settings import config as cfgmod
from ganrepro.settings import presets, registry
from ganrepro.report import claims as claimsmod
from ganrepro.report import render as rendermod
from ganrepro.cli import main as ganrepro_main
from ganrepro.report.figures import write_figures
from ganrepro.report.inputs import ReportError, Results, load_published
from ganrepro.report.latex import latex_escape
from ganrepro.report.tables import write_tables
from ganrepro.settings.registry import model_label

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "config" / "published.yaml"
TEMPLATE = REPO / "report" / "report.tex.j2"
BIB = REPO / "report" / "references.bib"
MODELS = ["stylegan2", "ganformer-simplex", "ganformer-duplex"]
TINY = {"channel_base": 256, "channel_max": 16}
DATASET = "toy_set"           # an underscore, to be escaped everywhere in the LaTeX
OFFSETS = (0.0, 1.0, -1.0)    # small seed-to-seed differences of FID, by training seed


def make_config(models_=MODELS, kimg=(0, 2, 4), repeats=3, names=("fid", "kid", "pr", "is"), seeds=(0, 1, 2)) -> dict:
    return cfgmod.resolve({
        "datasets": {DATASET: {"source": "shapes", "resolution": 8, "num_images": 16}},
        "models": list(models_), "kimg": list(kimg), "seeds": list(seeds),
        "hparams": {m: dict(TINY, **({"z_dim": 16, "w_dim": 16} if m == "stylegan2" else {})) for m in models_},
        "train": {"grid": 2},
        "metrics": {"names": list(names), "num_gen": 10000, "final_num_gen": 50000, "repeats": repeats},
    })


def _measurement(dataset, model, seed, kimg, fid, last, std, num_gen=(10000, 50000)):
    metrics = {"fid10k": fid, "kid10k": fid / 3000, "pr10k": {"precision": 0.5, "recall": 0.2, "k": 3}}
    if last:
        metrics.update(fid50k=fid - 0.4, kid50k=fid / 3100, pr50k={"precision": 0.52, "recall": 0.21, "k": 3})
    noise = None
    if last and std is not None:
        values = [fid, fid + std, fid - std]
        noise = {"seeds": [0, 1, 2],
                 "fid10k": {"values": values, "mean": sum(values) / 3,
                            "std": float(np.std(values, ddof=1))},
                 "precision10k": {"values": [0.5, 0.51, 0.49], "mean": 0.5, "std": 0.01}}
    return {"format": 1, "dataset": dataset, "model": model, "kimg": kimg,
            "snapshot": f"results/runs/{dataset}/{model}/seed{seed}/snapshot-{kimg:06d}.pt",
            "snapshot_sha256": "0" * 64, "resolution": 8, "seed": 0, "fid_mode": "clean",
            "extractor": {"name": "Inception-v3 (offline copy)", "file": "default_1.pt", "sha256": "7ff4" + "0" * 60,
                          "logits": False},
            "num_real": 16, "num_gen": list(num_gen) if last else [num_gen[0]], "metrics": metrics,
            "unavailable": {"is10k": "the offline Inception copy has no logits layer; 100% sure & final",
                            **({"is50k": "no logits layer"} if last else {})},
            "noise": noise, "seconds": 1.5, "device": "cpu (test)",
            "versions": {"ganrepro": "0.1.0", "torch": "x", "clean-fid": "0.1.35"}}


def make_run(root: Path, cfg: dict, fids: dict[str, list[float]], stds: dict[str, float | None] | None = None,
             img_per_sec: dict[str, float] | None = None, offsets=OFFSETS) -> Results:
    """A results/ folder as the earlier stages would leave it: for each model the FID curve
    `fids` (one value per checkpoint), shifted by offsets[i] after kimg 0 for the i-th
    training seed; `stds` is the sampling spread at the last checkpoint."""
    kimgs = cfg["kimg"]
    ds = root / "datasets" / DATASET
    ds.mkdir(parents=True)
    ds.joinpath("dataset.json").write_text(json.dumps({
        "name": DATASET, "source": "shapes", "source_url": None, "source_sha256": None, "source_size": None,
        "count": 16, "resolution": 8, "channels": 3, "preprocessing": {},
        "skipped": [{"file": "bad_1.png", "reason": "truncated file"}], "images_sha256": "ab" * 32}))
    rng = np.random.default_rng(0)
    for model in cfg["models"]:
        for i, seed in enumerate(cfg["seeds"]):
            run = root / "runs" / DATASET / model / f"seed{seed}"
            run.mkdir(parents=True)
            for j, k in enumerate(kimgs):
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(run / f"grid-{k:06d}.png")
                if model.startswith("ganformer"):
                    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(run / f"attention-{k:06d}.png")
                path = root / "metrics" / DATASET / model / f"seed{seed}" / f"kimg{k:06d}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                std = (stds or {}).get(model, 0.1)
                fid = fids[model][j] + (offsets[i] if k > 0 else 0.0)
                path.write_text(json.dumps(_measurement(DATASET, model, seed, k, fid, k == kimgs[-1], std)))
                bench = root / "benchmarks" / "evaluate" / DATASET / model / f"seed{seed}" / f"kimg{k:06d}.tsv"
                bench.parent.mkdir(parents=True, exist_ok=True)
                bench.write_text("s\th:m:s\tmax_rss\tcpu_time\n12.5\t0:00:12\t900.1\t20.0\n")
            run.joinpath("stats.jsonl").write_text("".join(json.dumps(
                {"kimg": t, "loss_G": 1.0 + t / 10, "loss_D": 1.2 - t / 10, "r1": 0.1, "pl": None,
                 "sec_per_kimg": 50.0, "img_per_sec": 20.0, "peak_mem_mb": 1000 + t,
                 "lr_G": 0.002, "lr_D": 0.002, "time": 0}) + "\n" for t in (1, 2, 3, 4)))
            # As the training writes it: effective recipe, every hyper-parameter, departures.
            hparams = dataclasses.asdict(registry.resolve_hparams(model, **cfg["hparams"].get(model, {}), resolution=8))
            run.joinpath("training_options.json").write_text(json.dumps({
                "model": model, "hparams": hparams, "seed": seed, "train": cfg["train"], "preset": "none",
                "resolved": {"device": "cpu", "precision": "fp32", "processes": 1,
                             "parameters": {"G": 123456, "D": 65432},
                             "departures": presets.departures(model, "none", hparams, cfg["train"], "fp32")},
                "versions": {"ganrepro": "0.1.0", "torch": "x", "python": "3.11"}, "host": "testhost",
                "git_commit": "deadbeef", "cuda_device": None}))
            for bench in Results(cfg, root).train_benchmark_paths(DATASET, model, seed):
                bench.parent.mkdir(parents=True, exist_ok=True)
                bench.write_text("s\th:m:s\tmax_rss\tcpu_time\n3725.0\t1:02:05\t1500.0\t7000\n")
    throughput = root / "throughput" / f"{DATASET}.json"
    throughput.parent.mkdir(parents=True, exist_ok=True)
    speeds = {m: (img_per_sec or {}).get(m, 20.0) for m in cfg["models"]}
    throughput.write_text(json.dumps({
        "device": "device: test CPU, 2 cores", "batch": 8, "rounds": 4, "steps_per_round": 3,
        "models": {m: {"seconds": [8 / v * (1 + 0.01 * r) for r in range(4)], "img_per_sec": v}
                   for m, v in speeds.items()}}))
    return Results(cfg, root)


GOOD = {"stylegan2": [300.0, 120.0, 60.0], "ganformer-simplex": [300.0, 100.0, 55.0],
        "ganformer-duplex": [300.0, 80.0, 40.0]}


# ---------------------------------------------------------------------------- LaTeX text

def test_latex_escape_makes_specials_literal():
    assert latex_escape("fid_10k & 5% #1") == r"fid\_10k \& 5\% \#1"
    assert latex_escape(r"a\b{c}") == r"a\textbackslash{}b\{c\}"


def test_table_text_is_escaped_in_the_tex(tmp_path):
    results = make_run(tmp_path / "results", make_config(), GOOD)
    write_tables(results, load_published(PUBLISHED), tmp_path / "tables")
    tex = (tmp_path / "tables" / "metrics.tex").read_text()
    assert r"toy\_set" in tex and "toy_set" not in tex.replace(r"toy\_set", "")
    assert r"100\% sure \& final" in tex                         # the n/a footnote's reason
    assert r"\toprule" in tex and r"\bottomrule" in tex
    datasets = (tmp_path / "tables" / "datasets.tex").read_text()
    assert r"1\textsuperscript{a}" in datasets and "truncated file" in datasets


# ---------------------------------------------------------------------------- tables

def test_metrics_table_numbers_equal_the_json_values(tmp_path):
    results = make_run(tmp_path / "results", make_config(), GOOD)
    write_tables(results, load_published(PUBLISHED), tmp_path / "tables")
    table = pd.read_csv(tmp_path / "tables" / "metrics.csv")
    assert len(table) == 3 * 3 * 3                     # models x training seeds x checkpoints
    assert sorted(set(table["Seed"])) == [0, 1, 2]
    for _, row in table.iterrows():
        model = {"StyleGAN2": "stylegan2", "GANformer simplex": "ganformer-simplex",
                 "GANformer duplex": "ganformer-duplex"}[row["Model"]]
        raw = json.loads((tmp_path / "results" / "metrics" / DATASET / model / f"seed{row['Seed']}" /
                          f"kimg{row['kimg']:06d}.json").read_text())
        assert float(row["FID10k"]) == raw["metrics"]["fid10k"]
        assert float(row["KID10k"]) == raw["metrics"]["kid10k"]
        assert float(row["Precision10k"]) == raw["metrics"]["pr10k"]["precision"]
        assert row["IS10k"] == "unavailable"                       # never a number
        if row["kimg"] == 4:
            assert float(row["FID50k"]) == raw["metrics"]["fid50k"]
        else:
            assert math.isnan(row["FID50k"])


def test_compute_table_sums_each_runs_jobs_and_reads_parameters_from_the_run_files(tmp_path):
    results = make_run(tmp_path / "results", make_config(), GOOD)
    write_tables(results, load_published(PUBLISHED), tmp_path / "tables")
    compute = pd.read_csv(tmp_path / "tables" / "compute.csv")
    assert len(compute) == 3 * 3                                 # one row per training run
    assert (compute["Train s"] == 3725.0 * 3).all()              # three segment jobs per run
    assert (compute["G parameters"] == 123456).all()


def test_table1_sets_published_values_beside_ours(tmp_path):
    results = make_run(tmp_path / "results", make_config(), GOOD)
    write_tables(results, load_published(PUBLISHED), tmp_path / "tables")
    t1 = pd.read_csv(tmp_path / "tables" / "table1.csv")
    ours = t1[(t1["Model"] == "GANformer duplex") & t1["Result"].str.startswith("this run")]
    # fid50k at the last checkpoint, mean and sd over the three training seeds (offsets 0, 1, -1)
    assert float(ours["FID"].iloc[0]) == pytest.approx(40.0 - 0.4)
    assert float(ours["FID sd"].iloc[0]) == pytest.approx(1.0) and int(ours["FID n"].iloc[0]) == 3
    assert r"39.60 ± 1.00 (3)" in (tmp_path / "tables" / "table1.tex").read_text()
    paper = t1[(t1["Model"] == "GANformer duplex") & (t1["Result"] == "paper, mean of 4 datasets")]
    assert float(paper["FID"].iloc[0]) == 7.22
    assert (t1["source"].str.len() > 0).all()
    tex = (tmp_path / "tables" / "table1.tex").read_text()
    assert r"\cite{adorni2023ganformerrepro}" in tex


def test_table1_has_every_row_of_the_papers_table_in_its_order_with_ours_where_trained(tmp_path):
    trained = ["stylegan2", "sagan", "kgan"]
    cfg = cfgmod.resolve({
        "datasets": {DATASET: {"source": "shapes", "resolution": 8, "num_images": 16}},
        "models": trained, "kimg": [0, 2, 4], "seeds": [0, 1, 2],
        "hparams": {m: dict(TINY) for m in trained} | {"sagan": dict(TINY, attention_res=8)},   # no 32 px at 8 px
        "metrics": {"names": ["fid", "kid", "pr", "is"], "num_gen": 10000, "final_num_gen": 50000, "repeats": 3},
    })
    fids = {**GOOD, "sagan": [300.0, 130.0, 70.0], "kgan": [300.0, 140.0, 80.0]}
    write_tables(make_run(tmp_path / "results", cfg, fids), load_published(PUBLISHED), tmp_path / "tables")
    t1 = pd.read_csv(tmp_path / "tables" / "table1.csv")
    readme = t1[t1["Result"] == "official README, FID-50k"]
    assert list(readme["Model"]) == ["GAN", "k-GAN", "SAGAN", "StyleGAN2", "VQGAN", "GANformer"]
    assert float(readme[readme["Model"] == "k-GAN"]["README FID-50k CLEVR"].iloc[0]) == 28.28
    ours = t1[t1["Result"].str.startswith("this run")]
    assert list(ours["Model"]) == ["k-GAN", "SAGAN", "StyleGAN2"]
    assert float(ours[ours["Model"] == "SAGAN"]["FID"].iloc[0]) == pytest.approx(70.0 - 0.4)
    # each model's rows sit just above its published row: the paper's order, GAN first
    order = list(t1["Model"])
    assert order.index("GAN") < order.index("k-GAN") < order.index("SAGAN") < order.index("StyleGAN2")
    assert list(t1["Model"][t1["Model"].isin(["k-GAN", "SAGAN"])]) == ["k-GAN", "k-GAN", "SAGAN", "SAGAN"]
    tex = (tmp_path / "tables" / "table1.tex").read_text()
    assert "28.28 / 69.90 / 61.14 / 51.08" in tex
    assert "not a model of this pipeline" in tex                # VQGAN: published values only


def test_missing_metrics_file_names_the_file_and_rule(tmp_path):
    results = make_run(tmp_path / "results", make_config(), GOOD)
    missing = tmp_path / "results" / "metrics" / DATASET / "stylegan2" / "seed1" / "kimg000002.json"
    missing.unlink()
    with pytest.raises(ReportError, match=r"seed1/kimg000002\.json does not exist; the evaluate rule"):
        write_tables(results, load_published(PUBLISHED), tmp_path / "tables")


# ---------------------------------------------------------------------------- claims

def _verdicts(results) -> dict[str, str]:
    return {c.id: c.verdict for c in claimsmod.check_results(results)}


def test_claims_supported_when_beyond_the_seed_noise(tmp_path):
    results = make_run(tmp_path, make_config(), GOOD)
    v = _verdicts(results)
    assert v["lower-fid"] == "supported"                 # 40 vs 60, seed sd 1
    assert v["duplex-vs-simplex"] == "supported"         # 40 vs 55
    assert v["faster-ganformer-duplex"] == "supported"   # reaches 61 near 3 kimg, StyleGAN2 near 4
    assert v["attention-cost-ganformer-duplex"] == "supported"
    write_tables(results, load_published(PUBLISHED), tmp_path / "tables")
    saved = {c["id"]: c for c in json.loads((tmp_path / "tables" / "claims.json").read_text())}
    lower = saved["lower-fid"]["numbers"]                # the per-seed values that decided it
    assert lower["per_seed"]["ganformer-duplex"] == {"0": 40.0, "1": 41.0, "2": 39.0}
    assert lower["n"] == {"ganformer-duplex": 3, "stylegan2": 3}
    assert lower["interval"][0] > 0 and lower["p_improvement"] == 1.0


def test_claims_not_supported_when_stylegan2_is_clearly_better(tmp_path):
    fids = {"stylegan2": [300.0, 25.0, 30.0], "ganformer-simplex": [300.0, 90.0, 45.0],
            "ganformer-duplex": [300.0, 150.0, 50.0]}
    v = _verdicts(make_run(tmp_path, make_config(), fids,
                           img_per_sec={"stylegan2": 20.0, "ganformer-simplex": 5.0, "ganformer-duplex": 4.0}))
    assert v["lower-fid"] == "not supported"
    assert v["duplex-vs-simplex"] == "not supported"
    assert v["faster-ganformer-duplex"] == "not supported"
    assert v["attention-cost-ganformer-duplex"] == "not supported"   # 4 / 20 < 0.5


def test_claims_inconclusive_within_the_seed_noise(tmp_path):
    fids = {"stylegan2": [300.0, 120.0, 60.0], "ganformer-simplex": [300.0, 100.0, 59.0],
            "ganformer-duplex": [300.0, 110.0, 55.0]}
    results = make_run(tmp_path, make_config(), fids, offsets=(0.0, 15.0, -15.0))
    claims = {c.id: c for c in claimsmod.check_results(results)}
    lower = claims["lower-fid"]
    assert lower.verdict == "inconclusive"                       # 5 FID apart, seed sd 15
    low, high = lower.numbers["interval"]
    assert low < 0 < high
    assert f"about {lower.numbers['seeds_needed']} seeds per model" in lower.reason


def test_claims_inconclusive_with_one_training_seed(tmp_path):
    results = make_run(tmp_path, make_config(seeds=(0,)), GOOD)
    claims = {c.id: c for c in claimsmod.check_results(results)}
    assert claims["lower-fid"].verdict == "inconclusive"          # 20 FID apart, but one run each
    assert "one training run" in claims["lower-fid"].reason


def test_claims_not_tested_when_a_model_is_missing(tmp_path):
    cfg = make_config(models_=["stylegan2", "ganformer-simplex"])
    v = _verdicts(make_run(tmp_path, cfg, GOOD))
    assert v["lower-fid"] == "not tested"
    assert v["duplex-vs-simplex"] == "not tested"
    assert v["faster-ganformer-simplex"] in {"supported", "not supported", "inconclusive"}


def test_reach_interpolates_between_checkpoints():
    curve = [(0, 300.0), (2, 100.0), (4, 50.0)]
    assert claimsmod.reach(curve, 75.0) == pytest.approx(3.0)
    assert claimsmod.reach(curve, 300.0) == 0.0
    assert claimsmod.reach(curve, 10.0) is None


# ---------------------------------------------------------------------------- rendering

def _stage(tmp_path, cfg=None) -> tuple[Results, Path]:
    results = make_run(tmp_path / "results", cfg or make_config(), GOOD)
    published = load_published(PUBLISHED)
    write_tables(results, published, tmp_path / "results" / "tables")
    write_figures(results, tmp_path / "results" / "figures")
    tex = rendermod.render(results, published, TEMPLATE, BIB, tmp_path / "results" / "tables",
                           tmp_path / "results" / "figures", tmp_path / "results" / "report")
    return results, tex


def test_departures_from_the_official_code_are_listed_and_none_is_said_so(tmp_path):
    results, tex = _stage(tmp_path / "tiny")
    table = pd.read_csv(tmp_path / "tiny/results/tables/departures.csv")
    rows = {(r.Setting, r.Models): (str(r[3]), str(r[4])) for r in table.itertuples(index=False)}
    # one row for the three models: the same departure
    assert rows[("hparams.channel_max", ", ".join(map(model_label, MODELS)))] == ("512", "16")
    assert ("512", "16") == next(v for (k, m), v in rows.items() if k == "hparams.z_dim")
    assert "tab:departures" in tex.read_text()

    cfg = make_config()
    cfg["hparams"] = {}                       # the official networks and recipe
    results, tex = _stage(tmp_path / "official", cfg)
    assert len(pd.read_csv(tmp_path / "official/results/tables/departures.csv")) == 0
    text = tex.read_text()
    assert "No setting of this run departs" in text and "tables/departures.tex" not in text
    hparams = pd.read_csv(tmp_path / "official/results/tables/hparams.csv").set_index("Hyper-parameter")
    assert hparams.loc["Latent components", "This run"] == "16" and hparams.loc["Integration", "This run"] == "mul"


def test_released_checkpoints_table_names_each_protocol_beside_the_readme(tmp_path):
    cfg = make_config()
    cfg["pretrained"] = {"clevr-release": {"path": "x.pkl", "dataset": DATASET, "published": "CLEVR",
                                           "sha256": None, "size": None, "model": None, "resolution": None,
                                           "truncation": 1.0, "network": "Gs"}}
    results = make_run(tmp_path / "results", cfg, GOOD)
    for mode, fids in (("clean", [9.0, 10.0, 11.0]), ("legacy_tensorflow", [9.5, 9.7, 9.9])):
        path = tmp_path / "results/pretrained/clevr-release" / f"metrics-{mode}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = _measurement(DATASET, "ganformer-duplex", 0, 0, fids[0], False, None, num_gen=(50000,))
        record.update(fid_mode=mode, num_gen=[50000], truncation=1.0, source={"sha256": "ab" * 32},
                      noise={"seeds": [0, 1, 2], "fid50k": {"values": fids, "mean": float(np.mean(fids)),
                                                             "std": float(np.std(fids, ddof=1))}})
        path.write_text(json.dumps(record))
    published = load_published(PUBLISHED)
    write_tables(results, published, tmp_path / "results/tables")
    table = pd.read_csv(tmp_path / "results/tables/pretrained.csv")
    assert list(table["Protocol"]) == ["clean", "legacy_tensorflow"]
    assert table["FID"].tolist() == pytest.approx([10.0, 9.7])
    assert table["FID sd"].tolist() == pytest.approx([1.0, 0.2])
    readme = published["official_fid50k"]["models"]["ganformer"][0]          # CLEVR
    assert table["README FID-50k"].tolist() == [readme, readme]
    assert table["Difference"].tolist() == pytest.approx([10.0 - readme, 9.7 - readme])
    tex = (tmp_path / "results/tables/pretrained.tex").read_text()
    assert "clean-fid legacy TF" in tex and "10.00 ± 1.00 (3)" in tex
    write_figures(results, tmp_path / "results/figures")
    report = rendermod.render(results, published, TEMPLATE, BIB, tmp_path / "results/tables",
                              tmp_path / "results/figures", tmp_path / "results/report")
    assert "tab:pretrained" in report.read_text()
    if shutil.which("latexmk"):
        assert rendermod.compile_pdf(report).is_file()


def test_strict_undefined_fails_loudly(tmp_path):
    (tmp_path / "t.tex.j2").write_text(r"FID \VAR{fid|num} and \VAR{missing_value}" + "\n")
    env = rendermod.make_environment(tmp_path)
    with pytest.raises(Exception, match="missing_value"):
        env.get_template("t.tex.j2").render(fid=1.0)
    (tmp_path / "u.tex.j2").write_text("%% if x\n\\VAR{x.y}\n%% endif\n")
    with pytest.raises(Exception, match="y"):
        env.get_template("u.tex.j2").render(x={"z": 1})


def test_rendered_report_includes_only_existing_graphics(tmp_path):
    _, tex = _stage(tmp_path)
    text = tex.read_text()
    graphics = re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}", text)
    inputs = re.findall(r"\\input\{([^}]*)\}", text)
    assert len(graphics) >= 2 + 3 + 2 and len(inputs) == 11      # the departures table too (tiny widths)
    for rel in graphics + inputs:
        assert (tex.parent / rel).is_file(), rel
    assert r"\VAR" not in text and r"\BLOCK" not in text
    assert (tex.parent / "references.bib").exists()
    prose = re.sub(r"\\(includegraphics|input|label)(\[[^\]]*\])?\{[^}]*\}", "", text)
    assert "toy_set" not in prose.replace(r"toy\_set", "")       # escaped in the text (not in paths, labels)


def test_figures_are_deterministic(tmp_path):
    results = make_run(tmp_path / "results", make_config(), GOOD)
    write_figures(results, tmp_path / "a")
    write_figures(results, tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "fid_toy_set.pdf" in names and "samples_toy_set_ganformer-duplex.png" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    strip = np.asarray(Image.open(tmp_path / "a" / "samples_toy_set_stylegan2.png"))
    assert strip.shape == (3 * 8, 2 * 8, 3)               # one row of the 2x2 grid per checkpoint


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk is not installed (see README: TeX)")
def test_pdf_compiles(tmp_path):
    _, tex = _stage(tmp_path)
    pdf = rendermod.compile_pdf(tex)
    assert pdf == tex.with_suffix(".pdf") and pdf.read_bytes()[:5] == b"%PDF-"
    log = (tex.parent / ".build" / "report.log").read_text(errors="replace")
    assert not re.search(r"Citation .* undefined", log)
    assert "There were undefined references" not in log


def test_cli_commands_run_end_to_end(tmp_path):
    cfg = make_config()
    make_run(tmp_path / "results", cfg, GOOD)
    commands = ganrepro_main.commands
    runner = CliRunner()
    args = ["--config-json", json.dumps(cfg), "--results", str(tmp_path / "results")]
    for name, extra in (("tables", ["--published", str(PUBLISHED)]), ("figures", [])):
        done = runner.invoke(commands[name], args + extra)
        assert done.exit_code == 0, done.output
    done = runner.invoke(commands["render"], args + ["--template", str(TEMPLATE), "--bib", str(BIB),
                                                     "--published", str(PUBLISHED)])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "results" / "report" / "report.tex").exists()


def test_compile_without_tex_says_how_to_get_the_pdf(tmp_path, monkeypatch):
    tex = tmp_path / "report.tex"
    tex.write_text("\\documentclass{article}\\begin{document}x\\end{document}\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))          # no latexmk on this PATH
    with pytest.raises(ReportError, match="latexmk is not installed.*apt-get install"):
        rendermod.compile_pdf(tex)
    assert not tex.with_suffix(".pdf").exists()


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk is not installed (see README: TeX)")
def test_failed_compile_leaves_no_pdf(tmp_path):
    tex = tmp_path / "report.tex"
    tex.with_suffix(".pdf").write_bytes(b"%PDF- an old one")
    tex.write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n")
    with pytest.raises(ReportError, match="latexmk failed"):
        rendermod.compile_pdf(tex, timeout=SAFETY_TIMEOUT)
    assert not tex.with_suffix(".pdf").exists()


def test_claims_not_tested_when_fid_was_not_measured(tmp_path):
    results = make_run(tmp_path, make_config(), GOOD)
    for path in (tmp_path / "metrics").rglob("kimg000004.json"):
        raw = json.loads(path.read_text())
        raw["metrics"] = {k: v for k, v in raw["metrics"].items() if not k.startswith("fid")}
        path.write_text(json.dumps(raw))
    v = _verdicts(results)
    assert v["lower-fid"] == "not tested" and v["faster-ganformer-duplex"] == "not tested"
    assert v["attention-cost-ganformer-duplex"] == "supported"      # throughput does not need FID


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_marks_a_modified_checkout(tmp_path):
    import subprocess

    from ganrepro import machine

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                       check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "f.txt").write_text("a\n")
    git("add", "f.txt")
    git("commit", "-q", "-m", "one")
    clean = machine.git_commit(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", clean)
    (tmp_path / "f.txt").write_text("b\n")
    assert machine.git_commit(tmp_path) == clean + "-dirty"
    assert machine.short_commit(clean + "-dirty") == clean[:12] + "-dirty"

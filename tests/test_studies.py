"""Studies (config `studies:`): the expansion into points, the one-sentence checks, the nested
subsets, the report's verdicts, and (slow) a small studies config run end to end under
Snakemake, with its rerun behaviour."""

import copy
import json
import re

import numpy as np
import pytest
import yaml

from conftest import BIN, REPO, prepare_shapes, run
from ganrepro import layout
from ganrepro.errors import ConfigError, DataError
from ganrepro.report import statistics as st
from ganrepro.report import studies as report_studies
from ganrepro.report.claims import INCONCLUSIVE, NOT_TESTED, SUPPORTED
from ganrepro.settings import config, hparams, presets, studies
from ganrepro.settings.registry import MODELS
from ganrepro.settings.schema import schema

BASE = {
    "seeds": [0, 1],
    "datasets": {"tiny": {"source": "shapes", "resolution": 16, "num_images": 64}},
    "models": ["stylegan2", "ganformer-duplex"],
    "hparams": {m: {"channel_base": 128, "channel_max": 16} for m in ("stylegan2", "ganformer-duplex")},
    "kimg": [1],
}


def resolved(study_section):
    return config.resolve({**copy.deepcopy(BASE), "studies": study_section})


def error(study_section) -> str:
    with pytest.raises(ConfigError) as err:
        resolved(study_section)
    return str(err.value)


# ---------------------------------------------------------------------------- expansion

def test_each_value_is_a_point_with_the_config_of_its_runs():
    cfg = resolved({"k": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"components": [4, 8]},
                          "seeds": [3], "kimg": [2, 4], "train": {"r1_gamma": 0.5}}})
    points = studies.expand(cfg)
    assert [p.name for p in points] == ["components-4", "components-8"]
    for p, k in zip(points, (4, 8)):
        assert p.models == ("ganformer-duplex",) and p.seeds == (3,) and p.kimg == (2, 4)
        assert p.config["models"] == ["ganformer-duplex"] and p.config["studies"] == {}
        # the value wins over the top level and the preset: effective_run sees it
        train, hp = presets.effective(p.config, "tiny")
        assert hp["ganformer-duplex"]["components"] == k and hp["ganformer-duplex"]["channel_max"] == 16
        assert train["r1_gamma"] == 0.5
    # the config itself is untouched: the main runs keep their settings
    assert "hparams" not in cfg["datasets"]["tiny"] or not cfg["datasets"]["tiny"]["hparams"]


def test_study_seeds_and_kimg_default_to_the_top_level_and_studies_are_off_by_default():
    assert config.resolve(copy.deepcopy(BASE))["studies"] == {}
    assert studies.expand(config.resolve(copy.deepcopy(BASE))) == []
    p = studies.expand(resolved({"d": {"dataset": "tiny", "models": ["stylegan2"], "vary": {"fraction": [0.5, 1]}}}))
    assert [x.name for x in p] == ["fraction-0.5", "fraction-1"]
    assert p[0].seeds == (0, 1) and p[0].kimg == (1,) and p[0].subset and not p[1].subset
    assert p[0].kind == studies.DATA_EFFICIENCY


def test_an_attention_range_sets_start_and_end_res():
    p = studies.expand(resolved({"a": {"dataset": "tiny", "models": ["ganformer-duplex"],
                                       "vary": {"attention_resolutions": [[4, 8], [4, 16]]}}}))
    assert [x.name for x in p] == ["attention_resolutions-4-8", "attention_resolutions-4-16"]
    assert presets.effective(p[0].config, "tiny")[1]["ganformer-duplex"]["end_res"] == 8


def test_the_study_schema_repeats_the_registry_and_the_recipe_keys():
    study = schema()["$defs"]["study"]["properties"]
    assert study["hparams"]["propertyNames"]["enum"] == list(MODELS)
    assert study["train"]["propertyNames"]["enum"] == list(presets.RECIPE_KEYS)


# ---------------------------------------------------------------------------- one sentence per mistake

@pytest.mark.parametrize("section, words", [
    ({"d": {"dataset": "tiny", "models": ["stylegan2"], "vary": {"fraction": [0, 0.5]}}},
     ["'studies.d.vary.fraction[0]'", "> 0"]),
    ({"d": {"dataset": "tiny", "models": ["stylegan2"], "vary": {"fraction": [1.5]}}},
     ["'studies.d.vary.fraction[0]'", "<= 1"]),
    ({"d": {"dataset": "tiny", "models": ["stylegan2"], "vary": {"fraction": []}}},
     ["'studies.d.vary.fraction'", "must not be empty"]),
    ({"d": {"dataset": "tiny", "models": ["stylegan2"], "vary": {}}}, ["'studies.d.vary'", "must not be empty"]),
    ({"d": {"dataset": "nope", "models": ["stylegan2"], "vary": {"fraction": [0.5]}}},
     ["'studies.d.dataset'", "allowed: a name under 'datasets' (tiny)"]),
    ({"d": {"dataset": "tiny", "models": ["stylegan3"], "vary": {"fraction": [0.5]}}},
     ["'studies.d.models[0]'", "allowed: stylegan2, ganformer-simplex"]),
    ({"k": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"colour": [1]}}},
     ["'studies.k.vary.colour'", "allowed: fraction, attention_resolutions", "components"]),
    ({"k": {"dataset": "tiny", "models": ["ganformer-duplex", "stylegan2"], "vary": {"components": [4]}}},
     ["'studies.k.vary.components'", "model stylegan2 has no hyper-parameter components"]),
    ({"k": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"components": [4, 0]}}},
     ["'studies.k.vary.components[1]'", "must be >= 1"]),
    ({"k": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"components": [100000]}}},
     ["'studies.k.vary.components[0]'", f"must be <= {hparams.HPARAM_MAXIMA['components']}"]),
    ({"k": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"integration": ["mul", "sum"]}}},
     ["'studies.k.vary.integration[1]'", "allowed: add, mul, both"]),
    ({"k": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"components": [4], "heads": [1]}}},
     ["'studies.k.vary'", "exactly one"]),
    ({"a": {"dataset": "tiny", "models": ["stylegan2"], "vary": {"attention_resolutions": [[4, 8]]}}},
     ["'studies.a.vary.attention_resolutions'", "no attention"]),
    ({"a": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"attention_resolutions": [[16, 8]]}}},
     ["'studies.a.vary.attention_resolutions[0]'", "must not exceed"]),
    ({"a": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"attention_resolutions": [[32, 64]]}}},
     ["study 'a'", "'studies.a.vary.attention_resolutions[0]'", "no attention layer"]),
    ({"a": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"heads": [3]}}},
     ["'studies.a.vary.heads[0]'", "must divide"]),
])
def test_a_bad_study_is_one_sentence_naming_its_key(section, words):
    message = error(section)
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, (word, message)


# ---------------------------------------------------------------------------- subsets

def test_subsets_are_nested_deterministic_and_recorded(tmp_path):
    from ganrepro.data.store import open_images, read_manifest
    from ganrepro.data.subsets import indices_sha256, make_subset, subset_indices

    parent = prepare_shapes(tmp_path / "tiny", 8, 40)
    made = {f: make_subset(parent, f, tmp_path / f"f{f}") for f in (0.1, 0.25, 0.5, 1.0)}
    assert [made[f].count for f in (0.1, 0.25, 0.5, 1.0)] == [4, 10, 20, 40]
    pixels = open_images(parent)
    sets = {}
    for f, manifest in made.items():
        idx = subset_indices(40, f)
        assert manifest.subset["indices_sha256"] == indices_sha256(idx)
        assert manifest.subset["parent_images_sha256"] == read_manifest(parent).images_sha256
        assert manifest.name == "tiny" and read_manifest(tmp_path / f"f{f}").count == len(idx)
        assert np.array_equal(open_images(tmp_path / f"f{f}"), pixels[idx])      # the parent's pixels, in order
        sets[f] = set(idx.tolist())
    assert sets[0.1] < sets[0.25] < sets[0.5] < sets[1.0] == set(range(40))
    # the same subset again, byte for byte; another fraction has another checksum
    again = make_subset(parent, 0.25, tmp_path / "again")
    assert again.images_sha256 == made[0.25].images_sha256 != made[0.5].images_sha256
    with pytest.raises(DataError, match=r"\(0, 1\]"):
        make_subset(parent, 0.0, tmp_path / "zero")


def test_the_subset_command_writes_a_prepared_dataset(tmp_path):
    parent = prepare_shapes(tmp_path / "tiny", 8, 20)
    proc = run([str(BIN / "ganrepro"), "data", "subset", "--data", str(parent), "--fraction", "0.5",
                "--out", str(tmp_path / "half")])
    assert "10 of 20 images" in proc.stdout
    bad = run([str(BIN / "ganrepro"), "data", "subset", "--data", str(parent), "--fraction", "2",
               "--out", str(tmp_path / "x")], check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


# ---------------------------------------------------------------------------- verdicts

def _study(section, fid):
    """A report Study of `section` with FID values fid[point index][model][seed]."""
    cfg = resolved(section)
    points = studies.expand(cfg)
    return report_studies.Study(points[0].study, points, "8", fid=fid), cfg


def test_the_data_efficiency_verdict_compares_the_rises_of_fid():
    section = {"d": {"dataset": "tiny", "models": ["stylegan2", "ganformer-duplex"],
                     "vary": {"fraction": [0.25, 1.0]}, "seeds": [0, 1, 2]}}
    # StyleGAN2 rises by about 30, the GANformer by about 5
    fid = {0: {"stylegan2": {0: 80.0, 1: 82.0, 2: 79.0}, "ganformer-duplex": {0: 55.0, 1: 56.0, 2: 54.5}},
           1: {"stylegan2": {0: 50.0, 1: 51.0, 2: 49.0}, "ganformer-duplex": {0: 50.0, 1: 50.5, 2: 49.5}}}
    study, cfg = _study(section, fid)
    (claim,) = report_studies.verdicts(study, 16)
    assert claim.verdict == SUPPORTED and claim.id == "study-d-ganformer-duplex"
    rises = claim.numbers["per_seed"]
    assert rises["stylegan2"] == {0: 30.0, 1: 31.0, 2: 30.0}
    expected = st.difference(list(rises["ganformer-duplex"].values()), list(rises["stylegan2"].values()))
    assert claim.numbers["difference"] == pytest.approx(expected.estimate)
    assert claim.numbers["interval"] == [pytest.approx(expected.low), pytest.approx(expected.high)]
    # without StyleGAN2 the claim cannot be tested
    section["d"]["models"] = ["ganformer-duplex"]
    study, _ = _study(section, {i: {"ganformer-duplex": v["ganformer-duplex"]} for i, v in fid.items()})
    assert report_studies.verdicts(study, 16)[0].verdict == NOT_TESTED


def test_attention_range_verdict_and_no_verdict_without_a_stated_direction():
    section = {"a": {"dataset": "tiny", "models": ["ganformer-duplex"],
                     "vary": {"attention_resolutions": [[4, 8], [4, 16]]}, "seeds": [0]}}
    study, _ = _study(section, {0: {"ganformer-duplex": {0: 60.0}}, 1: {"ganformer-duplex": {0: 50.0}}})
    (claim,) = report_studies.verdicts(study, 16)
    assert claim.numbers["better"] == "4-16" and claim.verdict == INCONCLUSIVE       # one seed: no interval
    k = {"k": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"components": [4, 8]}}}
    study, _ = _study(k, {0: {"ganformer-duplex": {0: 1.0, 1: 2.0}}, 1: {"ganformer-duplex": {0: 1.0, 1: 2.0}}})
    assert report_studies.verdicts(study, 16) == []


def test_published_values_are_looked_up_by_value_label_or_image_count():
    cfg = resolved({"d": {"dataset": "tiny", "models": ["stylegan2"], "vary": {"fraction": [0.25, 1.0]}}})
    small, full = studies.expand(cfg)
    block = {"values": {"stylegan2": {0.25: 40.0, 64: None}}}
    assert report_studies.published_value(block, "stylegan2", small, 16) == 40.0
    assert report_studies.published_value(block, "stylegan2", full, 64) is None
    assert report_studies.published_value(None, "stylegan2", full, 64) is None
    assert report_studies.published_block({"studies": None}, "data_efficiency") is None


# ---------------------------------------------------------------------------- end to end (slow)

TINY = {
    **copy.deepcopy(BASE),
    "train": {"batch_size": 8, "tick_kimg": 1, "state_kimg": 1, "num_workers": 0, "grid": 2, "segments": False},
    "metrics": {"num_gen": 8, "final_num_gen": None, "num_real": 16, "repeats": 1, "batch_size": 8, "device": "cpu"},
    "studies": {
        "data": {"dataset": "tiny", "models": ["stylegan2", "ganformer-duplex"], "vary": {"fraction": [0.5, 1.0]}},
        "k": {"dataset": "tiny", "models": ["ganformer-duplex"], "vary": {"components": [4, 8]}},
    },
}


def _snakemake(work, *args, config="config.yaml", check=True):
    return run([str(BIN / "snakemake"), *args, "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "2",
                "--configfile", str(work / config)], check=check, timeout=1500)


def _planned(work, cfg) -> dict[str, int]:
    (work / "edited.yaml").write_text(yaml.safe_dump(cfg))
    proc = _snakemake(work, "report", "-n", "--quiet", "rules", config="edited.yaml")
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", proc.stdout + proc.stderr, re.M)
            if m.group(1) != "total"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    work = tmp_path_factory.mktemp("studies")
    (work / "config.yaml").write_text(yaml.safe_dump(TINY))
    plan = _planned(work, TINY)
    _snakemake(work, "report")
    return work, plan


def test_the_paper_config_plans_every_study_point_model_and_seed(tmp_path):
    """config/paper.yaml's studies, planned by `snakemake -n`: one training job per snapshot of
    every point x model x seed (and one evaluation, at the last kimg), as settings.studies
    expands them; the README states the total."""
    points = studies.expand(config.load(REPO / "config/paper.yaml"))
    assert {p.study for p in points} >= {"data-efficiency", "components", "attention-resolutions", "integration"}, points
    proc = run([str(BIN / "snakemake"), "report", "-n", "--quiet", "rules", "-s", str(REPO / "Snakefile"),
                "-d", str(tmp_path), "--cores", "1", "--configfile", str(REPO / "config/paper.yaml")])
    plan = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", proc.stdout + proc.stderr, re.M)}
    assert plan["study_train"] == sum(len(p.models) * len(p.seeds) * len(p.kimg) for p in points), plan
    assert plan["study_evaluate"] == sum(len(p.models) * len(p.seeds) for p in points), plan
    gpu_jobs = sum(n for rule, n in plan.items() if rule in {"train", "evaluate", "real_stats", "bench_throughput",
                                                                "study_train", "study_evaluate"})
    assert f"plans {gpu_jobs} GPU jobs" in (REPO / "README.md").read_text()


@pytest.mark.slow
def test_the_studies_expand_into_one_job_per_point_model_and_seed(finished):
    _, plan = finished
    seeds = len(TINY["seeds"])
    runs = 2 * 2 * seeds + 2 * 1 * seeds          # data: 2 fractions x 2 models; k: 2 values x 1 model
    assert plan["study_train"] == runs and plan["study_evaluate"] == runs, plan
    assert plan["subset_dataset"] == 1 and plan["prepare_dataset"] == 1, plan      # one fraction below 1


@pytest.mark.slow
def test_the_report_has_the_study_sections_and_verdicts(finished):
    work, _ = finished
    results = work / "results"
    for study in ("data", "k"):
        assert (results / f"tables/study_{study}.csv").is_file() and (results / f"figures/study_{study}.pdf").is_file()
    subset = json.loads((results / "subsets/tiny/fraction-0.5/dataset.json").read_text())
    assert subset["count"] == 32 and subset["subset"]["parent_count"] == 64
    claims = {c["id"]: c for c in json.loads((results / "tables/claims.json").read_text())}
    data = claims["study-data-ganformer-duplex"]
    assert data["numbers"]["study"] == "data" and len(data["numbers"]["interval"]) == 2
    # the rise per seed is the metrics files' FID at fraction 0.5 minus at 1.0
    for model in ("stylegan2", "ganformer-duplex"):
        for seed in TINY["seeds"]:
            fid = [json.loads(open(layout.metrics("tiny", model, seed, 1, root=layout.study_root(
                "data", f"fraction-{f}", root=str(results)))).read())["metrics"]["fid8"] for f in ("0.5", "1.0")]
            assert data["numbers"]["per_seed"][model][str(seed)] == pytest.approx(fid[0] - fid[1])
    tex = (results / "report/report.tex").read_text()
    assert "\\section{Studies}" in tex and "study_data" in tex and "study_k" in tex
    assert "states no direction" in tex                         # the k study: figure and table, no verdict


@pytest.mark.slow
def test_editing_one_point_reruns_only_that_points_jobs(finished):
    work, _ = finished
    assert _planned(work, TINY).keys() <= set()                   # nothing to do
    report_rules = {"tables", "figures", "render_report", "compile_pdf", "report"}
    cfg = copy.deepcopy(TINY)
    cfg["studies"]["k"]["vary"]["components"] = [4, 6]                   # one value edited
    plan = _planned(work, cfg)
    assert set(plan) - report_rules == {"study_train", "study_evaluate"}, plan
    assert plan["study_train"] == len(TINY["seeds"]) == plan["study_evaluate"], plan
    cfg = copy.deepcopy(TINY)
    cfg["studies"]["data"]["vary"]["fraction"] = [0.25, 0.5, 1.0]        # one fraction added
    plan = _planned(work, cfg)
    assert set(plan) - report_rules == {"subset_dataset", "study_train", "study_evaluate"}, plan
    assert plan["study_train"] == 2 * len(TINY["seeds"]) and plan["subset_dataset"] == 1, plan

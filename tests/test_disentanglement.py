"""Disentanglement scores (DCI, modularity) on codes whose answer is known, the colour
segmenter on rendered `shapes` scenes whose objects are known, the paper's numbers in
config/published.yaml, and the measurement of a real (untrained) generator."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from ganrepro.data import shapes
from ganrepro.errors import MetricsError
from ganrepro.metrics import disentanglement as dm

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def factors():
    return np.random.default_rng(0).normal(size=(1000, 5))


def test_a_code_equal_to_the_factors_is_perfectly_disentangled(factors):
    r = dm.dci(factors, factors)
    assert r.disentanglement > 0.99 and r.completeness > 0.99 and r.informativeness > 0.99
    assert dm.modularity(factors, factors) > 0.98


def test_a_factor_seen_in_a_handful_of_images_is_no_factor(factors):
    """A colour drawn in 2 of 1,000 images: left out (it would put the held-out R^2 near
    -1e30, as a generator that almost never draws a colour did), the rest scored as before."""
    rare = np.zeros((len(factors), 1))
    rare[[10, 900]] = 1e-3
    with_rare = np.hstack([factors, rare])
    assert dm.usable_factors(with_rare).tolist() == [True] * factors.shape[1] + [False]
    r, plain = dm.dci(factors, with_rare), dm.dci(factors, factors)
    assert r.informativeness == pytest.approx(plain.informativeness) and r.informativeness > 0.99
    assert dm.modularity(factors, with_rare) == pytest.approx(dm.modularity(factors, factors))


def test_a_code_unrelated_to_the_factors_scores_near_zero(factors):
    codes = np.random.default_rng(1).normal(size=(1000, 40))
    r = dm.dci(codes, factors)
    assert r.disentanglement < 0.1 and r.completeness < 0.1 and abs(r.informativeness) < 0.05
    assert dm.modularity(codes, factors) < 0.5


def test_permuting_and_rescaling_the_code_changes_nothing(factors):
    rng = np.random.default_rng(2)
    codes = factors @ rng.normal(size=(5, 5)) + 0.3 * rng.normal(size=(1000, 5))
    perm = rng.permutation(5)
    a, b = dm.dci(codes, factors), dm.dci(codes[:, perm] * 3.0 + 1.0, factors)
    assert (a.disentanglement, a.completeness, a.informativeness) == pytest.approx(
        (b.disentanglement, b.completeness, b.informativeness), abs=1e-6)
    np.testing.assert_allclose(a.importance[perm], b.importance, atol=1e-6)
    assert dm.modularity(codes, factors) == pytest.approx(dm.modularity(codes[:, perm], factors), abs=1e-12)


def test_a_mixed_code_is_informative_but_not_disentangled(factors):
    codes = factors @ np.random.default_rng(3).normal(size=(5, 5))
    r = dm.dci(codes, factors)
    assert r.informativeness > 0.9
    assert r.disentanglement < 0.6 and r.completeness < 0.6


def test_a_factor_split_over_two_codes_loses_exactly_the_completeness_it_should(factors):
    """Each factor held twice: every code still informs about one factor (D = 1), but each
    factor spreads evenly over two of ten codes, so C = 1 - log 2 / log 10."""
    r = dm.dci(np.repeat(factors, 2, axis=1), factors)
    assert r.disentanglement == pytest.approx(1.0, abs=1e-9)
    assert r.completeness == pytest.approx(1 - np.log(2) / np.log(10), abs=1e-9)


def test_dci_from_importance_known_matrices():
    assert dm.dci_from_importance(np.eye(4)) == pytest.approx((1.0, 1.0))
    assert dm.dci_from_importance(np.ones((4, 4))) == pytest.approx((0.0, 0.0))
    assert dm.dci_from_importance(np.zeros((3, 2))) == (0.0, 0.0)
    # One code informs about both factors equally, the other about the first only.
    d, c = dm.dci_from_importance(np.array([[1.0, 1.0], [2.0, 0.0]]))
    assert d == pytest.approx(0.5)            # weights 1/2 and 1/2, scores 0 and 1
    # Factor 1 spreads 1:2 over the codes, factor 2 sits in code 1 alone.
    h = -(1 / 3) * np.log(1 / 3) - (2 / 3) * np.log(2 / 3)
    assert c == pytest.approx(((1 - h / np.log(2)) + 1.0) / 2)


@pytest.mark.parametrize("codes, factors, words", [
    (np.zeros((20, 3)), np.zeros((19, 2)), "same N"),
    (np.zeros((5, 3)), np.zeros((5, 2)), "at least 10"),
    (np.full((20, 3), np.nan), np.ones((20, 2)), "NaN"),
    (np.random.default_rng(0).normal(size=(20, 3)), np.ones((20, 2)), "no factor varies"),
])
def test_bad_inputs_get_one_clear_error(codes, factors, words):
    with pytest.raises(MetricsError, match=words):
        dm.dci(codes, factors)


def _single_object(i: int, res: int = 32):
    """Scene i with exactly one object, and that object's colour name."""
    img = shapes.render(i, res, 0, 1, 1, "mixed")
    rng = np.random.default_rng(np.random.SeedSequence([0, i]))
    shapes._background(rng, res * shapes._supersampling(res), "mixed")     # same draws as render
    return img, list(shapes.COLOURS)[shapes._scene(rng, 1, 1)[0]["colour"]]


def test_the_colour_segmenter_names_the_colour_of_rendered_objects():
    hits = checked = 0
    for i in range(120):
        img, colour = _single_object(i)
        areas = dm.colour_areas(img[None])[0]
        if colour == "gray":                   # gray is no class: nothing may be found
            assert areas.sum() < 0.01
            continue
        checked += 1
        k = dm.FACTOR_NAMES.index(colour)
        assert areas.argmax() == k, (i, colour, areas)
        hits += areas[k] >= 0.7 * areas.sum()
    assert checked > 80 and hits >= 0.9 * checked


def test_the_colour_segmenter_finds_nothing_on_an_empty_table():
    img = shapes.render(0, 32, 0, 0, 0, "mixed")
    assert dm.colour_areas(img[None]).sum() == 0
    with pytest.raises(MetricsError, match="RGB"):
        dm.colour_areas(np.zeros((2, 8, 8)))


def test_areas_grow_with_the_objects_drawn():
    """More objects in a scene cover more coloured area, on average (a sanity check of
    the factors against what the renderer put there)."""
    one = dm.colour_areas(np.stack([shapes.render(i, 32, 0, 1, 1, "plain") for i in range(60)])).sum(1)
    four = dm.colour_areas(np.stack([shapes.render(i, 32, 0, 4, 4, "plain") for i in range(60)])).sum(1)
    assert four.mean() > 2 * one.mean()


def test_published_holds_the_papers_studies_and_disentanglement_with_their_sources():
    published = yaml.safe_load((REPO / "config" / "published.yaml").read_text())
    sources = published["sources"]
    for kind, study in published["studies"].items():
        assert study["source"] in sources, kind
        assert {"where", "dataset", "metric", "approximate", "claim", "values"} <= set(study), kind
        assert isinstance(study["values"], dict) and isinstance(study["approximate"], bool), kind
        for model, points in study["values"].items():
            assert all(v is None or isinstance(v, (int, float)) for v in points.values()), (kind, model)
    # Plot-only values are null, never guessed; the table values are the paper's Table 1.
    assert all(v is None for pts in published["studies"]["data_efficiency"]["values"].values() for v in pts.values())
    assert published["studies"]["duplex"]["values"]["ganformer"] == {"simplex": 10.26, "duplex": 9.17}
    block = published["disentanglement"]
    assert block["source"] in sources and block["images"] == 1000
    assert block["models"]["ganformer-duplex"]["disentanglement"] == 0.768
    assert block["models"]["stylegan2"]["disentanglement"] == 0.208
    for model, row in block["models"].items():
        assert list(row) == block["columns"], model


def test_measure_scores_a_real_generator():
    """An untrained StyleGAN2 run end to end: latents, images, colour areas, scores.
    Untrained, it draws coloured noise, not objects: the record must still be well
    formed, with one code per z value and an area for every colour class."""
    import torch

    from ganrepro.models import build_generator

    torch.manual_seed(0)
    G = build_generator("stylegan2", resolution=16, channel_base=64, channel_max=16).eval()
    from ganrepro.metrics.evaluate import measure_disentanglement

    record = measure_disentanglement(G, 60, seed=0, batch_size=30, device="cpu")
    assert record["num_images"] == 60 and record["codes"] == int(np.prod(G.z_shape))
    for key in ("disentanglement", "completeness", "informativeness", "modularity"):
        assert np.isfinite(record[key])
    assert set(record["mean_area"]) == set(dm.FACTOR_NAMES)


def test_the_command_scores_a_ganformer_snapshot_and_refuses_a_missing_one(tmp_path):
    """`ganrepro disentanglement` on a real (untrained) GANformer snapshot: the codes are
    its k local components and the global one, flattened."""
    import json

    import torch
    from click.testing import CliRunner

    from ganrepro import models
    from ganrepro.cli import main

    torch.manual_seed(0)
    net = models.build("ganformer-simplex", resolution=16, channel_base=256, channel_max=16,
                       components=4, mapping_layers=2)
    models.save_snapshot(tmp_path / "g.pt", net.G.eval(), "ganformer-simplex", net.hparams, kimg=3)
    out = tmp_path / "d.json"
    result = CliRunner().invoke(main, ["disentanglement", "--snapshot", str(tmp_path / "g.pt"), "--out", str(out),
                                       "--num-images", "40", "--batch-size", "20", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["model"] == "ganformer-simplex" and record["kimg"] == 3 and record["num_images"] == 40
    assert record["codes"] == 5 * net.G.cfg.z_dim
    assert 0 <= record["disentanglement"] <= 1 and 0 <= record["completeness"] <= 1
    missing = CliRunner().invoke(main, ["disentanglement", "--snapshot", str(tmp_path / "none.pt"),
                                        "--out", str(out), "--device", "cpu"])
    assert missing.exit_code != 0 and "Traceback" not in missing.output


# ------------------------------------------------------------------ in the DAG and the report

def _metrics(n=1000, **extra):
    from ganrepro.settings.config import resolve

    return resolve({"datasets": {"d": {"source": "shapes"}},
                    "metrics": {"num_gen": 64, "disentanglement": n, **extra}})["metrics"]


def test_the_plan_scores_the_last_checkpoint_of_shapes_runs_only():
    from ganrepro import protocol

    on = _metrics()
    assert protocol.plan(on, protocol.LAST, "shapes").disentanglement == 1000
    for stage, source in ((protocol.CHECKPOINT, "shapes"), (protocol.RELEASED, "shapes"),
                          (protocol.LAST, "clevr"), (protocol.LAST, "cartoonset10k"), (protocol.LAST, None)):
        assert protocol.plan(on, stage, source).disentanglement is None, (stage, source)
    assert protocol.plan(_metrics(None), protocol.LAST, "shapes").disentanglement is None
    assert protocol.dci_name(1000) == "dci1k" and protocol.dci_name(250) == "dci250"
    # a job's params carry the count only where it is scored: switching it on or changing the
    # count reruns the last checkpoints of shapes runs and no other evaluation
    for stage in protocol.STAGES:
        for source in ("shapes", "clevr"):
            job = protocol.job_metrics(on, stage, source)
            assert protocol.plan(job, stage, source) == protocol.plan(on, stage, source)
            if stage != protocol.LAST or source != "shapes":
                assert job == protocol.job_metrics(_metrics(None), stage, source)
    assert protocol.job_metrics(_metrics(500), protocol.LAST, "shapes") != protocol.job_metrics(on, protocol.LAST,
                                                                                                "shapes")


def test_a_bad_count_gets_one_sentence_naming_the_key():
    from ganrepro.errors import ConfigError

    for bad in (5, "many", 2_000_000):
        with pytest.raises(ConfigError, match=r"metrics\.disentanglement") as err:
            _metrics(bad)
        assert "\n" not in str(err.value)


def test_the_default_config_scores_shapes_and_the_paper_config_scores_nothing():
    from ganrepro import protocol
    from ganrepro.settings.config import load

    default, paper = load(REPO / "config/config.yaml"), load(REPO / "config/paper.yaml")
    assert all(protocol.plan(default["metrics"], protocol.LAST, spec["source"]).disentanglement == 1000
               for spec in default["datasets"].values())
    assert all(protocol.plan(paper["metrics"], protocol.LAST, spec["source"]).disentanglement is None
               for spec in paper["datasets"].values())


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """`ganrepro evaluate` as the evaluate rule runs it on the last snapshot of a shapes run
    (its job config, planned by protocol.job_metrics): a real dataset, a real (untrained)
    GANformer, the real Inception network. Returns (metrics record, dataset folder)."""
    import json

    import torch
    from click.testing import CliRunner

    from ganrepro import data, models, protocol
    from ganrepro.cli import main
    from ganrepro.settings import config

    work = tmp_path_factory.mktemp("evaluate")
    spec = config.resolve_dataset("toy", {"source": "shapes", "resolution": 16, "num_images": 24})
    data.prepare("toy", spec, work / "toy")
    torch.manual_seed(0)
    net = models.build("ganformer-duplex", resolution=16, channel_base=256, channel_max=16, components=4,
                       mapping_layers=2)
    models.save_snapshot(work / "snapshot-000004.pt", net.G.eval(), "ganformer-duplex", net.hparams, kimg=4)
    metrics = _metrics(60, num_gen=12, final_num_gen=None, num_real=16, repeats=2, batch_size=20, device="cpu")
    job = {"datasets": {"toy": spec}, "kimg": [4],
           "metrics": protocol.job_metrics(metrics, protocol.LAST, spec["source"])}
    out = work / "kimg000004.json"
    result = CliRunner().invoke(main, ["evaluate", "--config-json", json.dumps(job), "--kimg", "4", "--snapshot",
                                       str(work / "snapshot-000004.pt"), "--dataset", "toy", "--data",
                                       str(work / "toy"), "--stats", str(work / "s.npz"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), work / "toy"


def test_the_last_checkpoints_metrics_json_carries_the_scores(evaluated):
    record, _ = evaluated
    entry = record["metrics"]["dci60"]
    assert set(entry) == set(dm.SCORE_NAMES)
    assert 0 <= entry["disentanglement"] <= 1 and 0 <= entry["completeness"] <= 1 and entry["modularity"] <= 1
    details = record["disentanglement"]
    assert details["num_images"] == 60 and details["seed"] == record["seed"] == 0
    assert details["codes"] == 5 * 32 and set(details["mean_area"]) == set(dm.FACTOR_NAMES)
    # scored once, at the first sampling seed: the sampling noise of FID is untouched
    assert set(record["noise"]) == {"seeds", "fid12", "kid12", "precision12", "recall12"}
    # the same scores as the standalone measurement of the same snapshot and seed
    from ganrepro.models import load_snapshot

    G, _ = load_snapshot(record["snapshot"], "cpu")
    from ganrepro.metrics.evaluate import measure_disentanglement

    again = measure_disentanglement(G, 60, seed=0, batch_size=20, device="cpu")
    assert {k: again[k] for k in dm.SCORE_NAMES} == pytest.approx(entry)


def test_evaluate_refuses_disentanglement_of_another_source(evaluated):
    import dataclasses

    from ganrepro.data import store
    from ganrepro.metrics.evaluate import check_disentanglement

    _, folder = evaluated
    manifest = store.read_manifest(folder)
    check_disentanglement(manifest)
    for other in (dataclasses.replace(manifest, source="cartoonset10k"), dataclasses.replace(manifest, channels=1)):
        with pytest.raises(MetricsError, match="reads the colours of RGB scenes of the source.s. shapes"):
            check_disentanglement(other)


def _report_run(tmp_path, entry, values):
    """A results/ tree as test_report builds it (metrics files in the evaluate format),
    with metrics.disentanglement on and, at each run's last checkpoint, the disentanglement
    entry `entry` (the real record's keys) holding values[model](seed)."""
    import json

    from test_report import make_config, make_run, GOOD

    cfg = make_config()
    cfg["metrics"]["disentanglement"] = 1000
    results = make_run(tmp_path / "results", cfg, GOOD)
    for model in cfg["models"]:
        for seed in cfg["seeds"]:
            path = results.metrics_path(results.datasets[0], model, seed, cfg["kimg"][-1])
            record = json.loads(path.read_text())
            record["metrics"]["dci1k"] = {**entry, **values[model](seed)}
            path.write_text(json.dumps(record))
    return results


def _render(tmp_path, results):
    from ganrepro.report import render as rendermod
    from ganrepro.report.figures import write_figures
    from ganrepro.report.inputs import load_published
    from ganrepro.report.tables import write_tables

    published = load_published(REPO / "config/published.yaml")
    write_tables(results, published, tmp_path / "tables")
    write_figures(results, tmp_path / "figures")
    return rendermod.render(results, published, REPO / "report/report.tex.j2", REPO / "report/references.bib",
                            tmp_path / "tables", tmp_path / "figures", tmp_path / "report")


def _scores(d, i, seed):
    return {"disentanglement": d + 0.01 * seed, "completeness": d / 2, "informativeness": i, "modularity": 0.8}


def test_the_report_decides_the_claim_and_sets_the_papers_table_beside_ours(evaluated, tmp_path):
    import json

    import pandas as pd

    entry = evaluated[0]["metrics"]["dci60"]
    values = {"stylegan2": lambda s: _scores(0.20, 0.30, s), "ganformer-simplex": lambda s: _scores(0.22, 0.30, s),
              "ganformer-duplex": lambda s: _scores(0.60, 0.40, s)}
    tex = _render(tmp_path, _report_run(tmp_path, entry, values))
    claims = {c["id"]: c for c in json.loads((tmp_path / "tables/claims.json").read_text())}
    duplex = claims["disentanglement-ganformer-duplex"]
    assert duplex["verdict"] == "supported"
    assert duplex["numbers"]["per_seed"]["ganformer-duplex"] == {"0": 0.6, "1": 0.61, "2": 0.62}
    assert duplex["numbers"]["difference"] == pytest.approx(0.4) and duplex["numbers"]["interval"][0] > 0
    assert duplex["numbers"]["p_improvement"] == 1.0
    # 0.22 vs 0.20 with the same seed-to-seed steps: a shift of 0.02 beside an sd of 0.01
    assert claims["disentanglement-ganformer-simplex"]["verdict"] in ("supported", "inconclusive")
    table = pd.read_csv(tmp_path / "tables/disentanglement.csv")
    duplex_row = table[table["Model"] == "GANformer duplex"].iloc[0]
    assert duplex_row["disentanglement mean"] == pytest.approx(0.61) and duplex_row["Runs"] == 3
    assert duplex_row["paper disentanglement"] == 0.768 and duplex_row["Images"] == 1000
    text = tex.read_text()
    assert r"\label{tab:disentanglement}" in text and "colour-area proxy" in text
    assert "Disentanglement, on a proxy" in text and "no segmentation network trained on CLEVR" in text
    assert "more disentangled than StyleGAN2" in text


def test_no_verdict_where_the_codes_do_not_predict_the_factors(evaluated, tmp_path):
    import json

    entry = evaluated[0]["metrics"]["dci60"]
    values = {"stylegan2": lambda s: _scores(0.20, 0.02, s), "ganformer-simplex": lambda s: _scores(0.5, 0.3, s),
              "ganformer-duplex": lambda s: _scores(0.60, 0.40, s)}
    _render(tmp_path, _report_run(tmp_path, entry, values))
    claims = {c["id"]: c for c in json.loads((tmp_path / "tables/claims.json").read_text())}
    for model in ("ganformer-duplex", "ganformer-simplex"):
        c = claims[f"disentanglement-{model}"]
        assert c["verdict"] == "not tested"
        assert c["reason"].startswith("not decidable: the codes do not predict the factors (I = ")
        assert "0.020 for StyleGAN2" in c["reason"]


def test_a_report_without_the_scores_says_why(tmp_path):
    """metrics.disentanglement null: no claim, no table in the text, the reason in the scope."""
    from test_report import make_config, make_run, GOOD

    tex = _render(tmp_path, make_run(tmp_path / "results", make_config(), GOOD))
    text = tex.read_text()
    assert "disentanglement" not in {c["id"].split("-")[0] for c in
                                     __import__("json").loads((tmp_path / "tables/claims.json").read_text())}
    assert r"\label{tab:disentanglement}" not in text
    assert "config key metrics.disentanglement is null" in text and "draws no verdict on this claim" in text

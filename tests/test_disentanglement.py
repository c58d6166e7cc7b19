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
    record = dm.measure(G, 60, seed=0, batch_size=30, device="cpu")
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

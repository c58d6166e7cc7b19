"""Per-dataset presets and overrides, and the departures from the official code a run records."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from ganrepro.settings import config as cfgmod
from ganrepro.settings import presets, registry
from ganrepro.errors import ConfigError
from ganrepro.training.loop import run_options
from ganrepro.data import prepare

GANFORMERS = ("ganformer-simplex", "ganformer-duplex")


def _cfg(**datasets):
    return cfgmod.resolve({"datasets": datasets, "train": {"r1_gamma": 5, "batch_size": 16},
                           "hparams": {"ganformer-duplex": {"heads": 2}}})


def test_the_source_names_the_preset_and_the_dataset_overrides_come_last():
    cfg = _cfg(clevr64={"source": "clevr", "resolution": 64},
               faces={"source": "folder", "path": "x", "resolution": 64, "preset": "ffhq",
                      "train": {"batch_size": 8}, "hparams": {"ganformer-duplex": {"components": 4}}},
               toys={"source": "shapes", "resolution": 16},
               beds={"source": "folder", "path": "y", "preset": "bedrooms", "train": {"r1_gamma": 1}})
    assert [cfg["datasets"][d]["preset"] for d in cfg["datasets"]] == ["clevr", "ffhq", "none", "bedrooms"]

    train, hp = presets.effective(cfg, "clevr64")          # preset over the top level
    assert (train["r1_gamma"], train["xflip"], train["batch_size"]) == (40, False, 16)
    for m in GANFORMERS:
        assert {k: hp[m][k] for k in ("components", "z_dim", "w_dim", "style", "mapping_ltnt2ltnt")} == \
            {"components": 8, "z_dim": 16, "w_dim": 16, "style": False, "mapping_ltnt2ltnt": False}
    assert hp["ganformer-duplex"]["heads"] == 2 and "stylegan2" not in hp   # the CLEVR shape is GANformer's

    train, hp = presets.effective(cfg, "faces")             # the dataset's own over its preset
    assert (train["r1_gamma"], train["xflip"], train["batch_size"]) == (10, True, 8)
    assert hp["ganformer-duplex"] == {"heads": 2, "components": 4}

    train, hp = presets.effective(cfg, "toys")              # none: the top level as it stands
    assert (train["r1_gamma"], train["xflip"]) == (5, False) and hp == {"ganformer-duplex": {"heads": 2}}

    assert presets.effective(cfg, "beds")[0]["r1_gamma"] == 1


def test_applying_a_dataset_twice_changes_nothing():
    cfg = _cfg(clevr64={"source": "clevr", "resolution": 64, "train": {"r1_gamma": 20}})
    once = presets.for_dataset(cfg, "clevr64")
    assert once["train"]["r1_gamma"] == 20                  # the dataset's own beats its preset's 40
    assert presets.for_dataset(once, "clevr64") == once


def test_preparing_a_dataset_does_not_depend_on_its_training_keys():
    cfg = _cfg(a={"source": "shapes", "resolution": 16, "preset": "ffhq", "train": {"r1_gamma": 3}})
    spec = presets.data_spec(cfg["datasets"]["a"])
    assert not set(presets.TRAINING_KEYS) & set(spec)
    assert spec == presets.data_spec(_cfg(a={"source": "shapes", "resolution": 16})["datasets"]["a"])


@pytest.mark.parametrize("entry, message", [
    ({"train": {"device": "cpu"}}, "'datasets.a.train.device' is not allowed; allowed keys in 'datasets.a.train': "
                                   "\"batch_size\""),
    ({"train": {"r1_gamma": -1}}, "'datasets.a.train.r1_gamma' must be >= 0 (got -1)"),
    ({"train": {"xflip": "yes"}}, "'datasets.a.train.xflip' must be true or false"),
    ({"preset": "celeba"}, "'datasets.a.preset' is \"celeba\"; allowed values: \"none\", \"ffhq\""),
    ({"hparams": {"ganformer-duplex": {"heads": 3}}}, "'datasets.a.hparams.ganformer-duplex.heads' (3) must divide"),
    ({"hparams": {"gan": {"bogus": 1}}}, "'datasets.a.hparams.gan': unknown hyper-parameter(s) for gan: bogus"),
    ({"hparams": {"stylegan2": {"mbstd_group": 3}}}, "hparams.stylegan2.mbstd_group = 3) (dataset 'a')"),
])
def test_a_bad_override_names_its_key(entry, message):
    with pytest.raises(ConfigError) as err:
        cfgmod.resolve({"datasets": {"a": {"source": "shapes", "resolution": 16, **entry}},
                        "train": {"batch_size": 16}})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def _full(model, resolution=64, **hparams):
    return dataclasses.asdict(registry.resolve_hparams(model, resolution=resolution, **hparams))


@pytest.mark.parametrize("preset", sorted(presets.PRESETS))
@pytest.mark.parametrize("model", ["stylegan2", *GANFORMERS])
def test_the_official_settings_have_no_departures(model, preset):
    """What a config with no train or hparams keys trains (paper.yaml's recipe) is the
    official code's, for every model and preset."""
    cfg = cfgmod.resolve({"datasets": {"d": {"source": "shapes", "preset": preset}}})
    train, hp = presets.effective(cfg, "d")
    assert presets.departures(model, preset, _full(model, **hp.get(model, {})), train, "fp32") == []


def test_departures_name_every_changed_setting():
    cfg = cfgmod.resolve({"datasets": {"d": {"source": "clevr", "resolution": 64,
                                             "train": {"r1_gamma": 10, "batch_size": 16}}}})
    train, hp = presets.effective(cfg, "d")
    full = _full("ganformer-duplex", **{**hp["ganformer-duplex"], "integration": "both", "duplex_keys": "centroids"})
    found = {d["key"]: (d["value"], d["official"]) for d in presets.departures("ganformer-duplex", "clevr", full,
                                                                                train, "bf16")}
    assert found == {"train.r1_gamma": (10, 40), "train.batch_size": (16, 32), "train.precision": ("bf16", "fp32"),
                     "hparams.integration": ("both", "mul"), "hparams.duplex_keys": ("centroids", "kmeans")}
    # The full-size GANformer on CLEVR departs from the CLEVR shape in every one of its keys.
    found = presets.departures("ganformer-simplex", "clevr", _full("ganformer-simplex"), train, "fp32")
    assert {d["key"] for d in found} >= {"hparams.components", "hparams.z_dim", "hparams.w_dim", "hparams.style",
                                         "hparams.mapping_ltnt2ltnt"}


def test_a_run_records_its_effective_settings(tmp_path):
    """The training options hold what the dataset's runs use, and the preset's name."""
    spec = cfgmod.resolve_dataset("faces", {"source": "shapes", "resolution": 16, "num_images": 8})
    prepare("faces", spec, tmp_path / "faces")
    cfg = cfgmod.resolve(yaml.safe_load("""
datasets:
  faces: {source: shapes, resolution: 16, num_images: 8, preset: cityscapes,
          hparams: {ganformer-duplex: {components: 4}}}
hparams: {ganformer-duplex: {channel_max: 16, components: 2}}
train: {batch_size: 8}
"""))
    options = run_options(cfg, tmp_path / "faces", "ganformer-duplex", 0)
    assert options["preset"] == "cityscapes"
    assert (options["train"]["r1_gamma"], options["train"]["xflip"], options["train"]["batch_size"]) == (20, True, 8)
    assert (options["hparams"]["components"], options["hparams"]["channel_max"]) == (4, 16)

"""Config validation: one clear sentence naming the key and what is allowed."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO, ganrepro, run, BIN
from ganrepro.settings import batch, config, schema
from ganrepro.data import SOURCES
from ganrepro.errors import ConfigError

BASE = {"datasets": {"toy": {"source": "shapes"}}}


def resolve(**changes):
    return config.resolve({**BASE, **changes})


@pytest.mark.parametrize("cfg, expected", [
    ({**BASE, "colour": 1}, ["unknown config key 'colour'", "allowed keys", "datasets", "kimg"]),
    ({**BASE, "seed": 0}, ["config key 'seed' was split in two", "'seeds'", "'metrics.seed'"]),
    ({**BASE, "seeds": []}, ["config key 'seeds' must not be empty"]),
    ({**BASE, "seeds": [0, 0]}, ["config key 'seeds' must not repeat values"]),
    ({**BASE, "seeds": 3}, ["config key 'seeds' must be a list"]),
    ({**BASE, "seeds": [-1]}, ["config key 'seeds[0]' must be >= 0"]),
    ({"datasets": {"toy": {"source": "shapes", "bogus": 2}}},
     ["unknown config key 'datasets.toy.bogus'", "num_images", "max_objects"]),
    ({"datasets": {"toy": {"source": "shapes", "resolution": 48}}},
     ["'datasets.toy.resolution' is 48", "allowed values: 8, 16, 32, 64, 128, 256"]),
    ({"datasets": {"toy": {"source": "shapes", "resolution": 512}}},
     ["'datasets.toy.resolution' must be <= 256"]),
    ({"datasets": {"toy": {"source": "shapes", "num_images": "many"}}},
     ["'datasets.toy.num_images' must be an integer", '"many"']),
    ({"datasets": {"toy": {"source": "pictures"}}},
     ["'datasets.toy.source' is \"pictures\"", '"shapes", "cartoonset10k", "cartoonset100k", "clevr", "folder"']),
    ({"datasets": {"Toy Set": {"source": "shapes"}}}, ["name \"Toy Set\" in 'datasets' is not allowed"]),
    ({**BASE, "kimg": [0, 8, 4]}, ["'kimg' must be strictly ascending", "[0, 8, 4]"]),
    ({**BASE, "kimg": [0, -4]}, ["'kimg[1]' must be >= 0 (got -4)"]),
    ({**BASE, "kimg": [4, 4]}, ["'kimg' must not repeat values"]),
    ({**BASE, "kimg": "8"}, ["'kimg' must be a list"]),
    ({**BASE, "models": ["stylegan3"]},
     ["'models[0]' is \"stylegan3\"", '"stylegan2", "ganformer-simplex", "ganformer-duplex", "gan"']),
    ({"datasets": {"mine": {"source": "folder"}}}, ["'datasets.mine' is missing required key(s): path"]),
    ({"datasets": {"mine": {"source": "folder", "path": "x", "url": "y"}}},
     ["unknown config key 'datasets.mine.url'", "crop"]),
    ({"datasets": {"toy": {"resolution": 64}}}, ["'datasets.toy' is missing required key(s): source"]),
    ({"datasets": {"toy": {"source": "shapes", "min_objects": 5, "max_objects": 2}}},
     ["'datasets.toy.min_objects' (5) must not exceed 'datasets.toy.max_objects' (2)"]),
    ({"datasets": {"c": {"source": "clevr", "sha256": "abc"}}},
     ["'datasets.c.sha256' must be 64 lower-case hexadecimal digits"]),
    ({"datasets": {}}, ["'datasets' must not be empty"]),
    ({}, ["missing required key(s): datasets"]),
])
def test_bad_config_gives_one_sentence_naming_the_key(cfg, expected):
    with pytest.raises(ConfigError) as info:
        config.resolve(cfg)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


def hp(model, **values):
    return {**BASE, "hparams": {model: values}}


@pytest.mark.parametrize("cfg, expected", [
    (hp("ganformer-simplex", components=0), ["config key 'hparams.ganformer-simplex.components' must be >= 1 (got 0)"]),
    (hp("stylegan2", z_dim=0), ["'hparams.stylegan2.z_dim' must be >= 1 (got 0)"]),
    (hp("gan", mbstd_group=0), ["'hparams.gan.mbstd_group' must be >= 1 (got 0)"]),
    (hp("stylegan2", mapping_lr_mul=0), ["'hparams.stylegan2.mapping_lr_mul' must be > 0 (got 0.0)"]),
    (hp("ganformer-duplex", attention_dropout=1), ["'hparams.ganformer-duplex.attention_dropout' must be >= 0 and < 1"]),
    (hp("ganformer-duplex", start_res=6), ["'hparams.ganformer-duplex.start_res' must be a power of two >= 4 (got 6)"]),
    (hp("ganformer-duplex", pos_dim=6), ["'hparams.ganformer-duplex.pos_dim' must be 0 (= w_dim, official) or a multiple of 4"]),
    (hp("ganformer-duplex", kmeans_iters=0), ["'hparams.ganformer-duplex.kmeans_iters' must be >= 1"]),
    (hp("ganformer-simplex", start_res=32, end_res=16),
     ["'hparams.ganformer-simplex.start_res' (32) must not exceed 'hparams.ganformer-simplex.end_res' (16)"]),
    (hp("ganformer-simplex", start_res=128),        # the dataset is 64 px
     ["'hparams.ganformer-simplex.start_res' (128) leaves no attention layer at dataset 'toy' (64 px); allowed: 64 or less"]),
    ({"datasets": {"toy": {"source": "shapes", "resolution": 16}},
      "hparams": {"ganformer-simplex": {"channel_base": 192, "channel_max": 32, "heads": 8}}},
     ["'hparams.ganformer-simplex.heads' (8) must divide the channels of every attention layer of dataset 'toy'",
      "(32 at 4 px, 24 at 8 px, 12 at 16 px); allowed: 1, 2 or 4"]),
    ({**BASE, "train": {"batch_size": 2}},        # below the minibatch-std group (4 by default)
     ["config key 'train.batch_size' (2) gives 2 images, not a multiple of the minibatch-std group of stylegan2 "
      "(hparams.stylegan2.mbstd_group = 4); allowed, for example: 4"]),
    ({**BASE, "train": {"batch_size": 6}}, ["'train.batch_size' (6) gives 6 images", "allowed, for example: 4, 8"]),
    ({**BASE, "models": ["stylegan2"], "hparams": {"stylegan2": {"mbstd_group": 3}}, "kimg": [0, 1],
      "train": {"batch_size": 6}},                # 1000 = 166 x 6 + 4: the last batch before kimg 1 has 4
     ["'train.batch_size' (6) leaves a batch of 4 images before a snapshot (kimg [0, 1]): neither below nor a "
      "multiple of the minibatch-std group of stylegan2 (3)"]),
])
def test_out_of_range_hyper_parameter_gives_one_sentence_naming_the_key(cfg, expected):
    with pytest.raises(ConfigError) as info:
        config.resolve(cfg)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, message


def test_batch_split_over_processes_never_drops_images():
    # 1000 images between snapshots cannot be shared by 3 processes, whatever the batch.
    with pytest.raises(ConfigError, match=r"config key 'kimg' \(\[0, 1\]\) under 3 processes puts 1000 images before "
                                          r"kimg 1, .* allowed: steps between snapshots that are multiples of 3 kimg"):
        batch.check_batch(24, [0, 1], {"stylegan2": 4}, world=3)
    batch.check_batch(24, [0, 3], {"stylegan2": 4}, world=3)
    with pytest.raises(ConfigError, match=r"\(12\) under 2 processes gives 6 images per process, not a multiple of "
                                          r"the minibatch-std group of stylegan2 .*; allowed, for example: 8, 16"):
        batch.check_batch(12, [0, 1], {"stylegan2": 4}, world=2)
    with pytest.raises(ConfigError, match=r"\(10\) under 4 processes does not split over 4 processes"):
        batch.check_batch(10, [0, 1], {"stylegan2": 1}, world=4)
    batch.check_batch(24, [0, 1], {"stylegan2": 4}, world=2)     # 12 per process; the last batch 8 each
    batch.check_batch(32, [0, 1], {"stylegan2": 4}, world=4)     # the last batch: 2 each, one smaller group
    # A resumed run checks the batches still to come, from where it stopped.
    assert batch.shortened_batches(24, [0, 1, 2], start=0) == {16}
    assert batch.shortened_batches(24, [0, 1, 2], start=1500) == {20}


def test_defaults_are_filled_per_source():
    cfg = config.resolve({"datasets": {"a": {"source": "shapes"}, "b": {"source": "clevr"},
                                       "c": {"source": "folder", "path": "imgs"}}})
    assert cfg["seeds"] == [0, 1, 2] and cfg["metrics"]["seed"] == 0 and cfg["cache_dir"] == "resources"
    assert cfg["models"] == ["stylegan2", "ganformer-simplex", "ganformer-duplex"]
    assert cfg["datasets"]["a"]["num_images"] == 10000 and cfg["datasets"]["a"]["background"] == "mixed"
    assert "url" not in cfg["datasets"]["a"]
    assert cfg["datasets"]["b"]["ratio"] == 0.75 and cfg["datasets"]["b"]["split"] == "train"
    assert len(cfg["datasets"]["b"]["sha256"]) == 64
    assert cfg["datasets"]["c"]["crop"] == "center" and cfg["datasets"]["c"]["upscale"] is False


def test_resolve_does_not_modify_its_input():
    raw = {"datasets": {"a": {"source": "shapes"}}}
    config.resolve(raw)
    assert raw == {"datasets": {"a": {"source": "shapes"}}}


def test_every_schema_source_has_a_preparer():
    assert set(schema.source_names()) == set(SOURCES)


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = config.load(REPO / "config" / name)
    assert cfg["kimg"] == sorted(cfg["kimg"])


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets:\n  toy: {source: shapes\n")
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML at line \d+"):
        config.load(bad)


def test_cli_reports_config_error_without_traceback(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text(yaml.safe_dump({**BASE, "kimg": [8, 4]}))
    proc = ganrepro("config", "show", "--config", str(bad), check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"Error: {bad}: config key 'kimg' must be strictly ascending (got [8, 4]), e.g. [4, 8] "
        "(schema: workflow/schemas/config.schema.yaml)"]


def test_cli_show_prints_completed_config():
    proc = ganrepro("config", "show", cwd=REPO)
    cfg = yaml.safe_load(proc.stdout)
    assert cfg == config.load(REPO / "config" / "config.yaml")


def test_snakemake_rejects_bad_config_with_the_same_message(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text(yaml.safe_dump({"datasets": {"toy": {"source": "shapes", "resolution": 48}}}))
    proc = run([str(BIN / "snakemake"), "-n", "--configfile", str(bad), "-d", str(tmp_path)],
               cwd=REPO, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key 'datasets.toy.resolution' is 48; allowed values: 8, 16" in out
    assert "Traceback" not in out


def test_snakemake_applies_schema_defaults_and_replaces_default_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"datasets": {"only": {"source": "shapes", "num_images": 3}}}))
    proc = run([str(BIN / "snakemake"), "-n", "-p", "--configfile", str(cfg), "-d", str(tmp_path),
                "-s", str(REPO / "Snakefile")], cwd=REPO)
    out = proc.stdout + proc.stderr
    assert "results/datasets/only/dataset.json" in out
    assert "shapes16" not in out           # the embedded default's dataset is not merged in
    assert '\\"num_images\\": 3' in out or '"num_images": 3' in out
    assert '"background": "mixed"' in out  # a schema default reached the rule

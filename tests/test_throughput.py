"""The throughput stage: the Trainer's timing methods and the JSON record it writes.
Wall-clock numbers are never asserted on; what is measured and what is written are."""

from __future__ import annotations

import json

import pytest

from conftest import prepare_shapes
from ganrepro.settings import config
from ganrepro.training import distributed
from ganrepro.training.loop import Trainer
from ganrepro.training.throughput import write_throughput

MODELS = ["stylegan2", "dcgan"]
TINY = {"mapping_layers": 2, "channel_base": 64, "channel_max": 16, "z_dim": 16, "w_dim": 16}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return prepare_shapes(tmp_path_factory.mktemp("data") / "toy", 8, 16)


def tiny_config(**train) -> dict:
    return config.resolve({"datasets": {"toy": {"source": "shapes", "resolution": 8}}, "models": MODELS,
                           "hparams": {"stylegan2": TINY, "dcgan": {"z_dim": 16, "channel_base": 64, "channel_max": 16}},
                           "kimg": [0, 1], "train": {"batch_size": 4, "grid": 2, "num_workers": 0,
                                                     "r1_interval": 4, **train}})


def test_a_timing_step_runs_the_lazy_regularizers_only_when_asked(toy, tmp_path):
    trainer = Trainer(tiny_config(pl_weight=2.0), toy, "stylegan2", tmp_path, distributed.Context())
    reals, acc = trainer.fixed_batch(4), trainer.accumulators()
    assert reals.shape == (4, 3, 8, 8) and set(acc) == {"loss_G", "loss_D", "r1", "r1_n", "pl", "pl_n"}
    trainer.timing_step(reals, 4, acc, regularize=False)
    assert float(acc["r1_n"]) == 0 and float(acc["pl_n"]) == 0 and float(acc["loss_D"]) != 0
    trainer.timing_step(reals, 4, acc, regularize=True)
    assert float(acc["r1_n"]) == 1 and float(acc["pl_n"]) == 1


def test_the_record_times_every_model_in_every_round_in_order(toy, tmp_path):
    out = tmp_path / "throughput.json"
    record = write_throughput(tiny_config(), "toy", toy, rounds=2, steps=1, out=out)
    assert json.loads(out.read_text()) == record
    assert list(record) == ["device", "torch_device", "batch", "rounds", "steps_per_round", "order", "models",
                            "dataset"]
    assert record["order"] == MODELS and record["dataset"] == "toy" and record["batch"] == 4
    assert record["torch_device"] == "cpu" or record["torch_device"].startswith("cuda")
    for model in MODELS:
        m = record["models"][model]
        assert len(m["seconds"]) == 2 and all(s > 0 for s in m["seconds"]) and m["img_per_sec"] > 0

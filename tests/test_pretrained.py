"""The released-checkpoint branch of the DAG, end to end: a synthetic checkpoint in the
released TensorFlow format (tests/fixtures/released/tf-duplex.pkl, 256 px) served on
127.0.0.1 is downloaded, imported, evaluated against a 256-px dataset and tabled in the
report beside the official README's FID-50k; `ganrepro generate` samples the imported
snapshot. Real Snakemake, real Inception network, no internet."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import BIN, REPO, ganrepro, run

FIXTURE = REPO / "tests/fixtures/released/tf-duplex.pkl"
BODY = FIXTURE.read_bytes()


def _config(url: str, sha256: str | None = None) -> dict:
    return {
        "seeds": [0],
        "datasets": {"big": {"source": "shapes", "resolution": 256, "num_images": 16}},
        "models": ["stylegan2"],
        "hparams": {"stylegan2": {"channel_base": 256, "channel_max": 8, "z_dim": 8, "w_dim": 8}},
        "kimg": [0],
        "train": {"batch_size": 4, "num_workers": 0, "grid": 2},
        "metrics": {"num_gen": 8, "final_num_gen": None, "num_real": 16, "repeats": 2, "batch_size": 8,
                    "device": "cpu", "names": ["fid", "kid"]},
        "pretrained": {"tf-release": {"url": url, "sha256": sha256, "size": len(BODY), "dataset": "big",
                                      "model": "ganformer-duplex", "published": "FFHQ"}},
    }


def snakemake(work: Path, *args, check=True):
    return run([str(BIN / "snakemake"), *args, "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "2",
                "--configfile", str(work / "config.yaml")], check=check)


@pytest.fixture(scope="module")
def branch(tmp_path_factory):
    from conftest import LoopbackServer
    server = LoopbackServer()
    try:
        work = tmp_path_factory.mktemp("pretrained")
        url = server.serve("/ffhq-snapshot.pkl", BODY)
        (work / "config.yaml").write_text(yaml.safe_dump(_config(url, hashlib.sha256(BODY).hexdigest())))
        alone = snakemake(work, "pretrained", "-n", "--quiet", "rules")
        report = snakemake(work, "tables")
        yield work, server, alone, report
    finally:
        server.close()


def test_the_pretrained_target_runs_the_branch_alone(branch):
    _, _, alone, _ = branch
    out = alone.stdout + alone.stderr
    for rule in ("download_checkpoint", "import_checkpoint", "evaluate_pretrained", "real_stats", "prepare_dataset"):
        assert re.search(rf"\b{rule}\s+1\b", out), (rule, out)
    assert not re.search(r"\b(train|evaluate|tables)\s+\d", out), out


def test_download_import_evaluate_and_the_report_table(branch):
    work, server, _, _ = branch
    assert [p for p, _ in server.requests] == ["/ffhq-snapshot.pkl"]
    assert (work / "resources/pretrained/tf-release.pkl").read_bytes() == BODY
    table = pd.read_csv(work / "results/tables/pretrained.csv")
    assert len(table) == 1                               # clean mode only: no NVIDIA Inception here
    row = table.iloc[0]
    assert (row["Checkpoint"], row["Model"], row["Protocol"], row["Images"]) == \
        ("tf-release", "ganformer-duplex", "clean", 8)
    published = yaml.safe_load((REPO / "config/published.yaml").read_text())["official_fid50k"]
    assert row["README FID-50k"] == published["models"]["ganformer"][published["datasets"].index("FFHQ")]
    assert row["FID"] > 0 and row["FID sd"] >= 0 and row["Sampling seeds"] == 2
    assert row["File sha256"] == hashlib.sha256(BODY).hexdigest()


def test_generate_samples_the_imported_snapshot(branch, tmp_path):
    work, _, _, _ = branch
    ganrepro("generate", "--snapshot", str(work / "results/pretrained/tf-release/snapshot.pt"), "--seeds", "0-3",
             "--trunc", "0.7", "--out", str(tmp_path))
    assert Image.open(tmp_path / "seed0003.png").size == (256, 256)
    assert (tmp_path / "grid.png").is_file()


def test_a_changed_checkpoint_on_the_server_is_refused(tmp_path):
    from conftest import LoopbackServer
    server = LoopbackServer()
    try:
        url = server.serve("/ffhq-snapshot.pkl", BODY[:-8] + b"tampered")
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(_config(url, hashlib.sha256(BODY).hexdigest())))
        proc = snakemake(tmp_path, str(Path("resources/pretrained/tf-release.pkl")), check=False)
    finally:
        server.close()
    assert proc.returncode != 0
    log = (tmp_path / "results/logs/pretrained/download/tf-release.log").read_text()
    assert "checksum mismatch" in log and "Traceback" not in log
    assert not (tmp_path / "resources/pretrained/tf-release.pkl").exists()


def test_nvidias_inception_adds_the_legacy_tensorflow_protocol(tmp_path):
    """Where NVIDIA's file is in metrics.weights_dir the branch also measures in the
    protocol of the README's numbers (the DAG is planned only: no such file is here)."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(_config("http://127.0.0.1:9/x.pkl")))
    plan = snakemake(tmp_path, "pretrained", "-n", "--quiet", "rules").stdout
    assert re.search(r"\bevaluate_pretrained\s+1\b", plan), plan
    weights = tmp_path / "resources/inception"
    weights.mkdir(parents=True)
    (weights / "inception-2015-12-05.pt").write_bytes(b"stand-in: only its presence is read when planning")
    proc = snakemake(tmp_path, "pretrained", "-n")
    out = proc.stdout + proc.stderr
    assert re.search(r"\bevaluate_pretrained\s+2\b", out) and re.search(r"\breal_stats\s+2\b", out), out
    assert "metrics-legacy_tensorflow.json" in out and "legacy_tensorflow-real16.npz" in out

"""Importing official checkpoints: the released TensorFlow format and the official PyTorch
training snapshots, against the official code's own reading of the same files
(tests/fixtures/released/, made by its build_fixtures.py with the official code), and the
restricted unpickler against files that try to run code or are damaged or foreign. No
official code and no internet are needed here."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch

from conftest import ganrepro
from ganrepro.checkpoints import released
from ganrepro.checkpoints.discriminator import DISCRIMINATOR_FORMAT, load_discriminator
from ganrepro.errors import ConfigError
from ganrepro.files import sha256_file
from ganrepro.models import load_snapshot

HERE = Path(__file__).resolve().parent / "fixtures" / "released"
ATOL = 1e-4


@pytest.fixture(scope="module")
def record():
    return torch.load(HERE / "released.pt", weights_only=True)


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


@pytest.mark.parametrize("key, model, fmt", [("tf-duplex", "ganformer-duplex", "tensorflow-pickle"),
                                             ("pt-duplex", "ganformer-duplex", "pytorch-pickle"),
                                             ("pt-simplex", "ganformer-simplex", "pytorch-pickle")])
def test_an_imported_checkpoint_gives_the_official_outputs(record, tmp_path, key, model, fmt):
    rec = record[key]
    out = tmp_path / "snapshot.pt"
    info = released.import_checkpoint(HERE / rec["file"], out)
    assert info["model"] == model
    G, meta = load_snapshot(out)                     # an ordinary snapshot from here on
    assert meta["source"]["file"] == rec["file"] and meta["source"]["format"] == fmt
    assert meta["source"]["sha256"] == sha256_file(HERE / rec["file"])
    s = rec["stride"]
    with torch.no_grad():
        ws, _ = G.map(rec["z"])
        img = G.synthesize(ws, noise_mode="const")[:, :, ::s, ::s]
        truncated = G(rec["z"], psi=0.7, noise_mode="const")[:, :, ::s, ::s]
    assert max_error(ws[:, 0], rec["w"]) < 1e-5
    # at 1e-4 of the peak where that exceeds 1, as in test_official (randomized GANformers reach ~10)
    assert max_error(img, rec["img"]) < ATOL * max(1.0, rec["img"].abs().max().item())
    assert max_error(truncated, rec["img_psi0.7"]) < ATOL * max(1.0, rec["img_psi0.7"].abs().max().item())
    assert img.abs().mean() > 0.05 and (img - truncated).abs().max() > 1e-2


@pytest.mark.parametrize("key", ["tf-duplex", "pt-duplex", "pt-simplex"])
def test_an_imported_discriminator_gives_the_official_logits(record, tmp_path, key):
    """--network D: the discriminator file loads into the model's D, which scores the
    official images as the official D did (the 256-px TF fixture keeps strided images, so
    there the imported generator's own images are scored)."""
    rec = record[key]
    info = released.import_checkpoint(HERE / rec["file"], tmp_path / "d.pt", "D")
    D, meta = load_discriminator(tmp_path / "d.pt")
    assert meta["format"] == DISCRIMINATOR_FORMAT and meta["model"] == info["model"]
    assert meta["source"]["network"] == "D" and meta["source"]["sha256"] == sha256_file(HERE / rec["file"])
    assert info["parameters"] == sum(p.numel() for p in D.parameters())
    if rec["stride"] == 1:
        img = rec["img"]
    else:
        released.import_checkpoint(HERE / rec["file"], tmp_path / "g.pt")
        G, _ = load_snapshot(tmp_path / "g.pt")
        with torch.no_grad():
            img = G(rec["z"], noise_mode="const")
    with torch.no_grad():
        assert max_error(D(img), rec["logits"]) < ATOL * max(1.0, rec["logits"].abs().max().item())


def test_the_import_cli_writes_a_discriminator_file_that_only_loads_as_one(tmp_path):
    out = tmp_path / "d.pt"
    proc = ganrepro("import-checkpoint", str(HERE / "pt-simplex.pkl"), "--network", "D", "--out", str(out))
    assert "ganformer-simplex at 32 px" in proc.stdout and "(D, sha256" in proc.stdout
    with pytest.raises(ConfigError, match="not a ganrepro snapshot"):
        load_snapshot(out)
    released.import_checkpoint(HERE / "pt-simplex.pkl", tmp_path / "g.pt")
    with pytest.raises(ConfigError, match="not a ganrepro discriminator file .*a generator snapshot"):
        load_discriminator(tmp_path / "g.pt")


def test_the_clevr_preset_imports_without_global_style(tmp_path):
    info = released.import_checkpoint(HERE / "pt-duplex.pkl", tmp_path / "s.pt")
    assert (info["hparams"]["style"], info["hparams"]["mapping_ltnt2ltnt"], info["hparams"]["components"]) == \
        (False, False, 8)


def test_the_import_cli_names_what_it_imported_and_records_the_checksum(tmp_path):
    out = tmp_path / "s.pt"
    proc = ganrepro("import-checkpoint", str(HERE / "tf-duplex.pkl"), "--out", str(out), "--expect-model",
                    "ganformer-duplex")
    assert "ganformer-duplex at 256 px" in proc.stdout and out.is_file()
    proc = ganrepro("import-checkpoint", str(HERE / "tf-duplex.pkl"), "--out", str(tmp_path / "t.pt"),
                    "--expect-sha256", "0" * 64, check=False)
    assert proc.returncode == 1 and "not the expected" in proc.stderr and not (tmp_path / "t.pt").exists()


# ---------------------------------------------------------------------------- files that must be refused

MARKER = "ganrepro-unpickler-marker"


class _Call:
    """Pickles as a call of `func(*args)` (what a malicious pickle does)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _fake_persistence():
    """A module named torch_utils.persistence whose _reconstruct_persistent_obj would exec the
    module source it is given (as the official one does), for pickling a malicious file."""
    module = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        exec(meta["module_src"], {})
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    return module


@pytest.mark.parametrize("attack", ["os.system", "builtins.eval", "subprocess.Popen", "persistence-source"])
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, monkeypatch, attack):
    marker = tmp_path / MARKER
    command = f"open({str(marker)!r}, 'w').close()"
    if attack == "os.system":
        payload = _Call(os.system, f"touch {marker}")
    elif attack == "builtins.eval":
        payload = _Call(eval, command)
    elif attack == "subprocess.Popen":
        import subprocess
        payload = _Call(subprocess.Popen, ["touch", str(marker)])
    else:
        fake = _fake_persistence()
        monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
        monkeypatch.setitem(sys.modules, "torch_utils.persistence", fake)
        payload = _Call(fake._reconstruct_persistent_obj,
                        {"type": "class", "version": 6, "class_name": "Generator", "module_src": command,
                         "state": {}})
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G": payload, "G_ema": payload, "D": payload}))
    assert not marker.exists()
    proc = ganrepro("import-checkpoint", str(path), "--out", str(tmp_path / "s.pt"), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and str(path) in proc.stderr
    if attack != "persistence-source":                # that one passes the unpickler as inert data
        assert "refused to load: it names the global" in proc.stderr
    assert not marker.exists()
    assert not (tmp_path / "s.pt").exists()


@pytest.mark.parametrize("content, message", [
    (b"", "is not a complete pickle"),
    (b"\x80\x04\x95garbage-garbage", "cannot be read as an official checkpoint"),
    (os.urandom(4096), None),
    (pickle.dumps([1, 2, 3]), "is a pickle, but not an official GANformer checkpoint"),
    (pickle.dumps({"G_ema": 1}), "is a pickle, but not an official GANformer checkpoint"),
])
def test_damaged_and_foreign_files_get_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    proc = ganrepro("import-checkpoint", str(path), "--out", str(tmp_path / "s.pt"), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1 and str(path) in proc.stderr
    if message:
        assert message in proc.stderr


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "cut.pkl"
    data = (HERE / "tf-duplex.pkl").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(released.CheckpointError, match="is not a complete pickle"):
        released.import_checkpoint(path, tmp_path / "s.pt")


def test_an_unsupported_configuration_names_the_kwarg(tmp_path):
    with pytest.raises(released.CheckpointError, match=r"official kwarg crop_ratio=0\.5"):
        released.hparams_from_official({"img_resolution": 256, "k": 17,
                                        "synthesis_kwargs": {"transformer": True, "crop_ratio": 0.5}}, "x.pkl")


def test_a_forged_size_is_refused_before_anything_is_built():
    with pytest.raises(released.CheckpointError, match=r"official kwarg channel_max=100000000"):
        released.hparams_from_official({"img_resolution": 256, "k": 17, "synthesis_kwargs": {
            "transformer": True, "channel_max": 10 ** 8}}, "x.pkl")


def test_a_snapshot_of_an_official_pickle_says_how_to_import_it(tmp_path):
    path = tmp_path / "network-snapshot.pkl"
    shutil.copy(HERE / "pt-simplex.pkl", path)
    proc = ganrepro("generate", "--snapshot", str(path), "--seeds", "0", "--out", str(tmp_path / "g"), check=False)
    assert proc.returncode == 1 and "import-checkpoint" in proc.stderr and "Traceback" not in proc.stderr

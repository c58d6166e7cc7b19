"""Cartoon Set and CLEVR end to end from a loopback server; malicious archives; atomicity."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import tarfile

import numpy as np
import pandas as pd
import pytest

from conftest import (ATTRIBUTE_NAMES, BIN, cartoon_archive, clevr_archive, ganrepro, png_bytes,
                      wait_for_path, watchdog)
from ganrepro import data
from ganrepro.settings import config
from ganrepro.data.store import open_images, read_manifest
from ganrepro.errors import DataError


def cartoon_spec(url: str, body: bytes, source: str = "cartoonset10k", **kw) -> dict:
    return config.resolve_dataset("cartoon", {
        "source": source, "url": url, "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body), "resolution": 64, **kw})


def test_cartoonset_from_loopback_via_cli(server, tmp_path):
    body = cartoon_archive(n=6)
    url = server.serve("/cartoonset_public_files/cartoonset10k.tgz", body, cuts=1)
    spec = {"source": "cartoonset10k", "url": url, "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body), "resolution": 64}
    out = tmp_path / "results" / "cartoon"
    proc = ganrepro("data", "prepare", "cartoon", "--spec", json.dumps(spec), "--cache-dir",
                    str(tmp_path / "cache"), "--out", str(out), "--png")
    assert "cartoon: 6 images, 64x64x3, 0 skipped" in proc.stdout
    assert "retrying, attempt 1 of 5" in proc.stderr   # the first transfer was interrupted
    assert len(server.requests) == 2
    m = read_manifest(out)
    assert (m.source_url, m.source_sha256, m.source_size) == (url, spec["sha256"], len(body))
    images = open_images(out)
    assert images.shape == (6, 3, 64, 64)
    assert (images[:, :, 0, 0] == 255).all()           # transparent corners composited on white
    assert images[:, :, 32, 32].min() < 255            # the face is there
    table = pd.read_csv(out / "attributes.csv")
    assert list(table.columns) == ["file"] + ATTRIBUTE_NAMES
    assert table["file"].tolist() == [f"cartoonset10k/cs{1000 + i}.png" for i in range(6)]
    assert len(list((out / "png").glob("*.png"))) == 6
    assert (tmp_path / "cache" / "cartoonset10k.tgz").exists()
    # A second prepare reuses the cached archive: no new request.
    n = len(server.requests)
    ganrepro("data", "prepare", "cartoon", "--spec", json.dumps(spec), "--cache-dir",
             str(tmp_path / "cache"), "--out", str(out))
    assert len(server.requests) == n


def test_cartoonset100k_layout_and_max_images(server, tmp_path):
    body = cartoon_archive(n=10, root="cartoonset100k", subfolders=3)
    url = server.serve("/cartoonset100k.tgz", body)
    m = data.prepare("c", cartoon_spec(url, body, "cartoonset100k", max_images=5), tmp_path / "out",
                     cache_dir=tmp_path / "cache")
    assert m.count == 5
    table = pd.read_csv(tmp_path / "out" / "attributes.csv")
    assert len(table) == 5 and table["file"].str.startswith("cartoonset100k/").all()
    # Each image's CSV follows it in the archive; the 5th image's still made it in.
    assert table[ATTRIBUTE_NAMES].notna().all().all()


def test_corrupt_image_inside_archive_is_skipped(server, tmp_path):
    body = cartoon_archive(n=3, extra=[("cartoonset10k/cs9.png", b"\x89PNG\r\n\x1a\n broken")])
    url = server.serve("/c.tgz", body)
    m = data.prepare("c", cartoon_spec(url, body), tmp_path / "out", cache_dir=tmp_path / "cache")
    assert m.count == 3
    assert [s.file for s in m.skipped] == ["cartoonset10k/cs9.png"]


def test_checksum_mismatch_stops_prepare(server, tmp_path):
    body = cartoon_archive(n=2)
    url = server.serve("/c.tgz", body)
    spec = cartoon_spec(url, body)
    spec["sha256"] = "f" * 64
    with pytest.raises(DataError, match="checksum mismatch"):
        data.prepare("c", spec, tmp_path / "out", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "cache").iterdir()) == []


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize("member, message", [
    (("../evil.png", b"x"), "'../evil.png' points outside the archive folder"),
    (("cartoonset10k/../../evil.csv", b"x"), "points outside the archive folder"),
    (("/etc/evil.png", b"x"), "'/etc/evil.png' has an absolute path"),
    (("cartoonset10k/link.png", _link("cartoonset10k/link.png", "/etc/passwd")), "unsafe member 'cartoonset10k/link.png'"),
    (("cartoonset10k/up.png", _link("cartoonset10k/up.png", "../../outside")), "unsafe member 'cartoonset10k/up.png'"),
])
def test_malicious_tar_is_refused(server, tmp_path, member, message):
    body = cartoon_archive(n=2, extra=[member])
    url = server.serve("/evil.tgz", body)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(".", r"\.")):
        data.prepare("c", cartoon_spec(url, body), tmp_path / "out", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert not (tmp_path.parent / "evil.png").exists()


def test_malicious_zip_is_refused(tmp_path):
    import zipfile
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ok.png", png_bytes(__import__("PIL.Image").Image.new("RGB", (64, 64))))
        zf.writestr("../../evil.png", b"x")
    spec = config.resolve_dataset("z", {"source": "folder", "path": str(zpath)})
    with pytest.raises(DataError, match="'../../evil.png' points outside"):
        data.prepare("z", spec, tmp_path / "out")


def test_clevr_crop_pad_resize(server, tmp_path):
    body = clevr_archive(n=4)
    url = server.serve("/clevr/CLEVR_v1.0.zip", body)
    spec = config.resolve_dataset("clevr", {"source": "clevr", "url": url, "resolution": 32,
                                            "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)})
    m = data.prepare("clevr", spec, tmp_path / "out", cache_dir=tmp_path / "cache")
    assert m.count == 4 and m.preprocessing["aspect_crop"] == 0.75 and m.preprocessing["square"] == "pad"
    img = np.asarray(open_images(tmp_path / "out")[0]).transpose(1, 2, 0)
    # 480x320 -> crop to 427x320 (h/w 0.75) -> pad to 427x427 -> 32x32: black bands top and bottom.
    assert (img[0] == 0).all() and (img[-1] == 0).all()
    assert (img[16, 2] == 128).all()                  # grey floor reaches the sides (no side bands)


def test_interrupted_prepare_leaves_nothing_that_looks_finished(tmp_path):
    """SIGKILL in the middle of writing: no dataset.json at the final path."""
    out = tmp_path / "shapes"
    proc = subprocess.Popen([str(BIN / "ganrepro"), "data", "prepare", "shapes", "--set", "num_images=200000",
                             "--set", "resolution=64", "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def writing():          # some images written: mid-write whatever the machine's speed
        return any(p.stat().st_size >= 2 ** 20 for p in tmp_path.glob(".shapes.partial-*/images.raw"))
    with watchdog(proc):
        wait_for_path(proc, writing, "images.raw reached 1 MiB")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    partial = list(tmp_path.glob(".shapes.partial-*"))
    assert partial and not (partial[0] / "dataset.json").exists()
    # The next prepare succeeds, publishes a complete folder and clears the leftovers.
    ganrepro("data", "prepare", "shapes", "--set", "num_images=20", "--out", str(out), cwd=tmp_path)
    assert read_manifest(out).count == 20
    assert not list(tmp_path.glob(".shapes.partial-*"))


def test_failed_rebuild_keeps_the_previous_dataset(tmp_path, server):
    out = tmp_path / "out"
    data.prepare("s", config.resolve_dataset("s", {"source": "shapes", "num_images": 5}), out)
    before = (out / "images.npy").read_bytes()
    body = cartoon_archive(n=1, extra=[("../x.png", b"x")])
    url = server.serve("/bad.tgz", body)
    with pytest.raises(DataError):
        data.prepare("s", cartoon_spec(url, body), out, cache_dir=tmp_path / "cache")
    assert (out / "images.npy").read_bytes() == before

"""Downloads against a real HTTP server on 127.0.0.1: resume, verify, cache."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ganrepro.data.download import fetch
from ganrepro.errors import DownloadError

BODY = os.urandom(3 * (1 << 20) + 12345)      # a few chunks, not a multiple of the chunk size
SHA = hashlib.sha256(BODY).hexdigest()


def test_download_verifies_and_caches(server, tmp_path):
    url = server.serve("/data/archive.tgz", BODY)
    dest = tmp_path / "cache" / "archive.tgz"
    assert fetch(url, dest, SHA, len(BODY)) == SHA
    assert dest.read_bytes() == BODY
    assert not dest.with_name("archive.tgz.part").exists()
    # A second call uses the cache: no request reaches the server.
    assert fetch(url, dest, SHA, len(BODY)) == SHA
    assert len(server.requests) == 1


def test_transfer_cut_off_half_way_resumes_with_range(server, tmp_path):
    url = server.serve("/a.tgz", BODY, cuts=2)
    dest = tmp_path / "a.tgz"
    assert fetch(url, dest, SHA, len(BODY)) == SHA
    assert dest.read_bytes() == BODY
    ranges = [r for _, r in server.requests]
    assert ranges[0] is None and all(r and r.startswith("bytes=") for r in ranges[1:])
    assert len(ranges) == 3


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    url = server.serve("/a.tgz", BODY, cuts=1)
    dest = tmp_path / "a.tgz"
    with pytest.raises(DownloadError, match=r"cut off 1 times .* bytes are kept in .*a.tgz.part, run again to resume"):
        fetch(url, dest, SHA, len(BODY), retries=0)
    part = tmp_path / "a.tgz.part"
    kept = part.stat().st_size
    assert 0 < kept < len(BODY) and not dest.exists()
    assert fetch(url, dest, SHA, len(BODY), retries=0) == SHA
    assert server.requests[-1][1] == f"bytes={kept}-"


def test_server_without_range_support_restarts_from_zero(server, tmp_path):
    server.ranges = False
    url = server.serve("/a.tgz", BODY, cuts=1)
    dest = tmp_path / "a.tgz"
    assert fetch(url, dest, SHA, len(BODY)) == SHA
    assert dest.read_bytes() == BODY


def test_checksum_mismatch_is_an_error_and_leaves_nothing(server, tmp_path):
    url = server.serve("/a.tgz", BODY)
    dest = tmp_path / "a.tgz"
    wrong = "0" * 64
    with pytest.raises(DownloadError, match=f"checksum mismatch for {url}: expected sha256 {wrong}, got {SHA}"):
        fetch(url, dest, wrong, len(BODY))
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_is_an_error(server, tmp_path):
    url = server.serve("/a.tgz", BODY)
    with pytest.raises(DownloadError, match=f"gave {len(BODY)} bytes but {len(BODY) + 1} were expected"):
        fetch(url, tmp_path / "a.tgz", SHA, len(BODY) + 1)
    assert list(tmp_path.iterdir()) == []


def test_http_error_names_the_url(server, tmp_path):
    url = server.serve("/a.tgz", BODY).replace("/a.tgz", "/missing.tgz")
    with pytest.raises(DownloadError, match=f"{url}: HTTP 404"):
        fetch(url, tmp_path / "missing.tgz", SHA)


def test_corrupted_cache_is_replaced(server, tmp_path):
    url = server.serve("/a.tgz", BODY)
    dest = tmp_path / "a.tgz"
    dest.write_bytes(BODY[:-1] + b"x")
    assert fetch(url, dest, SHA, len(BODY)) == SHA
    assert dest.read_bytes() == BODY and len(server.requests) == 1


def test_unknown_checksum_is_recorded_on_first_download_then_enforced(server, tmp_path, caplog):
    url = server.serve("/a.tgz", BODY)
    dest = tmp_path / "a.tgz"
    assert fetch(url, dest) == SHA
    assert "no published checksum is known" in caplog.text
    assert json.loads((tmp_path / "a.tgz.verified.json").read_text())["sha256"] == SHA
    # The recorded digest now guards the cache: a file changed since is hashed, found
    # wrong, and downloaded again.
    dest.write_bytes(b"tampered")
    assert fetch(url, dest) == SHA and dest.read_bytes() == BODY


def test_unreachable_host_is_one_clear_error(tmp_path):
    import socket
    with socket.socket() as s:          # a port on 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.tgz"
    with pytest.raises(DownloadError, match=rf"download of {url} failed 2 times \(last: ConnectionError"):
        fetch(url, tmp_path / "a.tgz", SHA, retries=1)
    assert not (tmp_path / "a.tgz").exists()


def test_local_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(BODY)
    assert fetch(src.as_uri(), tmp_path / "cache" / "src.bin", SHA) == SHA


def test_unsupported_scheme(tmp_path):
    with pytest.raises(DownloadError, match="only http, https and file URLs are allowed"):
        fetch("ftp://example.invalid/a.tgz", tmp_path / "a.tgz")

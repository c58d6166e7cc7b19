"""Hostile archives, images and servers against the real `ganrepro data prepare`.

Each case builds its file in tmp_path (small: a bomb is built by streaming zeros into a
compressor, or by forging a declared size), runs the command under the bounds of
tests/hostile.py and checks the one `Error:` line, the exit status, that nothing
was published and that memory stayed bounded. The controls show that ordinary archives
still prepare, bit for bit as the folder they came from.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import lzma
import stat
import struct
import sys
import tarfile
import threading
import warnings
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from conftest import cartoon_archive, png_bytes  # noqa: E402
from hostile import GIB as GiB, assert_refused, run_bounded  # noqa: E402

MiB = 1 << 20


# ---------------------------------------------------------------------------- builders

def _zeros(total: int, chunk: int = MiB):
    for start in range(0, total, chunk):
        yield bytes(min(chunk, total - start))


class _ZeroReader(io.RawIOBase):
    """`n` zero bytes as a file, without holding them."""

    def __init__(self, n: int):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def photo(i: int = 0, size=(80, 80)) -> bytes:
    rng = np.random.default_rng(i)
    return png_bytes(Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), np.uint8)))


def zip_of(path: Path, members, method=zipfile.ZIP_DEFLATED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", method) as zf:
            for name, data in members:
                if isinstance(data, zipfile.ZipInfo):
                    zf.writestr(data, b"target.png")
                elif isinstance(data, int):            # that many zeros, streamed
                    with zf.open(name, "w") as f:
                        for block in _zeros(data):
                            f.write(block)
                else:
                    zf.writestr(name, data)
    return path


def _central(blob: bytearray, name: bytes) -> int:
    """Offset of the central-directory record of member `name`."""
    at = blob.index(b"PK\x01\x02")
    while True:
        n = struct.unpack_from("<H", blob, at + 28)[0]
        if bytes(blob[at + 46:at + 46 + n]) == name:
            return at
        at = blob.index(b"PK\x01\x02", at + 4)


def forge_zip(path: Path, name: str, *, file_size=None, flags=None, method=None) -> Path:
    """Rewrite what the zip's directory (and local header) declares for member `name`."""
    blob = bytearray(path.read_bytes())
    cd = _central(blob, name.encode())
    local = struct.unpack_from("<L", blob, cd + 42)[0]
    if file_size is not None:
        struct.pack_into("<L", blob, cd + 24, file_size)
    if flags is not None:
        struct.pack_into("<H", blob, cd + 8, flags)
        struct.pack_into("<H", blob, local + 6, flags)
    if method is not None:
        struct.pack_into("<H", blob, cd + 10, method)
        struct.pack_into("<H", blob, local + 8, method)
    path.write_bytes(bytes(blob))
    return path


def zip_declaring_members(path: Path, count: int) -> Path:
    """A one-member zip whose zip64 end record declares `count` members."""
    zip_of(path, [("a.png", photo())])
    blob = path.read_bytes()
    end = blob.rindex(b"PK\x05\x06")
    size_cd, offset_cd = struct.unpack_from("<LL", blob, end + 12)
    body = blob[:end]
    zip64_end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size_cd, offset_cd)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(body), 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, size_cd, offset_cd, 0)
    path.write_bytes(body + zip64_end + locator + eocd)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, extra: bytes = b"") -> bytes:
    """A PNG whose header declares width x height (8-bit RGB) with a token IDAT; `extra`
    chunks go before the image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra
            + _chunk(b"IDAT", zlib.compress(bytes(64))) + _chunk(b"IEND", b""))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real 16x16 JPEG whose frame header is rewritten to declare width x height."""
    blob = bytearray(png_bytes(Image.new("RGB", (16, 16), (90, 120, 30)), "JPEG"))
    sof = blob.index(b"\xff\xc0")
    struct.pack_into(">HH", blob, sof + 5, height, width)
    return bytes(blob)


def _tar_header_size(block: bytearray, size: int) -> None:
    """Rewrite a ustar header's size field (octal) and its checksum."""
    block[124:136] = f"{size:011o}\0".encode()
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block[:512]):06o}\0 ".encode()


def tar_bytes(members) -> bytes:
    """An uncompressed tar of (name, bytes | TarInfo | int zeros) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
            elif isinstance(data, int):
                info = tarfile.TarInfo(name)
                info.size = data
                tar.addfile(info, _ZeroReader(data))
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def lying_tar(declared: int) -> bytes:
    """One small image member whose header declares `declared` bytes."""
    blob = bytearray(tar_bytes([("cartoonset10k/cs1.png", photo())]))
    header = bytearray(blob[:512])
    _tar_header_size(header, declared)
    blob[:512] = header
    return bytes(blob)


def gz_stream(members, level: int = 1) -> bytes:
    """A .tgz written by streaming (zeros never held in memory)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=level, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name, data in members:
                if isinstance(data, tarfile.TarInfo):
                    tar.addfile(data)
                    continue
                info = tarfile.TarInfo(name)
                info.size = data if isinstance(data, int) else len(data)
                tar.addfile(info, _ZeroReader(data) if isinstance(data, int) else io.BytesIO(data))
    return buf.getvalue()


def pax_bomb(size: int) -> bytes:
    """A .tgz whose first block is a pax extended header of `size` bytes of zeros."""
    header = bytearray(tarfile.TarInfo("././@PaxHeader").tobuf(tarfile.USTAR_FORMAT))
    header[156:157] = tarfile.XHDTYPE
    _tar_header_size(header, size)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz:
        gz.write(bytes(header))
        for block in _zeros(size):
            gz.write(block)
    return buf.getvalue()


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 5
    return info


def zip_symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


# ---------------------------------------------------------------------------- a hostile server

class _Endless(BaseHTTPRequestHandler):
    """/huge declares a terabyte; /endless declares nothing; both then send zeros until the
    client hangs up (or 1 GiB, so a broken client cannot make the test run forever)."""

    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        if self.path.startswith("/huge"):
            self.send_header("Content-Length", str(10 ** 12))
        self.end_headers()
        with contextlib.suppress(OSError):
            for block in _zeros(1 << 30, 1 << 16):
                self.wfile.write(block)


@pytest.fixture
def endless_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# ---------------------------------------------------------------------------- running prepare

def prepare(tmp_path: Path, spec: dict, name: str = "hostile"):
    out = tmp_path / "out"
    result = run_bounded(["data", "prepare", name, "--spec", json.dumps(spec), "--out", out,
                          "--cache-dir", tmp_path / "cache"], cwd=tmp_path)
    return result, out


def folder_spec(path: Path) -> dict:
    return {"source": "folder", "path": str(path), "resolution": 64}


def cartoon_spec(path: Path, **kw) -> dict:
    return {"source": "cartoonset10k", "url": path.as_uri(), "resolution": 64, **kw}


def write(tmp_path: Path, name: str, blob: bytes) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path


def only_image(name: str, blob: bytes):
    """A zip holding one image member: its skip reason becomes the error line."""
    return lambda tmp_path: folder_spec(zip_of(tmp_path / "one.zip", [(name, blob)]))


def only_member_tar(members):
    return lambda tmp_path: cartoon_spec(write(tmp_path, "c.tar", tar_bytes(members)))


NONE_USABLE = r"none of the 1 images in \S*one\.zip could be used \("
NO_CARTOON = r"c\.t\w+ holds no usable images \(1 skipped; e\.g\. "

# id -> (build(tmp_path) -> spec, the error line's pattern)
CASES = {
    # --- zip: declared sizes and ratios, before anything is read
    "zip-deflate-bomb-200MiB-member": (
        lambda t: folder_spec(zip_of(t / "bomb.zip", [("ok.png", photo()), ("bomb.png", 200 * MiB)])),
        r"bomb\.zip: member 'bomb\.png' declares 209,715,200 bytes packed into [\d,]+ .*zip bomb.*"
        r"at most 100 times its packed size"),
    "zip-forged-3GiB-size-in-directory": (
        lambda t: folder_spec(forge_zip(zip_of(t / "forged.zip", [("forged.png", photo())]),
                                        "forged.png", file_size=3 << 30)),
        r"forged\.zip: member 'forged\.png' declares 3,221,225,472 bytes packed into .*zip bomb"),
    "zip-member-over-64MiB": (
        lambda t: folder_spec(_big_member_zip(t)),
        NONE_USABLE + r"big\.png: declares 68,157,440 bytes, more than the 64 MiB allowed for one member"),
    "zip-declares-a-trillion-members": (
        lambda t: folder_spec(zip_declaring_members(t / "many.zip", 10 ** 12)),
        r"many\.zip has 1,000,000,000,000 members, more than the 1,000,000 allowed"),
    "zip-duplicate-names": (
        lambda t: folder_spec(zip_of(t / "dup.zip", [("a.png", photo(0)), ("a.png", photo(1))])),
        r"dup\.zip: two members are named 'a\.png'.*ambiguous"),
    "zip-symlink-member": (
        only_image("link.png", zip_symlink("link.png")),
        NONE_USABLE + r"link\.png: is a symbolic link, not a file; only regular files are read"),
    "zip-encrypted-member": (
        lambda t: folder_spec(forge_zip(zip_of(t / "one.zip", [("secret.png", photo())]), "secret.png", flags=1)),
        NONE_USABLE + r"secret\.png: is encrypted"),
    "zip-unknown-compression-method": (
        lambda t: folder_spec(forge_zip(zip_of(t / "one.zip", [("odd.png", photo())]), "odd.png", method=99)),
        NONE_USABLE + r"odd\.png: uses zip compression method 99, which cannot be read"),
    "zip-zero-byte-member": (
        only_image("empty.png", b""),
        NONE_USABLE + r"empty\.png: not an image file"),
    "zip-not-a-zip-at-all": (
        lambda t: folder_spec(write(t, "trunc.zip", b"PK\x03\x04" + bytes(100))),
        r"trunc\.zip is neither a directory nor a \.zip archive"),
    # --- images: declared dimensions, before decoding
    "png-declares-100000x100000-in-100-bytes": (
        only_image("huge.png", png_declaring(100_000, 100_000)),
        NONE_USABLE + r"huge\.png: declares more than the 89,478,485 pixels allowed"),
    "png-declares-12000x12000": (
        only_image("big.png", png_declaring(12_000, 12_000)),
        NONE_USABLE + r"big\.png: declares 12000x12000 = 144,000,000 pixels, more than the 89,478,485 allowed"),
    "png-dense-5000x5000-in-100-bytes": (
        only_image("dense.png", png_declaring(5_000, 5_000)),
        NONE_USABLE + r"dense\.png: declares 5000x5000 = 25,000,000 pixels in a file of \d+ bytes.*"
        r"at most 16 pixels per byte"),
    "jpeg-declares-65000x65000": (
        only_image("huge.jpg", jpeg_declaring(65_000, 65_000)),
        NONE_USABLE + r"huge\.jpg: declares more than the 89,478,485 pixels allowed"),
    "jpeg-dense-6000x6000-in-1KB": (
        only_image("dense.jpg", jpeg_declaring(6_000, 6_000)),
        NONE_USABLE + r"dense\.jpg: declares 6000x6000 = 36,000,000 pixels in a file of \d+ bytes"),
    "png-ztxt-chunk-bomb": (
        only_image("text.png", png_declaring(64, 64, _chunk(b"zTXt", b"k\0\0" + zlib.compress(bytes(50 * MiB), 9)))),
        NONE_USABLE + r"text\.png: a compressed text or colour-profile chunk unpacks to more than Pillow allows"),
    "png-iccp-chunk-bomb": (
        only_image("icc.png", png_declaring(64, 64, _chunk(b"iCCP", b"p\0\0" + zlib.compress(bytes(50 * MiB), 9)))),
        NONE_USABLE + r"icc\.png: a compressed text or colour-profile chunk unpacks"),
    "corrupt-png": (
        only_image("broken.png", photo()[:200]),
        NONE_USABLE + r"broken\.png: truncated or corrupt image"),
    "eps-named-png-never-reaches-ghostscript": (
        only_image("script.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"),
        NONE_USABLE + r"script\.png: not an image file \(unrecognised format\)"),
    # --- tar: headers checked before the data is skipped or read
    "tar-lying-1GiB-size-header": (
        lambda t: cartoon_spec(write(t, "c.tar", lying_tar(1 << 30))),
        r"c\.tar: member 'cartoonset10k/cs1\.png' declares 1,073,741,824 bytes at offset 512, "
        r"but the archive holds only [\d,]+ bytes \(a lying header\)"),
    "tgz-bomb-200MiB-member": (
        lambda t: cartoon_spec(write(t, "c.tgz", gz_stream([("cartoonset10k/cs1.png", 200 * MiB)]))),
        r"c\.tgz: member 'cartoonset10k/cs1\.png' declares 209,715,200 bytes, so the archive would "
        r"unpack to more than [\d,]+ bytes; an archive may unpack to at most 100 times"),
    "tbz2-lying-size-header": (
        lambda t: cartoon_spec(write(t, "c.tbz2", bz2.compress(lying_tar(300 * MiB)))),
        r"c\.tbz2: member 'cartoonset10k/cs1\.png' declares 314,572,800 bytes, so the archive would unpack"),
    "txz-lying-size-header": (
        lambda t: cartoon_spec(write(t, "c.txz", lzma.compress(lying_tar(300 * MiB)))),
        r"c\.txz: member 'cartoonset10k/cs1\.png' declares 314,572,800 bytes, so the archive would unpack"),
    "tgz-pax-header-bomb": (
        lambda t: cartoon_spec(write(t, "c.tgz", pax_bomb(200 * MiB))),
        r"c\.tgz unpacks to more than [\d,]+ bytes; an archive may unpack to at most 100 times"),
    "tar-member-over-64MiB": (
        lambda t: cartoon_spec(write(t, "c.tgz", _big_member_tgz())),
        NO_CARTOON + r"cartoonset10k/cs1\.png: declares 68,157,440 bytes, more than the 64 MiB allowed"),
    "tar-symlink-inside": (
        only_member_tar([("cartoonset10k/cs2.png", link("cartoonset10k/cs2.png", "cs1.png"))]),
        NO_CARTOON + r"cartoonset10k/cs2\.png: is a link to 'cs1\.png', not a file"),
    "tar-symlink-outside": (
        only_member_tar([("cartoonset10k/cs2.png", link("cartoonset10k/cs2.png", "/etc/passwd"))]),
        r"c\.tar: unsafe member 'cartoonset10k/cs2\.png' .*refusing to read this archive"),
    "tar-hardlink-outside": (
        only_member_tar([("cartoonset10k/cs2.png", link("cartoonset10k/cs2.png", "../../x", tarfile.LNKTYPE))]),
        r"c\.tar: unsafe member 'cartoonset10k/cs2\.png'"),
    "tar-device-member": (
        only_member_tar([("cartoonset10k/cs2.png", device("cartoonset10k/cs2.png"))]),
        r"c\.tar: unsafe member 'cartoonset10k/cs2\.png' .*refusing to read this archive"),
    "tar-duplicate-names": (
        only_member_tar([("cartoonset10k/cs1.png", photo(0)), ("cartoonset10k/cs1.png", photo(1))]),
        r"c\.tar: two members are named 'cartoonset10k/cs1\.png'"),
    "tgz-truncated": (
        lambda t: cartoon_spec(write(t, "c.tgz", cartoon_archive(n=3)[:-4000])),
        r"c\.tgz is damaged and cannot be read to the end"),
    "file-url-larger-than-its-configured-size": (
        lambda t: cartoon_spec(write(t, "c.tgz", cartoon_archive(n=2)), size=1000),
        r"file://\S*c\.tgz holds [\d,]+ bytes, more than the 1,000 bytes expected; refusing it"),
    "not-an-archive": (
        lambda t: cartoon_spec(write(t, "c.tgz", b"<html>404 not found</html>" * 40)),
        r"c\.tgz is neither a tar nor a zip archive"),
}


def _big_member_zip(tmp_path: Path) -> Path:
    """A 65 MiB member at under 100:1 (1 MiB of noise, then zeros): honest, just too large."""
    path = tmp_path / "one.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("big.png", "w") as f:
        f.write(np.random.default_rng(0).bytes(MiB))
        for block in _zeros(64 * MiB):
            f.write(block)
    return path


def _big_member_tgz() -> bytes:
    noise = np.random.default_rng(0).bytes(MiB)

    class Member(_ZeroReader):
        def readinto(self, b):
            done = 65 * MiB - self.left
            k = min(len(b), self.left)
            b[:k] = noise[done:done + k].ljust(k, b"\0") if done < MiB else bytes(k)
            self.left -= k
            return k
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("cartoonset10k/cs1.png")
        info.size = 65 * MiB
        tar.addfile(info, Member(65 * MiB))
    return buf.getvalue()


def test_the_peak_memory_is_the_commands_own_not_the_test_processs():
    """The bounded command's peak resident memory excludes this process's: a child forked from
    a large process keeps that process's high-water mark through exec, which once made every
    refusal here read above 1 GiB in the full suite."""
    held = np.ones(1536 * MiB, dtype=np.uint8)          # 1.5 GiB resident in the test process
    result = run_bounded(["data", "prepare", "--help"])
    assert result.rc == 0 and "Usage:" in result.stdout
    assert result.peak_rss < 256 * MiB, f"peak resident memory {result.peak_rss / MiB:.0f} MiB"
    del held


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_source_is_refused(tmp_path, case):
    build, pattern = CASES[case]
    spec = build(tmp_path)
    src = Path(spec.get("path") or spec["url"].removeprefix("file://"))
    assert src.stat().st_size < 5 * MiB
    result, out = prepare(tmp_path, spec)
    assert_refused(result, pattern)
    assert result.peak_rss < GiB, f"peak resident memory {result.peak_rss / GiB:.2f} GiB"
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("path, pattern", [
    ("/huge.tgz", r"/huge\.tgz declares 1,000,000,000,000 bytes \(Content-Length\), more than the "
                  r"4,096 bytes expected; refusing it"),
    ("/endless.tgz", r"/endless\.tgz kept sending data, more than the 4,096 bytes expected; refusing it"),
])
def test_server_cannot_send_more_than_expected(tmp_path, endless_server, path, pattern):
    spec = {"source": "cartoonset10k", "url": endless_server + path, "size": 4096, "resolution": 64}
    result, out = prepare(tmp_path, spec)
    assert_refused(result, pattern)
    assert result.peak_rss < GiB
    assert not out.exists()
    assert not list((tmp_path / "cache").glob("*")), "a refused download left a file behind"


# ---------------------------------------------------------------------------- controls

def _manifest(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text())


def test_ordinary_zip_prepares_like_its_folder(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        (root / ("sub" if i % 2 else "") / f"p{i}.png").write_bytes(photo(i, (70 + 10 * i, 90)))
    (root / "notes.txt").write_text("not an image")
    zpath = tmp_path / "photos.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(root.rglob("*"), reverse=True):        # archive order is not name order
            if p.is_file():
                zf.write(p, p.relative_to(root).as_posix())
    results = {}
    for what, path in (("folder", root), ("zip", zpath)):
        result = run_bounded(["data", "prepare", what, "--spec", json.dumps(folder_spec(path)),
                              "--out", tmp_path / what], cwd=tmp_path)
        assert result.rc == 0 and not result.error_lines, result.stderr
        results[what] = _manifest(tmp_path / what)
    assert results["zip"]["count"] == results["folder"]["count"] == 5
    assert results["zip"]["images_sha256"] == results["folder"]["images_sha256"]
    assert (tmp_path / "zip" / "images.npy").read_bytes() == (tmp_path / "folder" / "images.npy").read_bytes()


def test_hostile_members_among_good_ones_are_skipped_and_listed(tmp_path):
    """An image too large to decode is skipped like any unusable image; the rest prepare."""
    good = [(f"g{i}.png", photo(i)) for i in range(3)]
    zpath = zip_of(tmp_path / "mixed.zip", good + [("huge.png", png_declaring(100_000, 100_000)),
                                                     ("dense.jpg", jpeg_declaring(6_000, 6_000))])
    result, out = prepare(tmp_path, folder_spec(zpath))
    assert result.rc == 0 and not result.error_lines, result.stderr
    manifest = _manifest(out)
    assert manifest["count"] == 3
    reasons = {s["file"]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == {"huge.png", "dense.jpg"}
    assert "89,478,485 pixels allowed" in reasons["huge.png"]
    assert "16 pixels per byte" in reasons["dense.jpg"]
    # The same good images alone give the same pixels.
    alone = zip_of(tmp_path / "good.zip", good)
    result = run_bounded(["data", "prepare", "good", "--spec", json.dumps(folder_spec(alone)),
                          "--out", tmp_path / "good"], cwd=tmp_path)
    assert result.rc == 0, result.stderr
    assert _manifest(tmp_path / "good")["images_sha256"] == manifest["images_sha256"]


def test_ordinary_tgz_prepares_under_the_bounds(tmp_path):
    for suffix, pack in ((".tgz", lambda b: b), (".tar", gzip.decompress), (".tbz2", lambda b: bz2.compress(gzip.decompress(b)))):
        archive = write(tmp_path, "cartoonset10k" + suffix, pack(cartoon_archive(n=4)))
        out = tmp_path / ("out" + suffix)
        result = run_bounded(["data", "prepare", "cartoon", "--spec", json.dumps(cartoon_spec(archive)),
                              "--out", out, "--cache-dir", tmp_path / ("cache" + suffix)], cwd=tmp_path)
        assert result.rc == 0 and not result.error_lines, result.stderr
        assert _manifest(out)["count"] == 4
    shas = {_manifest(tmp_path / ("out" + s))["images_sha256"] for s in (".tgz", ".tar", ".tbz2")}
    assert len(shas) == 1


# ---------------------------------------------------------------------------- a prepared dataset's manifest

@pytest.mark.parametrize("text, why", [("[" * 100_000 + "]" * 100_000, r"nested too deep"),
                                       ('{"name": 3}', r"TypeError: .*missing 9 required"),
                                       ("[1]", r"TypeError"), ('{"name": ', r"JSONDecodeError")],
                         ids=["deep-json", "missing-keys", "a-list", "truncated"])
def test_a_forged_dataset_manifest_is_one_line(text, why, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset.json").write_text(text)
    assert_refused(run_bounded(["stats", "--data", tmp_path / "data", "--out", tmp_path / "s.npz", "--device", "cpu"]),
                   rf"{tmp_path / 'data' / 'dataset.json'} is not a valid dataset manifest \({why}.*prepare the "
                   r"dataset again")

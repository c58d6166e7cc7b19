"""Shared fixtures: a real HTTP server on 127.0.0.1 and archives laid out like the real ones."""

from __future__ import annotations

import io
import contextlib
import os
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Only for a hung process: tests wait for the event they need (a file, a line of output),
# never for a deadline that a slow or busy machine could miss.
SAFETY_TIMEOUT = 1800


class _Handler(BaseHTTPRequestHandler):
    """Serves server.files; honours Range when server.ranges; cuts off when asked to."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Accept-Ranges", "bytes" if srv.ranges else "none")
        self.end_headers()
        if srv.cuts.get(self.path, 0) > 0:
            srv.cuts[self.path] -= 1
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(payload)


class LoopbackServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files, self.httpd.cuts, self.httpd.requests = {}, {}, []
        self.httpd.ranges = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, body: bytes, cuts: int = 0) -> str:
        """Serve `body` at `path`; the first `cuts` responses stop half-way. Returns the URL."""
        self.httpd.files[path] = body
        self.httpd.cuts[path] = cuts
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self.httpd.requests

    @property
    def ranges(self) -> bool:
        return self.httpd.ranges

    @ranges.setter
    def ranges(self, value: bool) -> None:
        self.httpd.ranges = value

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = LoopbackServer()
    yield srv
    srv.close()


# ---------------------------------------------------------------------------- image fixtures

def png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def cartoon_face(i: int, size: int = 500) -> Image.Image:
    """A 500x500 RGBA stand-in for a Cartoon Set image: a face on a transparent ground."""
    rng = np.random.default_rng(i)
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    skin = tuple(int(c) for c in rng.integers(80, 255, 3))
    d.ellipse((size * 0.2, size * 0.15, size * 0.8, size * 0.85), fill=skin + (255,))
    for x in (0.38, 0.62):
        d.ellipse((size * (x - 0.05), size * 0.4, size * (x + 0.05), size * 0.48), fill=(20, 20, 20, 255))
    return img


ATTRIBUTE_NAMES = ["eye_angle", "eye_color", "face_color", "hair", "glasses"]


def cartoon_csv(i: int) -> bytes:
    rng = np.random.default_rng(1000 + i)
    lines = [f'"{name}", {int(rng.integers(0, 3))}, 3' for name in ATTRIBUTE_NAMES]
    return ("\n".join(lines) + "\n").encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cartoon_archive(n: int = 6, root: str = "cartoonset10k", subfolders: int = 0,
                    extra=None) -> bytes:
    """A .tgz laid out like cartoonset10k (flat) or cartoonset100k (subfolders 0/..)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(n):
            folder = f"{root}/{i % subfolders}" if subfolders else root
            _add(tar, f"{folder}/cs{1000 + i}.png", png_bytes(cartoon_face(i)))
            _add(tar, f"{folder}/cs{1000 + i}.csv", cartoon_csv(i))
        for name, data in (extra or []):
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
            else:
                _add(tar, name, data)
    return buf.getvalue()


def clevr_archive(n: int = 4, split: str = "train") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            img = Image.new("RGBA", (480, 320), (128, 128, 128, 255))
            ImageDraw.Draw(img).ellipse((200, 120, 280, 200), fill=(200, 30, 30, 255))
            zf.writestr(f"CLEVR_v1.0/images/{split}/CLEVR_{split}_{i:06d}.png", png_bytes(img))
        zf.writestr("CLEVR_v1.0/images/val/CLEVR_val_000000.png", png_bytes(Image.new("RGB", (480, 320))))
        zf.writestr("CLEVR_v1.0/README.txt", b"CLEVR fixture")
    return buf.getvalue()


# ---------------------------------------------------------------------------- running commands

def run(args: list[str], cwd: Path | None = None, check: bool = True, timeout: int = SAFETY_TIMEOUT,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command with the venv's bin first on PATH (as `make` does)."""
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def ganrepro(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "ganrepro"), *args], cwd=cwd, check=check)


@contextlib.contextmanager
def watchdog(proc: subprocess.Popen, seconds: float = SAFETY_TIMEOUT):
    """Kill `proc` if the block is still waiting on it after `seconds` (a hang, not slowness);
    with its whole process group when it leads one (start_new_session=True)."""
    def kill():
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, 9)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
    timer = threading.Timer(seconds, kill)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def wait_for_line(proc: subprocess.Popen, pattern: str, lines: list[str]) -> re.Match:
    """Read `proc`'s text stdout line by line (appending to `lines`) until one matches
    `pattern`; fail with the output if the process ends first."""
    for line in proc.stdout:
        lines.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    proc.wait()
    raise AssertionError(f"exited ({proc.returncode}) without a line matching {pattern!r}:\n{''.join(lines)[-3000:]}")


def wait_for_path(proc: subprocess.Popen, ready, what: str, poll: float = 0.05) -> None:
    """Poll until `ready()` is true; fail at once if `proc` ends first."""
    import time

    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended ({proc.returncode}) before {what}")
        time.sleep(poll)


def pytest_sessionfinish(session, exitstatus):
    """With GANREPRO_HOSTILE_LOG=FILE, write each hostile case's command, exit status, peak
    memory and CPU time there (tab-separated): the figures the hostile-input notes quote."""
    target = os.environ.get("GANREPRO_HOSTILE_LOG")
    if not target:
        return
    import hostile

    with open(target, "w") as f:
        f.write("command\trc\tpeak_rss_mib\tcpu_s\n")
        for command, rc, peak, cpu in hostile._LOG:
            f.write(f"{command}\t{rc}\t{peak / 2**20:.0f}\t{cpu:.2f}\n")


def prepare_shapes(out: Path, resolution: int, num_images: int, **spec) -> Path:
    """A procedural `shapes` dataset prepared in-process into `out` (named after the folder)."""
    from ganrepro import data
    from ganrepro.settings import config

    name = out.name
    data.prepare(name, config.resolve_dataset(name, {"source": "shapes", "resolution": resolution,
                                                     "num_images": num_images, **spec}), out)
    return out

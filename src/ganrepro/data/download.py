"""Resumable, verified downloads into the archive cache.

A download goes to `<file>.part`; a cut-off transfer resumes where it stopped with an
HTTP Range request (within this call, and again on the next run), and only a file whose
size and SHA-256 match is renamed to its final name. A `<file>.verified.json` note beside it
records a verified digest so later runs need not hash gigabytes again.

A server is trusted no further than the config: a download stops as soon as it would
exceed the expected size (or `MAX_DOWNLOAD_BYTES` when none is configured), and a
declared Content-Length beyond it is refused before anything is written. Archives are
asked for as stored (no transfer compression), so the bytes hashed are the file's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import requests
from tqdm import tqdm

from ganrepro.errors import DownloadError
from ganrepro.files import DiskFullError, atomic_write_text, free_bytes, is_disk_full, sha256_file

log = logging.getLogger(__name__)

CHUNK = 1 << 16                 # bytes per network read: a cut-off loses at most this much
RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
MAX_DOWNLOAD_BYTES = 64 << 30   # without a configured size (the largest archive, CLEVR, is 18 GiB)


def cache_path(url: str, cache_dir: str | Path) -> Path:
    """Where the archive at `url` is kept: the cache folder + the URL's file name."""
    return Path(cache_dir) / PurePosixPath(urlparse(url).path).name


def _note(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _write_note(path: Path, digest: str) -> None:
    st = path.stat()
    atomic_write_text(_note(path), json.dumps({"sha256": digest, "size": st.st_size,
                                               "mtime_ns": st.st_mtime_ns}) + "\n")


def _read_note(path: Path) -> dict:
    try:
        return json.loads(_note(path).read_text())
    except (OSError, ValueError):
        return {}


def _cached(dest: Path, sha256: str | None, size: int | None) -> str | None:
    """Digest of a usable cached archive, or None (a bad one is deleted)."""
    if not dest.exists():
        return None
    st = dest.stat()
    note = _read_note(dest)
    recorded = note.get("sha256")
    unchanged = note.get("size") == st.st_size and note.get("mtime_ns") == st.st_mtime_ns
    if recorded and unchanged and sha256 in (None, recorded) and size in (None, st.st_size):
        return recorded
    wrong_size = size is not None and st.st_size != size
    digest = None if wrong_size else sha256_file(dest)      # never hash a file of the wrong size
    expected = sha256 or recorded
    if wrong_size or (expected and digest != expected):
        log.warning("cached %s does not match its expected checksum or size; "
                    "deleting it and downloading again", dest)
        dest.unlink()
        _note(dest).unlink(missing_ok=True)
        return None
    _write_note(dest, digest)
    return digest


def fetch(url: str, dest: str | Path, sha256: str | None = None, size: int | None = None,
          retries: int = 5, timeout: float = 60.0) -> str:
    """Make sure `dest` holds the archive at `url`; return its SHA-256.

    sha256=None trusts the first complete download and records its digest (a warning
    says so); later runs verify against that record.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = _cached(dest, sha256, size)
    if digest is not None:
        log.info("using cached %s (sha256 %s)", dest, digest)
        return digest
    part = dest.with_name(dest.name + ".part")
    limit = size if size is not None else MAX_DOWNLOAD_BYTES
    if urlparse(url).scheme == "file":
        _copy_local(url, part, limit)
    elif urlparse(url).scheme in ("http", "https"):
        _download(url, part, retries, timeout, limit)
    else:
        raise DownloadError(f"cannot download {url!r}: only http, https and file URLs are allowed")
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        part.unlink()
        raise DownloadError(f"{url} gave {actual_size} bytes but {size} were expected; "
                            f"the partial file was deleted, run again to retry")
    digest = sha256_file(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        raise DownloadError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}; "
                            f"the file was deleted. If the source really changed, set the "
                            f"expected sha256 in the config")
    if sha256 is None:
        log.warning("no published checksum is known for %s; recorded sha256 %s of this download "
                    "in %s and will verify against it from now on (put it in the config's "
                    "sha256 key to pin it)", url, digest, _note(dest))
    # Not files.atomic_write: the .part file must keep its own name across runs, so that a
    # transfer cut off by a kill resumes from it; a verified .part is renamed into place.
    os.replace(part, dest)
    _write_note(dest, digest)
    return digest


def _too_much(url: str, what: str, limit: int) -> DownloadError:
    expected = (f"the {limit:,} bytes expected" if limit != MAX_DOWNLOAD_BYTES else
                f"the {limit:,} bytes allowed for a download without a configured size")
    return DownloadError(f"{url} {what}, more than {expected}; refusing it (nothing was kept)")


def _disk_full(part: Path, got: int) -> DiskFullError:
    free = free_bytes(part)
    left = f" ({free:,} bytes free)" if free is not None else ""
    return DiskFullError(f"{part}: no space left on the device{left}; the {got:,} bytes downloaded "
                         "so far are kept there. Free some space and run again to resume")


def _copy_local(url: str, part: Path, limit: int) -> None:
    src = Path(unquote(urlparse(url).path))
    if not src.is_file():
        raise DownloadError(f"{url}: no such file")
    if src.stat().st_size > limit:
        raise _too_much(url, f"holds {src.stat().st_size:,} bytes", limit)
    try:
        with open(src, "rb") as fin, open(part, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 23)
    except OSError as err:
        full = is_disk_full(err, part)
        part.unlink(missing_ok=True)
        if full:
            raise DiskFullError(f"{part}: no space left on the device to copy {src}; nothing was kept. "
                                "Free some space and run again") from None
        raise DownloadError(f"cannot copy {src} to {part} ({err.strerror or err})") from None


def _download(url: str, part: Path, retries: int, timeout: float, limit: int = MAX_DOWNLOAD_BYTES) -> None:
    failures = 0
    with requests.Session() as session:
        while True:
            offset = part.stat().st_size if part.exists() else 0
            try:
                if _transfer(session, url, part, offset, timeout, limit):
                    return
            except RETRYABLE as err:
                failures += 1
                got = part.stat().st_size if part.exists() else 0
                what = "cut off" if got else "failed"
                if failures > retries:
                    kept = f"; {got} bytes are kept in {part}, run again to resume" if got else ""
                    raise DownloadError(
                        f"download of {url} {what} {failures} times (last: "
                        f"{type(err).__name__}: {_short(err)}){kept}") from None
                log.warning("download of %s %s at %d bytes (%s); retrying, attempt %d of %d",
                            url, what, got, type(err).__name__, failures, retries)
                time.sleep(min(2.0 ** failures, 30.0) * 0.1)
            except requests.RequestException as err:    # redirect loops, bad URLs: retrying cannot help
                raise DownloadError(f"download of {url} failed ({type(err).__name__}: {_short(err)})") from None


def _short(err: Exception) -> str:
    text = str(err)
    return text if len(text) <= 160 else text[:157] + "..."


def _transfer(session: requests.Session, url: str, part: Path, offset: int, timeout: float,
              limit: int = MAX_DOWNLOAD_BYTES) -> bool:
    """One request; True when the file is complete. Never writes more than `limit` bytes."""
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as r:
        if r.status_code == 416 and offset:
            return True                    # nothing left to send: the .part is complete
        if r.status_code == 206 and not r.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            part.unlink()                  # a range we did not ask for: start over
            return False
        if r.status_code == 200 and offset:
            log.info("%s does not support resuming; downloading from the start", url)
            offset = 0
        elif r.status_code not in (200, 206):
            raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason}")
        length = r.headers.get("Content-Length", "")
        total = offset + int(length) if length.isdigit() else None
        if total is not None and total > limit:
            part.unlink(missing_ok=True)
            raise _too_much(url, f"declares {total:,} bytes (Content-Length)", limit)
        got = offset
        try:
            with open(part, "r+b" if offset else "wb") as f, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=part.name.removesuffix(".part"), disable=None) as bar:
                f.seek(offset)
                f.truncate()
                for chunk in r.iter_content(CHUNK):
                    if got + len(chunk) > limit:
                        f.close()
                        part.unlink(missing_ok=True)
                        raise _too_much(url, "kept sending data", limit)
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        except OSError as err:      # requests' own errors are OSErrors too: those are not the disk
            if not isinstance(err, requests.RequestException) and is_disk_full(err, part):
                raise _disk_full(part, part.stat().st_size if part.exists() else 0) from None
            raise
        got = part.stat().st_size
        if total is not None and got < total:
            raise requests.exceptions.ChunkedEncodingError(f"stream ended at {got} of {total} bytes")
        return True

"""Real-image statistics, computed once per dataset x sample count x mode and cached.

A cache file (`.npz`) holds the pool features of the chosen reals (what KID and
Precision/Recall need), their mean and covariance (what FID needs) and the key it was
computed for: the dataset's pixel checksum from its manifest, its resolution, the
sample count, the FID mode, the feature extractor's sha256 and which path ran it (`reference`
or `fast`: their features differ in the last digits, so they are never mixed; a cache from
before the choice existed was made by `reference`). A file whose key differs
from the current one (the dataset was prepared again, another extractor) is recomputed,
never reused. Files are written to a temporary name and renamed, so a killed job leaves
no cache that looks complete.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganrepro.data import store
from ganrepro.errors import MetricsError
from ganrepro.files import atomic_write
from ganrepro.metrics import scores
from ganrepro.metrics.features import Featurizer, dataset_batches
from ganrepro.progress import logged

log = logging.getLogger(__name__)

FORMAT = 1
SUBSET_SEED = 0   # which reals a num_real < all subset holds; part of the key


@dataclass
class RealStats:
    key: dict
    feats: np.ndarray        # [N, 2048] float32
    mu: np.ndarray           # [2048] float64
    sigma: np.ndarray        # [2048, 2048] float64

    @property
    def count(self) -> int:
        return len(self.feats)


def parse_num_real(value: str | int) -> int | None:
    """'all' -> None (every real image), else a positive count."""
    if value in ("all", None):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 2:
        raise MetricsError(f"num_real must be 'all' or an integer >= 2, got {value!r}")
    return n


def cache_key(manifest: store.Manifest, num_real: int | None, mode: str, extractor_sha256: str,
              extractor: str = "reference") -> dict:
    count = manifest.count if num_real is None else min(num_real, manifest.count)
    return {"format": FORMAT, "dataset": manifest.name, "images_sha256": manifest.images_sha256,
            "resolution": manifest.resolution, "num_real": count, "subset_seed": SUBSET_SEED,
            "fid_mode": mode, "extractor_sha256": extractor_sha256, "extractor": extractor}


def read(path: Path) -> RealStats | None:
    """The cached statistics in `path`, or None when there are none or they are unreadable."""
    try:
        _check_stored(path)
        with np.load(path, allow_pickle=False) as z:
            stats = RealStats(json.loads(str(z["key"])), z["feats"], z["mu"], z["sigma"])
        dim = stats.mu.shape[-1] if stats.mu.ndim == 1 else -1
        if not isinstance(stats.key, dict) or stats.feats.ndim != 2 or stats.feats.shape[1] != dim \
                or stats.sigma.shape != (dim, dim):
            raise ValueError(f"arrays of shapes {stats.feats.shape}, {stats.mu.shape}, {stats.sigma.shape} are not "
                             "features [N, D], their mean [D] and covariance [D, D]")
        stats.key.setdefault("extractor", "reference")    # written before the fast path existed
        return stats
    except FileNotFoundError:
        return None
    except Exception as err:  # noqa: BLE001 - a damaged cache is recomputed, not fatal
        log.warning("ignoring unreadable statistics cache %s (%s)", path, err)
        return None


def _check_stored(path: Path) -> None:
    """Refuse (as unreadable) an .npz whose members are compressed or declare more data than
    the file holds: np.savez stores members as they are, so a cache that unpacks to more
    than its own size is not one of ours, and reading it could take any amount of memory."""
    import zipfile

    size = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        total = sum(m.file_size for m in members)
        if len(members) > 16 or total > size or any(m.compress_type != zipfile.ZIP_STORED for m in members):
            raise ValueError(f"its {len(members)} members declare {total:,} bytes (compressed or more than the "
                             f"file's {size:,}); np.savez stores its arrays uncompressed")


def write(path: Path, stats: RealStats) -> None:
    with atomic_write(path) as tmp:
        np.savez(tmp, key=json.dumps(stats.key, sort_keys=True), feats=stats.feats, mu=stats.mu, sigma=stats.sigma)


def compute(data_dir: Path, manifest: store.Manifest, num_real: int | None, featurizer: Featurizer,
            batch_size: int) -> RealStats:
    images = store.open_images(data_dir)
    n = len(images)
    if num_real is None or num_real >= n:
        indices = np.arange(n)
    else:   # a fixed random subset, sorted so the memory map is read forward
        indices = np.sort(np.random.default_rng(SUBSET_SEED).choice(n, num_real, replace=False))
    key = cache_key(manifest, num_real, featurizer.mode, featurizer.extractor.sha256, featurizer.extractor.kind)
    t0 = time.perf_counter()
    batches = logged(dataset_batches(images, indices, batch_size), len(indices),
                     f"real features {manifest.name}", log)
    feats, _ = featurizer.run(batches)
    log.info("features of %d real images in %.1f s", len(feats), time.perf_counter() - t0)
    mu, sigma = scores.mean_cov(feats)
    return RealStats(key, feats, mu, sigma)


def real_stats(data_dir: str | Path, num_real: int | None, featurizer: Featurizer, path: str | Path,
               batch_size: int = 64) -> RealStats:
    """The cached statistics at `path` if their key matches, else computed and cached."""
    data_dir, path = Path(data_dir), Path(path)
    manifest = store.read_manifest(data_dir)
    key = cache_key(manifest, num_real, featurizer.mode, featurizer.extractor.sha256, featurizer.extractor.kind)
    cached = read(path)
    if cached is not None and cached.key == key:
        log.info("real statistics from cache %s (%d images)", path, cached.count)
        return cached
    if cached is not None:
        changed = sorted(k for k in key if cached.key.get(k) != key[k])
        log.warning("statistics cache %s is stale (%s changed); recomputing", path, ", ".join(changed))
    stats = compute(data_dir, manifest, num_real, featurizer, batch_size)
    write(path, stats)
    return stats

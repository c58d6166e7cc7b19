"""Measure one snapshot: generate straight from the generator, extract features, score.

Generated images never touch the disk (unless asked to, for inspection): they are
quantized to uint8 exactly as a saved PNG would be and go through the same resize as the
reals. Latents come in blocks of LATENT_BLOCK images, each block from its own generator
seeded by (seed, block index), so the first n latents are the same for every total count
and batch size: fid10k is measured on the first 10,000 images of the fid50k pass.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ganrepro import __version__
from ganrepro.data import store
from ganrepro.errors import MetricsError
from ganrepro.files import atomic_write_text, sha256_file
from ganrepro.images import save_png, to_uint8
from ganrepro.machine import cpu_name
from ganrepro.metrics import inception, scores, stats
from ganrepro.metrics.features import Featurizer
from ganrepro.progress import logged
from ganrepro.protocol import DISENTANGLEMENT_SOURCES, count_suffix, dci_name

log = logging.getLogger(__name__)

NAMES = ("fid", "kid", "pr", "is")
LATENT_BLOCK = 1000
PR_FEATURES = ("Inception-v3 pool features (2048-d), as in the ADM evaluation suite; "
               "the paper used VGG16 features")


@dataclass
class Options:
    metrics: list[str] = field(default_factory=lambda: list(NAMES))
    num_gen: list[int] = field(default_factory=lambda: [10000])
    num_real: int | None = None                 # None = all reals
    seed: int = 0
    repeats: int = 1
    fid_mode: str = "clean"
    batch_size: int = 64
    device: str = "cpu"
    weights_dir: str | None = None
    save_images: Path | None = None
    psi: float = 1.0                            # truncation (1 = off, as fid50k is measured)
    extractor: str = "reference"                # Inception path: reference (TorchScript) or fast
    disentanglement: int | None = None          # images scored for DCI/modularity (shapes only)

    def check(self) -> None:
        unknown = [m for m in self.metrics if m not in NAMES]
        if unknown or not self.metrics:
            raise MetricsError(f"unknown metric {', '.join(unknown) or '(none)'}; allowed: {', '.join(NAMES)}")
        if not self.num_gen or min(self.num_gen) < 2:
            raise MetricsError(f"num_gen must be one or more counts >= 2, got {self.num_gen}")
        if self.repeats < 1:
            raise MetricsError(f"repeats must be >= 1, got {self.repeats}")
        if not 0 <= self.psi <= 1:
            raise MetricsError(f"truncation psi must be between 0 and 1, got {self.psi}")
        if self.disentanglement is not None and self.disentanglement < 10:
            raise MetricsError(f"disentanglement needs at least 10 images, got {self.disentanglement}")


def latents(G, n: int, seed: int) -> Iterator[torch.Tensor]:
    """n latents in blocks; block b is drawn from a generator seeded by (seed, b)."""
    for block, start in enumerate(range(0, n, LATENT_BLOCK)):
        state = np.random.SeedSequence([seed, block]).generate_state(1, np.uint64)[0]
        gen = torch.Generator().manual_seed(int(state))
        yield torch.randn(min(LATENT_BLOCK, n - start), *G.z_shape, generator=gen)


@torch.no_grad()
def generate(G, n: int, seed: int, batch_size: int, device: torch.device, psi: float = 1.0) -> Iterator[np.ndarray]:
    """uint8 NHWC batches of n generated images (truncated towards the snapshot's w_avg
    when psi < 1). Per-pixel noise is seeded too, so the same (snapshot, seed, batch
    size, device) gives the same images."""
    z_all = torch.cat(list(latents(G, n, seed)))
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for z in z_all.split(batch_size):
            yield to_uint8(G(z.to(device), psi=psi, noise_mode="random"))


def _save_pngs(batches: Iterator[np.ndarray], folder: Path) -> Iterator[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    i = 0
    for batch in batches:
        for img in batch:
            save_png(img, folder / f"{i:06d}.png")
            i += 1
        yield batch


def _scores(opts: Options, extractor: inception.Extractor, real: stats.RealStats, feats: np.ndarray,
            probs: np.ndarray | None, seed: int, device: torch.device) -> tuple[dict, dict]:
    values, unavailable = {}, {}
    for n in opts.num_gen:
        s, f = count_suffix(n), feats[:n]
        if "fid" in opts.metrics:
            values[f"fid{s}"] = scores.fid_features(f, real.mu, real.sigma, real.feats)
        if "kid" in opts.metrics:
            values[f"kid{s}"] = scores.kid(f, real.feats, seed)
        if "pr" in opts.metrics:
            p, r = scores.precision_recall(real.feats, f, scores.PR_K, device)
            values[f"pr{s}"] = {"precision": p, "recall": r, "k": scores.PR_K}
        if "is" in opts.metrics:
            if probs is None:
                unavailable[f"is{s}"] = (
                    f"the offline Inception copy ({extractor.path.name}) has no logits layer; put NVIDIA's "
                    f"{inception.NVIDIA_FILE} in {opts.weights_dir or 'the weights directory'} to measure IS")
            else:
                mean, std = scores.inception_score(probs[:n])
                values[f"is{s}"] = {"mean": mean, "std": std, "splits": scores.IS_SPLITS}
    return values, unavailable


def _flatten(values: dict) -> dict[str, float]:
    """{'pr10k': {'precision': p, ...}} -> {'precision10k': p, 'recall10k': r}; scalars as they are."""
    flat = {}
    for name, v in values.items():
        if isinstance(v, dict):
            if name.startswith("pr"):
                flat[f"precision{name[2:]}"], flat[f"recall{name[2:]}"] = v["precision"], v["recall"]
            elif name.startswith("is"):
                flat[name] = v["mean"]
        else:
            flat[name] = v
    return flat


def _noise(per_seed: list[dict], seeds: list[int]) -> dict | None:
    if len(per_seed) < 2:
        return None
    flats = [_flatten(v) for v in per_seed]
    noise: dict = {"seeds": seeds}
    for name in flats[0]:
        vals = [f[name] for f in flats]
        noise[name] = {"values": vals, "mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1))}
    return noise


def measure_disentanglement(G, n: int, seed: int, batch_size: int, device) -> dict:
    """The disentanglement scores of generator G over n generated images: codes are the z
    that `generate` draws for (n, seed), factors the colour areas of its images
    (ganrepro.metrics.disentanglement)."""
    from ganrepro.metrics import disentanglement as dm

    if n < 10:
        raise MetricsError(f"disentanglement needs at least 10 images, got {n}")
    codes = torch.cat(list(latents(G, n, seed))).reshape(n, -1).numpy()
    images = np.concatenate(list(generate(G, n, seed, batch_size, torch.device(device))))
    return dm.score_images(codes, images, seed)


def check_disentanglement(manifest: store.Manifest) -> None:
    """Disentanglement is scored on the colours of the procedural RGB scenes only."""
    if manifest.source not in DISENTANGLEMENT_SOURCES or manifest.channels != 3:
        raise MetricsError(f"disentanglement reads the colours of RGB scenes of the source(s) "
                           f"{', '.join(DISENTANGLEMENT_SOURCES)}; dataset {manifest.name} is "
                           f"{manifest.channels}-channel from the source {manifest.source}")


def _disentanglement(G, manifest: store.Manifest, opts: Options, device: torch.device) -> tuple[dict, dict, dict]:
    """(metrics entry, unavailable entry, details) of the disentanglement scores over
    opts.disentanglement images at the first sampling seed. A generator whose images give
    the fit nothing to work on (no colour varies) is recorded as unavailable, with the
    reason, rather than failing the evaluation."""
    from ganrepro.metrics import disentanglement as dm

    n = opts.disentanglement
    name = dci_name(n)
    t0 = time.perf_counter()
    try:
        record = measure_disentanglement(G, n, opts.seed, opts.batch_size, device)
    except MetricsError as err:
        log.warning("%s not measured: %s", name, err)
        return {}, {name: str(err)}, {"num_images": n, "seed": opts.seed}
    scores_ = {k: record.pop(k) for k in dm.SCORE_NAMES}
    log.info("%s: %s", name, ", ".join(f"{k} {v:.3f}" for k, v in scores_.items()))
    return {name: scores_}, {}, {**record, "seconds": round(time.perf_counter() - t0, 2)}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_name()})"


def evaluate(snapshot: str | Path, data_dir: str | Path, stats_path: str | Path, opts: Options) -> dict:
    """Every requested metric of one snapshot, as the metrics JSON record."""
    from ganrepro.models import load_snapshot

    opts.check()
    t0 = time.perf_counter()
    device = torch.device(opts.device)
    manifest = store.read_manifest(data_dir)
    if opts.disentanglement:
        check_disentanglement(manifest)
    G, meta = load_snapshot(snapshot, device)
    res = meta["hparams"].get("resolution")
    if res is not None and res != manifest.resolution:
        raise MetricsError(f"{snapshot} generates {res}x{res} images but dataset {manifest.name} is "
                           f"{manifest.resolution}x{manifest.resolution}; evaluate it against its own dataset")
    extractor = inception.load(opts.weights_dir, device, opts.extractor)
    featurizer = Featurizer(extractor, opts.fid_mode, probabilities="is" in opts.metrics and extractor.logits)
    try:
        real = stats.real_stats(data_dir, opts.num_real, featurizer, stats_path, opts.batch_size)
        total = max(opts.num_gen)
        seeds = [opts.seed + i for i in range(opts.repeats)]
        per_seed, unavailable = [], {}
        for seed in seeds:
            batches = generate(G, total, seed, opts.batch_size, device, opts.psi)
            if opts.save_images and seed == opts.seed:
                batches = _save_pngs(batches, Path(opts.save_images))
            batches = logged(batches, total, f"{meta['model']} kimg {meta['kimg']} seed {seed}", log)
            feats, probs = featurizer.run(batches)
            values, unavailable = _scores(opts, extractor, real, feats, probs, seed, device)
            per_seed.append(values)
            log.info("seed %d: %s", seed, ", ".join(f"{k} {v:.4g}" for k, v in _flatten(values).items()))
    finally:
        featurizer.close()
    details = None
    if opts.disentanglement:
        dci, missing, details = _disentanglement(G, manifest, opts, device)
        per_seed[0].update(dci)
        unavailable.update(missing)
    return {
        "format": 1, "dataset": manifest.name, "model": meta["model"], "kimg": meta["kimg"],
        "snapshot": str(snapshot), "snapshot_sha256": sha256_file(snapshot),
        "resolution": manifest.resolution, "seed": opts.seed, "fid_mode": opts.fid_mode, "truncation": opts.psi,
        "source": meta.get("source"),
        "extractor": extractor.identity(), "num_real": real.count, "num_gen": sorted(opts.num_gen),
        "metrics": per_seed[0], "unavailable": unavailable,
        "pr_features": PR_FEATURES if "pr" in opts.metrics else None,
        "noise": _noise(per_seed, seeds), "disentanglement": details,
        "seconds": round(time.perf_counter() - t0, 2), "device": device_name(device),
        "versions": {"ganrepro": __version__, "torch": torch.__version__,
                     "clean-fid": importlib.metadata.version("clean-fid"),
                     "python": platform.python_version()},
    }


def write_json(record: dict, path: str | Path) -> None:
    """Atomically: a killed evaluation leaves no metrics file that looks complete."""
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")

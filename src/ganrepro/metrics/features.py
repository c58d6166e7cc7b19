"""From uint8 images to Inception features, the way clean-fid prepares image files.

Images reach this module as uint8 NHWC arrays: real images straight from the packed
dataset, generated ones quantized exactly as a saved PNG would be. In `clean` mode each
image is resized to 299x299 with clean-fid's own resizer (PIL bicubic on float channels),
so the features equal those clean-fid computes from the same images saved as PNG files.
The resizing runs in a thread pool (PIL releases the GIL); the network runs in batches.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np
import torch
from cleanfid.resize import build_resizer

from ganrepro.errors import MetricsError
from ganrepro.metrics.inception import NVIDIA_FILE, Extractor

MODES = ("clean", "legacy_tensorflow")


class Featurizer:
    """Turns uint8 NHWC batches into pool features (and softmax outputs when asked)."""

    def __init__(self, extractor: Extractor, mode: str = "clean", probabilities: bool = False):
        if mode not in MODES:
            raise MetricsError(f"unknown FID mode {mode!r}; allowed: {', '.join(MODES)}")
        if mode == "legacy_tensorflow" and not extractor.resizes_inside:
            raise MetricsError(f"fid_mode legacy_tensorflow resizes inside NVIDIA's {NVIDIA_FILE}, which is "
                               "not in the weights directory; use fid_mode clean with the offline network")
        self.extractor, self.mode, self.probabilities = extractor, mode, probabilities
        self.resize = build_resizer(mode) if mode == "clean" else None
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(16, os.cpu_count() or 1)))

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        """The extractor's input for a batch: uint8 [N, H, W, C] -> float32 [N, 3, S, S] in
        [0, 255], grey repeated to three channels, resized to S = 299 in clean mode (the
        network resizes inside in legacy_tensorflow mode). Calling the Featurizer does this
        first; the benchmarks time it apart from the network."""
        if images.shape[-1] == 1:                                      # grey: the same channel thrice
            images = np.repeat(images, 3, axis=-1)
        if self.resize is None:
            return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
        resized = list(self.pool.map(self.resize, images))
        return torch.from_numpy(np.stack(resized).transpose(0, 3, 1, 2).copy())

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = self.prepare(images)
        if self.mode == "clean":
            feats = self.extractor(x)
        else:
            feats = self.extractor.resized_features(x)
        probs = self.extractor.probabilities(x) if self.probabilities else None
        return (feats.cpu().numpy().astype(np.float32),
                None if probs is None else probs.cpu().numpy().astype(np.float64))

    def run(self, batches: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        feats, probs = [], []
        for batch in batches:
            f, p = self(batch)
            feats.append(f)
            if p is not None:
                probs.append(p)
        return np.concatenate(feats), (np.concatenate(probs) if probs else None)

    def close(self) -> None:
        self.pool.shutdown()


def dataset_batches(images: np.ndarray, indices: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """uint8 NHWC batches of the packed NCHW dataset, in the order of `indices`."""
    for start in range(0, len(indices), batch_size):
        yield np.ascontiguousarray(images[indices[start:start + batch_size]].transpose(0, 2, 3, 1))

"""Training-time access to a prepared dataset: a memory-mapped torch Dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganrepro.data.store import open_images, read_manifest


class ImageDataset(torch.utils.data.Dataset):
    """uint8 images [C, H, W] from results/datasets/{name}/images.npy.

    xflip=True doubles the dataset with mirrored copies (the StyleGAN `--mirror`
    convention): item i + N is item i flipped left-right, so the augmentation is
    deterministic and visible to the sampler. Pixels stay uint8 until the training step
    moves them to the device and scales them there.
    """

    def __init__(self, folder: str | Path, xflip: bool = False):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.images = open_images(self.folder)
        self.xflip = xflip

    def __getstate__(self):
        # DataLoader workers reopen the memory map instead of receiving a pickled copy.
        return {k: v for k, v in self.__dict__.items() if k != "images"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.images = open_images(self.folder)

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def __len__(self) -> int:
        return len(self.images) * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> torch.Tensor:
        n = len(self.images)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        image = self.images[index % n]
        if index >= n:
            image = image[:, :, ::-1]
        return torch.from_numpy(image.copy())     # a writable copy, off the memory map

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        # One fancy-indexed read per batch instead of one per image.
        n = len(self.images)
        idx = np.asarray(indices) % len(self)
        batch = self.images[idx % n]          # a copy, safe to modify
        flip = idx >= n
        if flip.any():
            batch[flip] = batch[flip][:, :, :, ::-1]
        return list(torch.from_numpy(batch))

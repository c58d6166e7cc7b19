"""Pictures as arrays: network output to uint8 pixels, many images tiled into one, and a
PNG written atomically. Every PNG and grid this package writes goes through here, so the
same pixels always give the same file. torch is imported only by `to_uint8`.

Tiling stays ours rather than torchvision's make_grid: make_grid turns one-channel images
into three channels and cannot leave trailing rows of a fixed grid black."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ganrepro.files import atomic_write

if TYPE_CHECKING:
    import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float NCHW -> uint8 NHWC, quantized exactly as a saved PNG would be."""
    import torch                # here, so that the report's figures can tile and save without torch

    x = (images.float().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def tile(pixels: np.ndarray, cols: int, rows: int | None = None) -> np.ndarray:
    """uint8 NHWC images -> one HWC image, row by row, `cols` per row; cells past the last
    image (up to `rows` rows) stay black."""
    n, h, w, c = pixels.shape
    rows = -(-n // cols) if rows is None else rows
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows}x{cols} grid")
    canvas = np.zeros((rows * cols, h, w, c), dtype=pixels.dtype)
    canvas[:n] = pixels
    return canvas.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def save_png(pixels: np.ndarray, path: str | Path) -> Path:
    """Write one uint8 HWC image (C = 1 or 3) as a PNG, atomically (see files.atomic_write):
    an interrupted write never leaves a partial PNG under the real name."""
    path = Path(path)
    with atomic_write(path) as tmp:
        Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels).save(tmp)
    return path

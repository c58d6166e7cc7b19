"""Pictures written at every snapshot: the fixed-latent sample grid and, for GANformer,
where a few latent components attend over the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganrepro.files import atomic_write


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float NCHW -> uint8 NHWC, quantized exactly as a saved PNG would be."""
    x = (images.float().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def grid_latents(G, grid: int, seed: int) -> torch.Tensor:
    """The run's fixed latents: drawn once from the seed, the same at every snapshot."""
    return torch.randn(grid * grid, *G.z_shape, generator=torch.Generator().manual_seed(seed))


def save_png(pixels: np.ndarray, path: str | Path) -> Path:
    """Write one uint8 HWC image (C = 1 or 3) as a PNG, atomically: it goes to a hidden
    temporary file beside `path` first, so an interrupted write never leaves a partial
    PNG under the real name."""
    path = Path(path)
    with atomic_write(path) as tmp:
        Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels).save(tmp)
    return path


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


@torch.no_grad()
def save_grid(G, z: torch.Tensor, path: Path, grid: int, device, batch: int = 16) -> None:
    images = torch.cat([G(zb.to(device), noise_mode="const") for zb in z.split(batch)])
    save_png(tile(to_uint8(images), grid, grid), path)


@torch.no_grad()
def save_attention_figure(G, z: torch.Tensor, path: Path, device, samples: int = 4, components: int = 4) -> None:
    """Rows: samples. Columns: the image, then the attention of `components` latents in the
    highest-resolution attention layer, shown as heat over the image."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images, maps = G(z[:samples].to(device), noise_mode="const", return_attention=True)
    if not maps:
        return
    att = maps[-1].float()                                              # [S, k, h, w]
    att = torch.nn.functional.interpolate(att, size=images.shape[-2:], mode="nearest").cpu().numpy()
    pixels = to_uint8(images)
    cols = 1 + min(components, att.shape[1])
    fig, axes = plt.subplots(samples, cols, figsize=(1.6 * cols, 1.6 * samples), squeeze=False)
    for i in range(samples):
        axes[i, 0].imshow(pixels[i].squeeze())
        for j in range(1, cols):
            axes[i, j].imshow(pixels[i].squeeze(), alpha=0.5)
            axes[i, j].imshow(att[i, j - 1], cmap="magma", alpha=0.6, vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(f"latent {j - 1}", fontsize=7)
        for ax in axes[i]:
            ax.axis("off")
    fig.tight_layout(pad=0.2)
    try:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)

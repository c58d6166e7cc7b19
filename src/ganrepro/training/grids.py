"""Pictures written at every snapshot: the fixed-latent sample grid and, for GANformer,
where a few latent components attend over the image."""

from __future__ import annotations

from pathlib import Path

import torch

from ganrepro.files import atomic_write
from ganrepro.images import save_png, tile, to_uint8


def grid_latents(G, grid: int, seed: int) -> torch.Tensor:
    """The run's fixed latents: drawn once from the seed, the same at every snapshot."""
    return torch.randn(grid * grid, *G.z_shape, generator=torch.Generator().manual_seed(seed))


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

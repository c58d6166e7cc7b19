"""GANformer generator (Hudson & Zitnick 2021, sec. 3): StyleGAN2 plus k latent
components that talk to the image through bipartite attention (attention.py).

Latents: z is [B, k + 1, z_dim]; the last component is global and, mapped by its own
MLP, drives the StyleGAN2 modulation of every layer, as in the official code; the k
local components share one mapping MLP (residual by default, the official choice) and
become the latents Y that every attention layer at start_res..end_res reads (and, for
duplex, updates).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from ganrepro.models.attention import BipartiteAttention
from ganrepro.models.layers import MappingNetwork
from ganrepro.models.stylegan2 import Discriminator, Generator, StyleGAN2Config


@dataclass
class GANformerConfig(StyleGAN2Config):
    z_dim: int = 32                 # size of each latent component (the official 512 / 16)
    w_dim: int = 32
    mapping_residual: bool = True
    components: int = 16            # k local latent components (plus 1 global)
    heads: int = 1                  # attention heads
    attention_dropout: float = 0.12 # dropout on attention probabilities (official default)
    integration: str = "both"       # "both" = eq. 6, gamma(a)*omega(X)+beta(a); "mul", "add" (official names)
    start_res: int = 4              # attention at resolutions start_res..end_res (inclusive)
    end_res: int = 128              # (official: every resolution below 256)
    duplex_keys: str = "centroids"  # duplex keys: "centroids" (paper eq. 8) or "kmeans" (official code)
    kmeans_iters: int = 1           # k-means refinements per layer when duplex_keys == "kmeans"
    pos_dim: int = 32               # sinusoidal position features of the image grid
    d_attention: bool = False       # attention in the discriminator too (released models: off)


def _attention_factory(cfg: GANformerConfig, kind: str):
    made = []

    def make(resolution: int, channels: int):
        if not cfg.start_res <= resolution <= cfg.end_res:
            return None
        layer = BipartiteAttention(
            channels, cfg.w_dim, cfg.components, resolution, kind=kind, heads=cfg.heads,
            dropout=cfg.attention_dropout, integration=cfg.integration,
            duplex_keys=cfg.duplex_keys, kmeans_iters=cfg.kmeans_iters, pos_dim=cfg.pos_dim,
            first=not made)
        made.append(layer)
        return layer
    return make


class GANformerGenerator(Generator):
    def __init__(self, cfg: GANformerConfig, kind: str = "simplex"):
        super().__init__(cfg, _attention_factory(cfg, kind))
        self.kind = kind
        self.local_mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers,
                                            cfg.mapping_lr_mul, cfg.mapping_residual)
        self.register_buffer("y_avg", torch.zeros(cfg.w_dim))

    @property
    def z_shape(self) -> tuple[int, ...]:
        return (self.cfg.components + 1, self.cfg.z_dim)

    def map(self, z: torch.Tensor, psi: float = 1.0):
        ws, _ = super().map(z[:, -1], psi)               # global component -> styles
        ys = self.local_mapping(z[:, :-1])               # shared MLP over the k local components
        self._track(self.y_avg, ys.flatten(0, 1))
        if psi != 1:
            ys = self.y_avg.to(ys.dtype).lerp(ys, psi)
        return ws, ys


def ganformer_discriminator(cfg: GANformerConfig) -> Discriminator:
    make = (_attention_factory(cfg, "simplex") if cfg.d_attention
            else lambda resolution, channels: None)
    return Discriminator(cfg.resolution, cfg.channels, cfg.channel_base, cfg.channel_max,
                         cfg.mbstd_group, make_attention=make, latents=(cfg.components, cfg.w_dim))


simplex = partial(GANformerGenerator, kind="simplex")
duplex = partial(GANformerGenerator, kind="duplex")

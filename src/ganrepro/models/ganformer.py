"""GANformer generator (Hudson & Zitnick 2021, sec. 3) as the official PyTorch code's
`--ganformer-default` computes it: StyleGAN2 plus k latent components that talk to the
image through bipartite attention (attention.py).

Latents: z is [B, k + 1, z_dim]; the last component is global and, mapped by its own
MLP, drives the StyleGAN2 modulation of every layer. The k local components are
normalized jointly (one RMS over all k * z_dim values), share one mapping MLP with
self-attention among them (`mapping_ltnt2ltnt`) and become the latents Y that every
attention layer at start_res..end_res reads. One trained table of latent positions
(`pos`, [k, w_dim]) serves the mapping's self-attention and every synthesis layer.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ganrepro.models.attention import BipartiteAttention, LatentSelfAttention
from ganrepro.models.layers import MappingNetwork, normalize_latent
from ganrepro.models.stylegan2 import Discriminator, Generator
from ganrepro.settings.hparams import GANformerConfig


def _attention_factory(cfg: GANformerConfig, kind: str, latent_pos: bool = True):
    def make(resolution: int, channels: int):
        if not cfg.start_res <= resolution <= cfg.end_res:
            return None
        return BipartiteAttention(
            channels, cfg.w_dim, cfg.components, resolution, kind=kind, heads=cfg.heads,
            dropout=cfg.attention_dropout, integration=cfg.integration,
            duplex_keys=cfg.duplex_keys, kmeans_iters=cfg.kmeans_iters, pos_dim=cfg.pos_dim,
            latent_pos=latent_pos)
    return make


class GANformerGenerator(Generator):
    def __init__(self, cfg: GANformerConfig, kind: str = "simplex"):
        super().__init__(cfg, _attention_factory(cfg, kind))
        self.kind = kind
        make = ((lambda i: LatentSelfAttention(cfg.w_dim, cfg.heads, cfg.attention_dropout))
                if cfg.mapping_ltnt2ltnt else None)
        self.local_mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, cfg.mapping_lr_mul,
                                            cfg.mapping_residual, make_attention=make)
        self.pos = nn.Parameter(torch.rand(cfg.components, cfg.w_dim))   # trained latent positions

    @property
    def z_shape(self) -> tuple[int, ...]:
        return (self.cfg.components + 1, self.cfg.z_dim)

    def map(self, z: torch.Tensor, psi: float = 1.0, update_avg: bool = True):
        """ws [B, num_ws, k + 1, w_dim] (local latents first, the global one last) and None."""
        z_global = normalize_latent(z[:, -1], dims=-1) if self.cfg.normalize_global else z[:, -1]
        w_global = self.mapping(z_global)
        w_local = self.local_mapping(normalize_latent(z[:, :-1], dims=(1, 2)), self.pos)
        w = torch.cat([w_local, w_global[:, None]], dim=1)
        return self._broadcast(w, psi, update_avg), None

    def _synthesis_state(self) -> dict:
        return {"pos": self.pos}


def ganformer_discriminator(cfg: GANformerConfig) -> Discriminator:
    make = (_attention_factory(cfg, "simplex", latent_pos=False) if cfg.d_attention
            else lambda resolution, channels: None)
    return Discriminator(cfg.resolution, cfg.channels, cfg.channel_base, cfg.channel_max,
                         cfg.mbstd_group, make_attention=make, latents=(cfg.components, cfg.w_dim))


simplex = partial(GANformerGenerator, kind="simplex")
duplex = partial(GANformerGenerator, kind="duplex")

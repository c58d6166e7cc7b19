"""Bipartite attention between image features X (n positions) and k latents Y
(Hudson & Zitnick 2021, sec. 3.1). Every product is between an n-by-k or k-by-n
matrix and a feature matrix, so time and memory are O(n*k), never O(n^2).

simplex (eqs. 5-7): the image attends to the latents,
    a(X, Y) = softmax(q(X + P_X) k(Y + P_Y)^T / sqrt(d)) v(Y)     (softmax over the k latents)
    u(X, Y) = gamma(a) * omega(X) + beta(a)                         (eq. 6, "multiplicative integration")

duplex (eq. 8 and the alternating update of sec. 3.1.2): first the latents attend to
the image and are updated, Y := LayerNorm(Y + a(Y, X)); the centroids K = a(Y, X)
serve as keys, the updated latents as values, and the image is integrated as above with
A(X, K, V). The updated Y flows on to the next layer.

`duplex_keys="kmeans"` is the official code's variant instead: keys are centroids of
image features under the previous layer's assignment, refined for `kmeans_iters`
rounds, and the latents never enter the logits (official issue #45). It is offered so
the report can say exactly which "duplex" ran.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganrepro.models.layers import EqualLinear

INTEGRATIONS = ("add", "mul", "both")


def sinusoidal_grid(resolution: int, dim: int) -> torch.Tensor:
    """2-D sinusoidal position encoding, [resolution^2, dim]: half the features encode
    the row, half the column, each with sin/cos at geometrically spaced frequencies."""
    assert dim % 4 == 0, "positional dimension must be a multiple of 4"
    coords = torch.linspace(-1.0, 1.0, resolution)
    freqs = math.pi * torch.logspace(0, math.log10(resolution / 2), dim // 4)
    angles = coords[:, None] * freqs[None]                                     # [R, dim/4]
    enc = torch.cat([angles.sin(), angles.cos()], dim=1)                       # [R, dim/2]
    rows = enc[:, None, :].expand(resolution, resolution, dim // 2)
    cols = enc[None, :, :].expand(resolution, resolution, dim // 2)
    return torch.cat([rows, cols], dim=-1).reshape(resolution * resolution, dim)


class BipartiteAttention(nn.Module):
    def __init__(self, channels: int, latent_dim: int, k: int, resolution: int,
                 kind: str = "simplex", heads: int = 1, dropout: float = 0.0,
                 integration: str = "both", duplex_keys: str = "centroids",
                 kmeans_iters: int = 1, pos_dim: int = 32, first: bool = True):
        super().__init__()
        assert kind in ("simplex", "duplex"), kind
        assert integration in INTEGRATIONS, integration
        assert duplex_keys in ("centroids", "kmeans"), duplex_keys
        if channels % heads:
            raise ValueError(f"attention heads ({heads}) must divide the channels ({channels}) at {resolution}px")
        self.kind, self.heads, self.dropout = kind, heads, dropout
        self.integration, self.kmeans_iters = integration, kmeans_iters
        self.kmeans = kind == "duplex" and duplex_keys == "kmeans"
        d = channels    # attention width = image channels, as in the official code
        self.register_buffer("grid", sinusoidal_grid(resolution, pos_dim), persistent=False)
        # Queries from the image (eq. 5), values from the latents, gamma/beta from the result.
        self.q = EqualLinear(channels, d)
        self.q_pos = EqualLinear(pos_dim, d, bias=False)
        self.v = EqualLinear(latent_dim, d)
        self.control = EqualLinear(d, 2 * channels if integration == "both" else channels)
        # Only the parts a variant uses exist, so no parameter is dead weight.
        if not self.kmeans or first:
            self.latent_pos = nn.Parameter(torch.rand(k, latent_dim) * 2 - 1)   # trained latent positions
        if kind == "simplex" or (self.kmeans and first):
            self.k = EqualLinear(latent_dim, d)
        if kind == "duplex" and not self.kmeans:
            # latents -> image: Y attends to X (eq. 8's a(Y, X)), then keys from the centroids
            self.yq = EqualLinear(latent_dim, d)
            self.xk = EqualLinear(channels, d)
            self.xk_pos = EqualLinear(pos_dim, d, bias=False)
            self.xv = EqualLinear(channels, d)
            self.y_out = EqualLinear(d, latent_dim)
            self.y_norm = nn.LayerNorm(latent_dim)
            self.centroid_k = EqualLinear(d, d)

    # -- helpers ------------------------------------------------------------------------
    def _split(self, t: torch.Tensor) -> torch.Tensor:       # [B, L, d] -> [B, h, L, d/h]
        b, length, d = t.shape
        return t.reshape(b, length, self.heads, d // self.heads).transpose(1, 2)

    def _merge(self, t: torch.Tensor) -> torch.Tensor:       # [B, h, L, d/h] -> [B, L, d]
        b, h, length, dh = t.shape
        return t.transpose(1, 2).reshape(b, length, h * dh)

    def _probs(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        return F.dropout(logits.softmax(dim=-1), self.dropout, self.training)

    def integrate(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Eq. 6 and its variants; x is [B, n, C], a the attended values [B, n, d].

        omega normalizes each position's features over channels. 'add': centred X plus
        beta(a). 'mul': (1 + gamma(a)) * rms-normalized X, the official default. 'both':
        (1 + gamma(a)) * omega(X) + beta(a), the paper's eq. 6. gamma is offset by 1, as
        in the official code, so the layer starts as a plain normalization.
        """
        control = self.control(a)
        if self.integration in ("add", "both"):
            x = x - x.mean(dim=-1, keepdim=True)
        if self.integration in ("mul", "both"):
            x = x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + 1e-8)
        if self.integration == "add":
            return x + control
        if self.integration == "mul":
            return x * (1 + control)
        gamma, beta = control.chunk(2, dim=-1)
        return x * (1 + gamma) + beta

    # -- forward ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, y: torch.Tensor, state: dict | None = None,
                return_attention: bool = False):
        """x: [B, C, H, W] image features; y: [B, k, latent_dim] latents.

        Returns (x, y, state, attention) where attention is [B, k, H, W] (averaged over
        heads) when return_attention, else None; y is updated by duplex only; state carries
        the k-means assignment from layer to layer.
        """
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)                          # [B, n, C]
        grid = self.grid.to(tokens.dtype)
        query = self._split(self.q(tokens) + self.q_pos(grid)[None])   # [B, h, n, dh]
        state = dict(state or {})
        if self.kind == "simplex":
            keys = self._split(self.k(y + self.latent_pos))
        elif self.kmeans:
            keys = self._kmeans_keys(query, y, state, h)
        else:
            y, centroids = self._update_latents(tokens, grid, y)
            keys = self._split(self.centroid_k(centroids))                 # K = a(Y, X)
        values = self._split(self.v(y))
        probs = self._probs(query, keys)                               # [B, h, n, k], sums to 1 over k
        if self.kmeans:
            state["assign"], state["size"] = probs.detach(), h
        out = self.integrate(tokens, self._merge(probs @ values))
        x = out.transpose(1, 2).reshape(b, c, h, w)
        attention = probs.mean(dim=1).transpose(1, 2).reshape(b, -1, h, w) if return_attention else None
        return x, y, state, attention

    def _update_latents(self, tokens, grid, y):
        """Y := LayerNorm(Y + a(Y, X)); returns the new Y and the centroids a(Y, X)."""
        q = self._split(self.yq(y + self.latent_pos))                              # [B, h, k, dh]
        k = self._split(self.xk(tokens) + self.xk_pos(grid)[None])                 # [B, h, n, dh]
        v = self._split(self.xv(tokens))
        centroids = self._merge(self._probs(q, k) @ v)                             # [B, k, d], softmax over n
        return self.y_norm(y + self.y_out(centroids)), centroids

    def _kmeans_keys(self, query, y, state, size):
        """Official-code duplex: keys are centroids of the image queries under the previous
        layer's assignment (upsampled to this resolution), refined for kmeans_iters rounds;
        the first layer starts from the latents."""
        assign = state.get("assign")                                   # [B, h, n_prev, k]
        if assign is None:
            centroids = self._split(self.k(y + self.latent_pos))
        else:
            prev = state["size"]
            if prev != size:
                b, heads, _, k = assign.shape
                grid = assign.permute(0, 1, 3, 2).reshape(b, heads * k, prev, prev)
                grid = F.interpolate(grid, size=(size, size), mode="nearest")
                assign = grid.reshape(b, heads, k, size * size).permute(0, 1, 3, 2)
            centroids = self._centroids(assign, query)
        for _ in range(self.kmeans_iters - 1):
            centroids = self._centroids(self._probs(query, centroids), query)
        return centroids

    @staticmethod
    def _centroids(assign: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Mean query of the positions assigned to each latent: [B, h, k, dh]."""
        weights = assign / (assign.sum(dim=2, keepdim=True) + 1e-8)
        return weights.transpose(-1, -2) @ query

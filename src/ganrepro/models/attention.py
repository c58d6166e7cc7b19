"""Bipartite attention between image features X (n positions) and k latents Y
(Hudson & Zitnick 2021, sec. 3.1), as the official PyTorch code computes it. Every
product is between an n-by-k or k-by-n matrix and a feature matrix, so time and memory
are O(n*k), never O(n^2).

simplex (eqs. 5-7): the image attends to the latents,
    a(X, Y) = softmax(q(X, P_X) k(Y, P_Y)^T / sqrt(d)) v(Y)       (softmax over the k latents)
with queries q(X) + f(P_X) from a sinusoidal grid P_X and keys k(Y) + g(P_Y) from one
trained latent position table P_Y that the generator shares across layers; then the
image features are normalized over channels and modulated, `integration` "mul" (the
official default): (1 + gamma(a)) * X / rms(X).

duplex, `duplex_keys: kmeans` (what the official `--ganformer-default` computes): the
scores compare the [content, position] halves of each query, scaled by a learned
`att_weight`, with k learned centroids of the layer; the values are still v(Y). The
official layer also computes keys from Y and centroid assignments passed between layers,
but neither reaches its output, so they are not computed here.

Paper readings, not the released code's (named options, off by default):
- `integration: both` is eq. 6, (1 + gamma(a)) * omega(X) + beta(a) with omega centring
  and normalizing (the official PyTorch code crashes with it).
- `duplex_keys: centroids` is eq. 8's bidirectional update (sec. 3.1.2): first the latents
  attend to the image, Y := LayerNorm(Y + a(Y, X)); the centroids a(Y, X) give the keys,
  the updated Y the values, and Y flows on to the next attention layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganrepro.models.layers import EqualLinear
from ganrepro.settings.hparams import DUPLEX_KEYS, INTEGRATIONS


def sinusoidal_grid(resolution: int, dim: int) -> torch.Tensor:
    """The official 2-D sinusoidal encoding of a resolution^2 grid, [resolution^2, dim]:
    coordinates in [-1, 1], frequencies 10000^(-4i/dim), features [sin x, cos x, sin y, cos y]
    with x the column; rows of the result follow the image's row-major flattening."""
    if dim % 4:
        raise ValueError(f"the positional dimension must be a multiple of 4 (got {dim})")
    coords = torch.linspace(-1.0, 1.0, resolution)[:, None]
    freqs = torch.pow(10000.0, 4 * torch.arange(dim // 4, dtype=torch.float32) / dim)
    enc = torch.cat([torch.sin(coords / freqs), torch.cos(coords / freqs)], dim=1)   # [R, dim/2]
    cols = enc[None, :, :].expand(resolution, resolution, dim // 2)
    rows = enc[:, None, :].expand(resolution, resolution, dim // 2)
    return torch.cat([cols, rows], dim=-1).reshape(resolution * resolution, dim)


def attention_dropout(probs: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """The official two dropouts of rate/2 each: one over single attention weights, one over
    whole latents (every position drops the same latent), without renormalization."""
    if not training or rate == 0:
        return probs
    probs = probs * F.dropout(torch.ones_like(probs), rate / 2, True)
    column = torch.ones(*probs.shape[:-2], 1, probs.shape[-1], device=probs.device, dtype=probs.dtype)
    return probs * F.dropout(column, rate / 2, True)


def _split(t: torch.Tensor, heads: int) -> torch.Tensor:       # [B, L, d] -> [B, h, L, d/h]
    b, length, d = t.shape
    return t.reshape(b, length, heads, d // heads).transpose(1, 2)


def _merge(t: torch.Tensor) -> torch.Tensor:                   # [B, h, L, d/h] -> [B, L, d]
    b, h, length, dh = t.shape
    return t.transpose(1, 2).reshape(b, length, h * dh)


class LatentSelfAttention(nn.Module):
    """Self-attention among the k latents inside the mapping network (the official
    `mapping_ltnt2ltnt`): Y + FC(a(Y, Y)), with the shared latent positions added to
    queries and keys, and no normalization (the official layer's defaults there)."""

    def __init__(self, dim: int, heads: int = 1, dropout: float = 0.12):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention heads ({heads}) must divide the latent size ({dim})")
        self.heads, self.dropout = heads, dropout
        self.q, self.k, self.v = (EqualLinear(dim, dim) for _ in range(3))
        self.q_pos, self.k_pos = EqualLinear(dim, dim), EqualLinear(dim, dim)
        self.control = EqualLinear(dim, dim)

    def forward(self, y: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        q, k = self.q(y), self.k(y)
        if pos is not None:
            q, k = q + self.q_pos(pos), k + self.k_pos(pos)
        q, k, v = (_split(t, self.heads) for t in (q, k, self.v(y)))
        probs = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(dim=-1)
        probs = attention_dropout(probs, self.dropout, self.training)
        return y + self.control(_merge(probs @ v))


class BipartiteAttention(nn.Module):
    def __init__(self, channels: int, latent_dim: int, k: int, resolution: int,
                 kind: str = "simplex", heads: int = 1, dropout: float = 0.0,
                 integration: str = "mul", duplex_keys: str = "kmeans",
                 kmeans_iters: int = 1, pos_dim: int = 0, latent_pos: bool = True):
        super().__init__()
        assert kind in ("simplex", "duplex"), kind
        assert integration in INTEGRATIONS, integration
        assert duplex_keys in DUPLEX_KEYS, duplex_keys
        if channels % heads:
            raise ValueError(f"attention heads ({heads}) must divide the channels ({channels}) at {resolution}px")
        self.heads, self.dropout = heads, dropout
        self.integration, self.kmeans_iters = integration, kmeans_iters
        self.kmeans = kind == "duplex" and duplex_keys == "kmeans"
        self.bidirectional = kind == "duplex" and duplex_keys == "centroids"
        d = channels                      # attention width = image channels, as in the official code
        pos_dim = pos_dim or latent_dim   # official: the latent size
        self.register_buffer("grid", sinusoidal_grid(resolution, pos_dim), persistent=False)
        self.q = EqualLinear(channels, d)
        self.q_pos = EqualLinear(pos_dim, d)
        self.v = EqualLinear(latent_dim, d)
        self.control = EqualLinear(d, 2 * d if integration == "both" else d)
        if self.kmeans:
            dc = 2 * d // heads           # a centroid compares [content, position] of a query
            self.att_weight = nn.Parameter(torch.ones(heads, 1, dc))
            self.centroids = nn.Parameter(torch.randn(1, heads, k, dc))
        elif self.bidirectional:
            self.yq = EqualLinear(latent_dim, d)
            self.yq_pos = EqualLinear(latent_dim, d) if latent_pos else None
            self.xk = EqualLinear(channels, d)
            self.xk_pos = EqualLinear(pos_dim, d)
            self.xv = EqualLinear(channels, d)
            self.y_out = EqualLinear(d, latent_dim)
            self.y_norm = nn.LayerNorm(latent_dim)
            self.centroid_k = EqualLinear(d, d)
        else:
            self.k = EqualLinear(latent_dim, d)
            self.k_pos = EqualLinear(latent_dim, d) if latent_pos else None

    def _probs(self, scores: torch.Tensor) -> torch.Tensor:
        return attention_dropout(scores.softmax(dim=-1), self.dropout, self.training)

    def integrate(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """x [B, n, C] normalized over channels, then modulated by the attended values a.

        'mul' (official default): (1 + gamma(a)) * x / rms(x). 'add': centred x + beta(a).
        'both' (the paper's eq. 6): (1 + gamma(a)) * omega(x) + beta(a), omega centring
        and normalizing.
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

    def forward(self, x: torch.Tensor, y: torch.Tensor, pos: torch.Tensor | None = None,
                state: dict | None = None, return_attention: bool = False):
        """x: [B, C, H, W] image features; y: [B, k, latent_dim] latents; pos: [k,
        latent_dim] latent positions (needed unless built with latent_pos=False). Returns (x, state, attention), the
        attention [B, k, H, W] averaged over heads when return_attention, else None;
        state carries the updated latents of the bidirectional duplex to the next layer.
        """
        b, c, h, w = x.shape
        state = dict(state or {})
        tokens = x.flatten(2).transpose(1, 2)                          # [B, n, C]
        content, position = self.q(tokens), self.q_pos(self.grid.to(tokens.dtype))[None]
        if self.kmeans:
            scores = self._kmeans_scores(content, position)
        else:
            if self.bidirectional:
                y = state.get("y", y)
                y, centroids = self._update_latents(tokens, y, pos)
                state["y"] = y
                keys = self.centroid_k(centroids)                      # K = a(Y, X)
            else:
                keys = self.k(y) + (self.k_pos(pos)[None] if self.k_pos is not None else 0)
            query, keys = _split(content + position, self.heads), _split(keys, self.heads)
            scores = query @ keys.transpose(-1, -2) / math.sqrt(query.shape[-1])
        probs = self._probs(scores)                                    # [B, h, n, k]
        for _ in range(self.kmeans_iters - 1 if self.kmeans else 0):
            scores = self._kmeans_scores(content, position, probs)
            probs = self._probs(scores)
        out = self.integrate(tokens, _merge(probs @ _split(self.v(y), self.heads)))
        x = out.transpose(1, 2).reshape(b, c, h, w)
        attention = probs.mean(dim=1).transpose(1, 2).reshape(b, -1, h, w) if return_attention else None
        return x, state, attention

    def _kmeans_scores(self, content, position, probs=None):
        """Official k-means duplex scores: [content, position] of each query, weighted by
        att_weight, against the learned centroids; after a first round (kmeans_iters > 1)
        the centroids are the assignment-weighted means of the queries."""
        elements = torch.cat([content, position.expand_as(content)], dim=-1)
        b, n, _ = elements.shape
        elements = elements.reshape(b, n, self.heads, -1).transpose(1, 2)     # [B, h, n, dc]
        if probs is None:
            centroids = self.centroids
        else:
            assign = probs / (probs.sum(dim=-2, keepdim=True) + 1e-8)         # each latent's weights over n
            centroids = assign.transpose(-1, -2) @ elements
        dh = elements.shape[-1] // 2
        return (elements * self.att_weight) @ centroids.transpose(-1, -2) / math.sqrt(dh)

    def _update_latents(self, tokens, y, pos):
        """Paper eq. 8: Y := LayerNorm(Y + a(Y, X)); returns the new Y and the centroids a(Y, X)."""
        q = self.yq(y) + (self.yq_pos(pos)[None] if self.yq_pos is not None else 0)
        k = self.xk(tokens) + self.xk_pos(self.grid.to(tokens.dtype))[None]
        q, k, v = _split(q, self.heads), _split(k, self.heads), _split(self.xv(tokens), self.heads)
        probs = self._probs(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]))   # softmax over n
        centroids = _merge(probs @ v)
        return self.y_norm(y + self.y_out(centroids)), centroids

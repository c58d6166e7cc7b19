"""StyleGAN2 generator and residual discriminator (Karras et al. 2020, configs E/F).

The generator is written so that GANformer (ganformer.py) can reuse it unchanged: each
synthesis layer may carry a bipartite attention module, given by a factory, and the
synthesis pass threads the latents `ys` and the attention state through the layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ganrepro.models.layers import (
    SQRT2, EqualConv2d, EqualLinear, MappingNetwork, MinibatchStd, ModulatedConv2d,
    NoiseInjection, ToRGB, channels_at, log2_int, lrelu, upsample2d)


@dataclass
class StyleGAN2Config:
    resolution: int = 64            # output side length in pixels (a power of two >= 8)
    channels: int = 3               # image channels
    z_dim: int = 512                # input latent size
    w_dim: int = 512                # intermediate latent (style) size
    mapping_layers: int = 8         # FC layers in the mapping network
    mapping_lr_mul: float = 0.01    # learning-rate multiplier of the mapping network
    mapping_residual: bool = False  # residual mapping layers (the official GANformer variant)
    channel_base: int = 32768       # channels at resolution r: min(channel_base // r, channel_max) (official)
    channel_max: int = 512
    architecture: str = "resnet"    # generator: "resnet" or "skip" (the discriminator is resnet)
    mbstd_group: int = 4            # minibatch-std group size in the discriminator
    w_avg_beta: float = 0.995       # decay of the tracked w average (for truncation)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv -> [bipartite attention] -> noise -> bias -> lrelu (the official
    GANformer order: attention acts on the conv output before noise and bias)."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, up: bool = False,
                 attention: nn.Module | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, w_dim, up=up)
        self.attention = attention
        self.noise = NoiseInjection(resolution)
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x, w, ys, state, noise_mode, return_attention):
        x = self.conv(x, w)
        att = None
        if self.attention is not None:
            x, ys, state, att = self.attention(x, ys, state, return_attention)
        x = lrelu(self.noise(x, noise_mode) + self.bias)
        return x, ys, state, att


class SynthesisBlock(nn.Module):
    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, img_channels: int,
                 architecture: str, is_last: bool, make_attention: Callable):
        super().__init__()
        self.first = cin == 0
        self.architecture = architecture
        if self.first:
            self.const = nn.Parameter(torch.randn(1, cout, 4, 4))     # learned 4x4 input
        else:
            self.conv0 = SynthesisLayer(cin, cout, w_dim, resolution, up=True,
                                        attention=make_attention(resolution, cout))
        self.conv1 = SynthesisLayer(cout, cout, w_dim, resolution, attention=make_attention(resolution, cout))
        self.torgb = ToRGB(cout, img_channels, w_dim) if (architecture == "skip" or is_last) else None
        if architecture == "resnet" and not self.first:
            self.skip = EqualConv2d(cin, cout, 1, bias=False, up=True)
        self.num_ws = (1 if self.first else 2) + (1 if self.torgb is not None else 0)

    def forward(self, x, img, ws, ys, state, noise_mode, return_attention):
        maps = []
        it = iter(ws.unbind(dim=1))
        if self.first:
            x = self.const.expand(ws.shape[0], -1, -1, -1)
            skip = None
        else:
            skip = self.skip(x) if self.architecture == "resnet" else None
            x, ys, state, att = self.conv0(x, next(it), ys, state, noise_mode, return_attention)
            maps.append(att)
        x, ys, state, att = self.conv1(x, next(it), ys, state, noise_mode, return_attention)
        maps.append(att)
        if skip is not None:
            x = (x + skip) / SQRT2
        if img is not None:
            img = upsample2d(img)
        if self.torgb is not None:
            rgb = self.torgb(x, next(it))
            img = rgb if img is None else img + rgb
        return x, img, ys, state, [m for m in maps if m is not None]


def _no_attention(resolution: int, channels: int) -> None:
    return None


class Generator(nn.Module):
    """z -> image. `map` gives the per-layer styles ws [B, num_ws, w_dim] (and, for
    GANformer, the latents ys); `synthesize` renders them, so training can mix styles."""

    def __init__(self, cfg: StyleGAN2Config, make_attention: Callable = _no_attention):
        super().__init__()
        self.cfg = cfg
        log2_int(cfg.resolution)
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, cfg.mapping_lr_mul,
                                      cfg.mapping_residual)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        blocks, cin = [], 0
        resolutions = [2 ** i for i in range(2, log2_int(cfg.resolution) + 1)]
        for res in resolutions:
            cout = channels_at(res, cfg.channel_base, cfg.channel_max)
            blocks.append(SynthesisBlock(cin, cout, cfg.w_dim, res, cfg.channels, cfg.architecture,
                                         res == cfg.resolution, make_attention))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_ws for b in self.blocks)

    @property
    def z_shape(self) -> tuple[int, ...]:
        return (self.cfg.z_dim,)

    def _track(self, avg: torch.Tensor, w: torch.Tensor) -> None:
        if self.training:
            with torch.no_grad():
                avg.copy_(w.detach().float().mean(dim=0).lerp(avg, self.cfg.w_avg_beta))

    def map(self, z: torch.Tensor, psi: float = 1.0):
        """Styles ws [B, num_ws, w_dim] and latents ys (None for StyleGAN2)."""
        w = self.mapping(z)
        self._track(self.w_avg, w)
        if psi != 1:
            w = self.w_avg.to(w.dtype).lerp(w, psi)     # truncation trick
        return w[:, None].expand(-1, self.num_ws, -1), None

    def synthesize(self, ws: torch.Tensor, ys: torch.Tensor | None = None,
                   noise_mode: str = "random", return_attention: bool = False):
        x = img = None
        state: dict = {}
        maps: list[torch.Tensor] = []
        i = 0
        for block in self.blocks:
            x, img, ys, state, m = block(x, img, ws[:, i:i + block.num_ws], ys, state,
                                         noise_mode, return_attention)
            i += block.num_ws
            maps += m
        return (img, maps) if return_attention else img

    def forward(self, z: torch.Tensor, psi: float = 1.0, noise_mode: str = "random",
                return_attention: bool = False):
        ws, ys = self.map(z, psi)
        return self.synthesize(ws, ys, noise_mode, return_attention)


class DiscriminatorBlock(nn.Module):
    def __init__(self, cin: int, cout: int, attention: nn.Module | None = None):
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3, activate=True)
        self.attention = attention
        self.conv1 = EqualConv2d(cin, cout, 3, activate=True, down=True)
        self.skip = EqualConv2d(cin, cout, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor, latents: torch.Tensor | None) -> torch.Tensor:
        skip = self.skip(x)
        x = self.conv0(x)
        if self.attention is not None:
            x = self.attention(x, latents.expand(x.shape[0], -1, -1))[0]
        return (self.conv1(x) + skip) / SQRT2


class Discriminator(nn.Module):
    """Residual discriminator with minibatch standard deviation (StyleGAN2 config E/F).

    With `make_attention`, blocks at chosen resolutions attend to a set of learned
    latent vectors of the discriminator's own (GANformer's optional D attention)."""

    def __init__(self, resolution: int, channels: int, channel_base: int, channel_max: int,
                 mbstd_group: int = 4, make_attention: Callable = _no_attention,
                 latents: tuple[int, int] | None = None):
        super().__init__()
        ch = lambda r: channels_at(r, channel_base, channel_max)   # noqa: E731
        self.from_rgb = EqualConv2d(channels, ch(resolution), 1, activate=True)
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(ch(2 ** i), ch(2 ** (i - 1)), make_attention(2 ** i, ch(2 ** i)))
            for i in range(log2_int(resolution), 2, -1))
        uses_latents = any(b.attention is not None for b in self.blocks)
        self.latents = nn.Parameter(torch.randn(1, *latents)) if latents and uses_latents else None
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv = EqualConv2d(ch(4) + 1, ch(4), 3, activate=True)
        self.fc = EqualLinear(ch(4) * 16, ch(4), activate=True)
        self.out = EqualLinear(ch(4), 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.from_rgb(img)
        for block in self.blocks:
            x = block(x, self.latents)
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1))).squeeze(1)

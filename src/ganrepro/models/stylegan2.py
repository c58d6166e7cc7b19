"""StyleGAN2 generator and residual discriminator (Karras et al. 2020, configs E/F), as
the official GANformer repository's StyleGAN2 baseline computes them.

Against the StyleGAN2 paper's description, the official code adds one thing to the
generator: `conv_last`, a modulated 3x3 conv without noise, bias or activation before
the last ToRGB (one more style). Per-layer styles: `ws` is [B, num_ws, w_dim], or, for
GANformer, [B, num_ws, k + 1, w_dim] with the k local latents first and the global one
last, so style mixing swaps all of them per layer. A block reads its convs' styles and,
after them, its ToRGB's, which is the next block's first conv style (the official
indexing; it only matters for the skip architecture and for style mixing).

The same skeleton is the official `--baseline GAN` (run_network.py: `style=False,
latent_stem=True`): with the hyper-parameter class's `style` False every conv and ToRGB is
a plain equalized-lr conv (no affine, no modulation, no demodulation), and with
`latent_stem` True the first block's learned 4x4 constant is replaced by a stem, an FC
layer from the first w slot to the 4x4 grid (one more style slot). Noise inputs, biases,
the skip architecture and conv_last stay. See `Generator` for how to build and extend it.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ganrepro.models.layers import (
    SQRT2, EqualConv2d, EqualLinear, MappingNetwork, MinibatchStd, ModulatedConv2d,
    NoiseInjection, ToRGB, log2_int, lrelu, normalize_latent, upsample2d)
from ganrepro.settings.hparams import StyleGAN2Config, channels_at


def mix_styles(ws: torch.Tensor, other: torch.Tensor, start: int, stop: int | None = None) -> torch.Tensor:
    """Style mixing: `ws` with the per-layer styles start..stop-1 (stop None: to the last)
    taken from `other`. A GANformer layer's k local latents and its global one move
    together, as in the official code. Training mixes from a random cut to the end;
    `ganrepro generate --style-mix` copies a chosen range."""
    stop = ws.shape[1] if stop is None else stop
    return torch.cat([ws[:, :start], other[:, start:stop], ws[:, stop:]], dim=1)


def _global(w: torch.Tensor) -> torch.Tensor:
    """The style vector of one layer's latents: w itself, or the last (global) component."""
    return w[:, -1] if w.ndim == 3 else w


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv -> [bipartite attention] -> noise -> bias -> lrelu (the official
    order: attention acts on the conv output before noise and bias). `plain=True` is the
    official conv_last: the conv alone."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, up: bool = False,
                 attention: nn.Module | None = None, gain: float = 1.0, plain: bool = False,
                 style: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, w_dim, up=up, modulate=style)
        self.attention = attention
        self.plain, self.gain = plain, gain
        if not plain:
            self.noise = NoiseInjection(resolution)
            self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x, w, state, noise_mode, return_attention):
        x = self.conv(x, _global(w))
        att = None
        if self.attention is not None:
            local = w[:, :-1] if w.ndim == 3 else None          # GANformer's k local latents
            x, state, att = self.attention(x, local, state.get("pos"), state, return_attention)
        if not self.plain:
            x = lrelu(self.noise(x, noise_mode) + self.bias)
            x = x * self.gain if self.gain != 1 else x
        return x, state, att


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis: [stem or 2x-upsampling conv0] -> conv1 ->
    [conv_last] -> [ToRGB]. The first block (cin == 0) starts from a learned 4x4 constant,
    or, with latent_stem, from `stem`: FC(w) -> lrelu, reshaped to [B, cout, 4, 4], as the
    official PyTorch latent stem (gain sqrt(2) / 4, bias, lrelu; no noise)."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, img_channels: int,
                 architecture: str, is_last: bool, make_attention: Callable, style: bool = True,
                 latent_stem: bool = False):
        super().__init__()
        self.first = cin == 0
        self.architecture, self.is_last = architecture, is_last
        self.latent_stem = self.first and latent_stem
        if self.latent_stem:
            self.stem = EqualLinear(w_dim, cout * 16, gain=SQRT2 / 4, activate=True)
        elif self.first:
            self.const = nn.Parameter(torch.randn(1, cout, 4, 4))     # learned 4x4 input
        else:
            self.conv0 = SynthesisLayer(cin, cout, w_dim, resolution, up=True,
                                        attention=make_attention(resolution, cout), style=style)
        resnet = architecture == "resnet" and not self.first
        self.conv1 = SynthesisLayer(cout, cout, w_dim, resolution, attention=make_attention(resolution, cout),
                                    gain=1 / SQRT2 if resnet else 1.0, style=style)
        if resnet:
            self.skip = EqualConv2d(cin, cout, 1, bias=False, up=True)
        if is_last:
            self.conv_last = SynthesisLayer(cout, cout, w_dim, resolution, plain=True, style=style)
        self.torgb = ToRGB(cout, img_channels, w_dim, style) if (architecture == "skip" or is_last) else None
        self.num_conv = (1 if self.first and not self.latent_stem else 2) + (1 if is_last else 0)
        self.num_torgb = 1 if self.torgb is not None else 0

    def forward(self, x, img, ws, state, noise_mode, return_attention):
        maps = []
        it = iter(ws.unbind(dim=1))
        if self.latent_stem:
            x = self.stem(_global(next(it))).reshape(ws.shape[0], -1, 4, 4)
            skip = None
        elif self.first:
            x = self.const.expand(ws.shape[0], -1, -1, -1)
            skip = None
        else:
            skip = self.skip(x) if self.architecture == "resnet" else None
            x, state, att = self.conv0(x, next(it), state, noise_mode, return_attention)
            maps.append(att)
        x, state, att = self.conv1(x, next(it), state, noise_mode, return_attention)
        maps.append(att)
        if skip is not None:
            x = x + skip / SQRT2
        if img is not None:
            img = upsample2d(img)
        if self.is_last:
            x = self.conv_last(x, next(it), state, noise_mode, False)[0]
        if self.torgb is not None:
            rgb = self.torgb(x, _global(next(it)))
            img = rgb if img is None else img + rgb
        return x, img, state, [m for m in maps if m is not None]


def _no_attention(resolution: int, channels: int) -> None:
    return None


class Generator(nn.Module):
    """z -> image. `map` gives the per-layer styles ws (see the module docstring);
    `synthesize` renders them, so training can mix styles.

    The hyper-parameter class decides the skeleton: `cfg.style` (default True) and
    `cfg.latent_stem` (default False), read as attributes, so a class may fix them (the GAN
    baseline's `GANConfig` does: style off, latent stem on). Widths and size come from
    cfg.resolution, channel_base and channel_max (channels_at), as for StyleGAN2.

    Extending it (GANformer here; the TF baselines SAGAN and k-GAN build on it):
    - `make_attention(resolution, channels)` is called once per 3x3 synthesis layer, in
      order (block 4x4: conv1; every later block: conv0, conv1; never conv_last). What it
      returns (None = nothing) runs on that layer's conv output, before noise, bias and
      lrelu, as `module(x, w_local, pos, state, return_attention) -> (x, state, map)` with
      x [B, C, H, W], w_local the layer's local latents (GANformer's [B, k, w_dim]; None
      when ws is [B, num_ws, w_dim]), `state` the dict `_synthesis_state` starts and the
      layers pass on, and map an attention map or None.
      In the TF code's numbering, the layer at resolution 2**r is layer_idx 2r - 5 (conv0)
      or 2r - 4 (conv1); the 4x4 conv is layer_idx 0.
    - `blocks[i]` is the SynthesisBlock at resolution 4 * 2**i; `synthesize` runs them in
      order, block(x, img, ws_slice, state, noise_mode, return_attention) -> (x, img, state,
      maps), so a subclass can act on the features x between blocks (e.g. merge k images).
    """

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
                                         res == cfg.resolution, make_attention, getattr(cfg, "style", True),
                                         getattr(cfg, "latent_stem", False)))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in self.blocks) + self.blocks[-1].num_torgb

    @property
    def z_shape(self) -> tuple[int, ...]:
        return (self.cfg.z_dim,)

    def ws_resolutions(self) -> list[int]:
        """The resolution of the layer each of the num_ws styles drives (the conv that
        reads it; the last one is the final ToRGB), in the order `synthesize` reads them."""
        out = []
        for i, block in enumerate(self.blocks):
            out += [4 * 2 ** i] * block.num_conv
        return out + [self.cfg.resolution] * self.blocks[-1].num_torgb

    def _track(self, w: torch.Tensor) -> None:
        """Moving average of w over the batch (and, for GANformer, over all components)."""
        if self.training:
            with torch.no_grad():
                mean = w.detach().float().reshape(-1, w.shape[-1]).mean(dim=0)
                self.w_avg.copy_(mean.lerp(self.w_avg, self.cfg.w_avg_beta))

    def _broadcast(self, w: torch.Tensor, psi: float, update_avg: bool) -> torch.Tensor:
        if update_avg:
            self._track(w)
        if psi != 1:
            w = self.w_avg.to(w.dtype).lerp(w, psi)     # truncation trick, one w_avg for all
        return w[:, None].expand(-1, self.num_ws, *w.shape[1:])

    def map(self, z: torch.Tensor, psi: float = 1.0, update_avg: bool = True):
        """Styles ws [B, num_ws, w_dim] and None (the latents travel inside ws)."""
        w = self.mapping(normalize_latent(z, dims=-1))
        return self._broadcast(w, psi, update_avg), None

    def synthesize(self, ws: torch.Tensor, ys: None = None,
                   noise_mode: str = "random", return_attention: bool = False):
        x = img = None
        state = self._synthesis_state()
        maps: list[torch.Tensor] = []
        i = 0
        for block in self.blocks:
            x, img, state, m = block(x, img, ws[:, i:i + block.num_conv + block.num_torgb], state,
                                     noise_mode, return_attention)
            i += block.num_conv
            maps += m
        return (img, maps) if return_attention else img

    def _synthesis_state(self) -> dict:
        return {}

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


def plain_discriminator(cfg: StyleGAN2Config) -> Discriminator:
    """The discriminator without attention of a model's hyper-parameters (StyleGAN2's and the GAN's)."""
    return Discriminator(cfg.resolution, cfg.channels, cfg.channel_base, cfg.channel_max, cfg.mbstd_group)

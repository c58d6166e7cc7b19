"""StyleGAN2 building blocks (Karras et al. 2020), shared by every model here.

Equalized learning rate (sec. 4.1 of Progressive GAN, kept by StyleGAN2): weights are
stored N(0, 1) / lr_mul and scaled at run time by lr_mul / sqrt(fan_in), so Adam's
per-parameter step sizes mean the same thing in every layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)
FIR = (1.0, 3.0, 3.0, 1.0)     # the binomial low-pass filter StyleGAN2 resamples with


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) with StyleGAN's gain sqrt(2), which keeps activations at unit variance."""
    return F.leaky_relu(x, 0.2) * SQRT2


def log2_int(resolution: int) -> int:
    assert resolution >= 4 and resolution & (resolution - 1) == 0, resolution
    return int(math.log2(resolution))


class EqualLinear(nn.Module):
    """Fully connected layer with equalized lr; `gain` multiplies the run-time weight scale
    (the official FC's gain, e.g. the GAN baseline's latent stem)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_mul)) if bias else None
        self.scale = gain * lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        x = F.linear(x, self.weight * self.scale, bias)
        return lrelu(x) if self.activate else x


def _fir_kernel(device=None, dtype=None) -> torch.Tensor:
    f = torch.tensor(FIR, device=device, dtype=dtype)
    k = torch.outer(f, f)
    return k / k.sum()


def upsample2d(x: torch.Tensor) -> torch.Tensor:
    """2x upsampling: zero insertion followed by the low-pass FIR filter (gain 4 keeps the mean)."""
    c = x.shape[1]
    k = (_fir_kernel(x.device, x.dtype) * 4).expand(c, 1, 4, 4)
    return F.conv_transpose2d(x, k, stride=2, padding=1, groups=c)


def downsample2d(x: torch.Tensor) -> torch.Tensor:
    """2x downsampling: low-pass FIR filter, then keep every second pixel."""
    c = x.shape[1]
    k = _fir_kernel(x.device, x.dtype).expand(c, 1, 4, 4)
    return F.conv2d(x, k, stride=2, padding=1, groups=c)


def blur2d(x: torch.Tensor, pad: int, gain: float = 1.0) -> torch.Tensor:
    """The FIR low-pass filter at full resolution, with `pad` zero pixels on every side."""
    c = x.shape[1]
    k = (_fir_kernel(x.device, x.dtype) * gain).expand(c, 1, 4, 4)
    return F.conv2d(x, k, padding=pad, groups=c)


class EqualConv2d(nn.Module):
    """Plain conv with equalized lr; optional 2x down or up.

    A 1x1 conv commutes with the FIR resampling, so it runs at the lower resolution. A
    downsampling 3x3 conv is StyleGAN2's: blur with 2 pixels of padding, then a stride-2
    conv at full resolution (not blur-subsample-conv, which is another function).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True,
                 activate: bool = False, down: bool = False, up: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.activate, self.down, self.up = activate, down, up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, k = self.weight * self.scale, self.weight.shape[-1]
        if k == 1:
            x = downsample2d(x) if self.down else x
            x = F.conv2d(x, weight)
            x = upsample2d(x) if self.up else x
            x = x if self.bias is None else x + self.bias[:, None, None]
        elif self.down:
            x = F.conv2d(blur2d(x, pad=k // 2 + 1), weight, self.bias, stride=2)
        else:
            assert not self.up, "a 3x3 upsampling conv is ModulatedConv2d's job"
            x = F.conv2d(x, weight, self.bias, padding=k // 2)
        return lrelu(x) if self.activate else x


class ModulatedConv2d(nn.Module):
    """Modulated + demodulated conv (StyleGAN2 eqs. 1-3) as one grouped convolution.

    Each sample's style scales the input channels of the shared weight; demodulation
    rescales each output channel to unit expected variance. The batch becomes the group
    dimension, so there is no Python loop over samples. modulate=False is a plain conv
    (no style, no demodulation; the official `style=False`, its CLEVR preset).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, style_dim: int,
                 demodulate: bool = True, up: bool = False, modulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        if modulate:
            self.affine = EqualLinear(style_dim, in_channels, bias_init=1.0)   # styles start at 1
        self.scale = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.demodulate, self.up, self.modulate = demodulate, up, modulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, c, h, wd = x.shape
        if self.modulate:
            style = self.affine(w)                                      # [B, in]
            weight = self.weight[None] * self.scale * style[:, None, :, None, None]   # [B, out, in, k, k]
            if self.demodulate:
                weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
            x = x.reshape(1, b * c, h, wd)                              # samples as groups
        else:
            weight = (self.weight * self.scale)[None]                   # one weight for the batch
        groups, out_c, k = weight.shape[0], weight.shape[1], weight.shape[-1]
        if self.up:
            # StyleGAN2's transposed-conv path: stride-2 transposed conv (one pixel beyond
            # each border kept), then the FIR filter over [pad 1, valid], so the border
            # pixels are filtered like the inside ones. The kernel acts unflipped here, as
            # the official weight layout expects.
            weight = weight.transpose(1, 2).reshape(groups * c, out_c, k, k)
            x = F.conv_transpose2d(x, weight, stride=2, groups=groups)
            x = blur2d(x, pad=1, gain=4.0)
        else:
            x = F.conv2d(x, weight.reshape(groups * out_c, c, k, k), padding=k // 2, groups=groups)
        return x.reshape(b, out_c, x.shape[2], x.shape[3])


class NoiseInjection(nn.Module):
    """Per-pixel noise with a learned strength (starts at 0, as in StyleGAN2)."""

    def __init__(self, resolution: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "none":
            return x
        noise = self.const if mode == "const" else torch.randn(
            x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return x + noise * self.strength


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, img_channels: int, style_dim: int, modulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, img_channels, 1, style_dim, demodulate=False, modulate=modulate)
        self.bias = nn.Parameter(torch.zeros(1, img_channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias


def normalize_latent(z: torch.Tensor, dims) -> torch.Tensor:
    """Scale z to unit mean square over `dims` (StyleGAN's pixel norm of the input latent)."""
    return z * torch.rsqrt(z.square().mean(dim=dims, keepdim=True) + 1e-8)


class ResidualFC(nn.Module):
    """The official `--mapping-resnet` block: lrelu(x + FC(lrelu(FC x))), the outer leaky
    ReLU without gain and the inner FC linear."""

    def __init__(self, dim: int, lr_mul: float):
        super().__init__()
        self.fc0 = EqualLinear(dim, dim, lr_mul=lr_mul, activate=True)
        self.fc1 = EqualLinear(dim, dim, lr_mul=lr_mul)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.fc1(self.fc0(x)) + skip, 0.2)


class MappingNetwork(nn.Module):
    """Normalized z -> w, as the official code's mapping MLP: `layers` FC layers (or, with
    residual=True, (layers + 1) // 2 residual blocks of two), then an output FC, all with
    lrelu at lr multiplier 0.01. The input is normalized by the caller (StyleGAN2 per
    vector, GANformer's local components jointly).

    `make_attention(i)` may add a self-attention among the latents before block i (the
    official `mapping_ltnt2ltnt`); the block's residual then skips over it.
    """

    def __init__(self, z_dim: int, w_dim: int, layers: int = 8, lr_mul: float = 0.01,
                 residual: bool = False, make_attention=None):
        super().__init__()
        if residual:
            if z_dim != w_dim:
                raise ValueError(f"a residual mapping needs z_dim == w_dim (got {z_dim} and {w_dim})")
            self.blocks = nn.ModuleList(ResidualFC(w_dim, lr_mul) for _ in range((layers + 1) // 2))
        else:
            dims = [z_dim] + [w_dim] * layers
            self.blocks = nn.ModuleList(EqualLinear(i, o, lr_mul=lr_mul, activate=True)
                                        for i, o in zip(dims[:-1], dims[1:]))
        self.out = EqualLinear(w_dim, w_dim, lr_mul=lr_mul, activate=True)
        self.residual = residual
        made = [make_attention(i) for i in range(len(self.blocks))] if make_attention else []
        self.attention = nn.ModuleList(made) if made else None

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            skip = x
            if self.attention is not None:
                x = self.attention[i](x, pos)
            x = block(x, skip) if self.residual else block(x)
        return self.out(x)


class MinibatchStd(nn.Module):
    """Appends the average (over features) std of features within groups of samples."""

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = min(self.group_size, b)
        if b % g:
            g = 1
        f = self.num_channels
        y = x.reshape(g, b // g, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()
        y = y.mean(dim=(2, 3, 4)).reshape(b // g, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

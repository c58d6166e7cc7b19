"""A DCGAN-style generator (Radford et al. 2016) straight from z (no mapping network, no
modulation, no noise), trained against the same StyleGAN2 discriminator as the other
models so that only the generator differs. Not the paper's "GAN" row (that is `gan`, the
official code's `--baseline GAN`): registered as `dcgan`, the example architecture of
simple GAN tutorials, and a cheap model without W."""

from __future__ import annotations

import torch
from torch import nn

from ganrepro.models.layers import log2_int
from ganrepro.settings.hparams import DCGANConfig, channels_at


class DCGANGenerator(nn.Module):
    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        ch = lambda r: channels_at(r, cfg.channel_base, cfg.channel_max)   # noqa: E731
        self.fc = nn.Linear(cfg.z_dim, ch(4) * 16)
        layers: list[nn.Module] = [nn.BatchNorm2d(ch(4)), nn.ReLU()]
        for i in range(3, log2_int(cfg.resolution) + 1):
            layers += [nn.ConvTranspose2d(ch(2 ** (i - 1)), ch(2 ** i), 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(ch(2 ** i)), nn.ReLU()]
        layers += [nn.Conv2d(ch(cfg.resolution), cfg.channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    @property
    def z_shape(self) -> tuple[int, ...]:
        return (self.cfg.z_dim,)

    def forward(self, z: torch.Tensor, psi: float = 1.0, noise_mode: str = "random",
                return_attention: bool = False):
        # psi and noise_mode exist for a uniform interface; a DCGAN has neither.
        x = self.fc(z).reshape(z.shape[0], -1, 4, 4)
        img = self.net(x)
        return (img, []) if return_attention else img

"""GAN losses and regularizers (StyleGAN2 recipe by default; hinge and WGAN-GP as options).

Each function returns a scalar to minimize. The lazy regularizers are multiplied by their
interval by the caller, as in StyleGAN2 (sec. 3.1), so their strength does not depend on
how rarely they run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "stylegan2":
        return F.softplus(-fake_logits).mean()         # non-saturating logistic
    return -fake_logits.mean()                         # hinge and WGAN: maximize D(fake)


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "stylegan2":
        return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    # WGAN with the drift term of Progressive GAN (keeps D(real) near 0)
    return fake_logits.mean() - real_logits.mean() + 1e-3 * real_logits.square().mean()


def r1_penalty(D, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): squared gradient norm of D at real images."""
    real = real.detach().requires_grad_(True)
    logits = D(real)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    # "+ 0 * logits", as the official code: every D parameter takes part in the R1 step, so
    # Adam also steps (with a zero gradient) those the penalty does not reach, like the output bias.
    return grad.square().sum(dim=(1, 2, 3)).mean() + 0 * logits.sum()


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (|grad D(x_hat)| - 1)^2 on real/fake interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


def path_length_penalty(G, ws: torch.Tensor, ys, pl_mean: torch.Tensor, decay: float = 0.01):
    """StyleGAN2's path-length regularizer (sec. 3.2); returns (penalty, new pl_mean)."""
    img = G.synthesize(ws, ys)
    noise = torch.randn_like(img) / (img.shape[2] * img.shape[3]) ** 0.5
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = grad.flatten(2).square().sum(dim=2).mean(dim=1).sqrt()   # GANformer ws: all latents of a layer
    new_mean = pl_mean.lerp(lengths.mean().detach(), decay)
    return (lengths - new_mean).square().mean(), new_mean

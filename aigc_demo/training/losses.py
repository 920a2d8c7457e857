"""GAN and VAE losses, written out so the maths is visible (and tested on known values).

GAN losses take raw discriminator scores (logits). Non-saturating BCE is the default: the
generator maximises log D(G(z)) instead of minimising log(1 - D(G(z))), which keeps its gradient
alive early on when D easily rejects fakes.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

GAN_LOSSES = ("nsgan", "hinge", "wgan-gp")
VAE_RECON_LOSSES = ("bce", "mse")  # Bernoulli NLL (the ELBO's) or squared error on pixel probabilities


def d_loss_nsgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))), averaged."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_nsgan(fake: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)) (non-saturating)."""
    return F.softplus(-fake).mean()


def d_loss_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_loss_hinge(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def d_loss_wgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Critic loss: E[D(fake)] - E[D(real)] (gradient penalty added separately)."""
    return fake.mean() - real.mean()


def g_loss_wgan(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, generator: Any = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates."""
    mixed = interpolates(real, fake, generator)
    return penalty_from_scores(critic(mixed), mixed)


def interpolates(real: torch.Tensor, fake: torch.Tensor, generator: Any = None) -> torch.Tensor:
    """Random points on the lines between real and fake samples, requiring grad."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, generator=generator)
    return (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)


def penalty_from_scores(scores: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """The gradient penalty given the critic's scores on `mixed` (lets D see one batch in one pass)."""
    (grad,) = torch.autograd.grad(scores.float().sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def gan_losses(name: str) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """(discriminator loss, generator loss) for a loss name."""
    table = {"nsgan": (d_loss_nsgan, g_loss_nsgan), "hinge": (d_loss_hinge, g_loss_hinge),
             "wgan-gp": (d_loss_wgan, g_loss_wgan)}
    if name not in table:
        raise ValueError(f"GAN loss must be one of {', '.join(GAN_LOSSES)} (got {name!r})")
    return table[name]


def vae_recon_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bernoulli negative log-likelihood summed over pixels, averaged over the batch (nats)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()



def vae_recon_mse(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error between the decoded pixel probabilities and x, summed over pixels, averaged over
    the batch: the "MSE" reconstruction (a Gaussian decoder of fixed variance, up to a constant)."""
    return (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1).mean()


def vae_recon(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The reconstruction loss for a name (bce | mse)."""
    table = {"bce": vae_recon_loss, "mse": vae_recon_mse}
    if name not in table:
        raise ValueError(f"--recon must be one of {', '.join(VAE_RECON_LOSSES)} (got {name!r})")
    return table[name]

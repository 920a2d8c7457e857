"""Convolutional VAE with a Bernoulli decoder for 28x28 binarized digits.

Encoder q(z|x): convolutions 28 -> 14 -> 7, an MLP, then mean and log-variance of a diagonal
Gaussian. Decoder p(x|z): an MLP to 7x7 maps, transposed convolutions back to 28x28 logits of
independent Bernoulli pixels. latent_dim=2 gives a map you can plot; 32 gives quality.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin


class VAE(nn.Module, PyTorchModelHubMixin, library_name="aigc-demo", tags=["vae", "mnist"]):
    def __init__(self, latent_dim: int = 32, channels: int = 64, hidden: int = 512) -> None:
        super().__init__()
        self.latent_dim, c = latent_dim, channels
        self.c = c
        act = nn.ELU
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c // 2, 3, 1, 1), act(),  # (B, c/2, 28, 28)
            nn.Conv2d(c // 2, c, 4, 2, 1), act(),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1), act(),  # (B, 2c, 7, 7)
            nn.Flatten(), nn.Linear(2 * c * 49, hidden), act(),
            nn.Linear(hidden, 2 * latent_dim))  # (B, 2z): mean, log-variance
        self.decoder_mlp = nn.Sequential(
            nn.Linear(latent_dim, hidden), act(),
            nn.Linear(hidden, 2 * c * 49), act())  # (B, 2c*7*7)
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), act(),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1), act(),  # (B, c/2, 28, 28)
            nn.Conv2d(c // 2, 1, 3, 1, 1))  # (B, 1, 28, 28) Bernoulli logits

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 28, 28) in [0, 1] -> mean, log-variance (B, z)."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z) -> Bernoulli logits (B, 1, 28, 28)."""
        return self.decoder_conv(self.decoder_mlp(z).view(-1, 2 * self.c, 7, 7))

    def forward(self, x: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, mean, logvar); z is drawn with the reparameterisation trick when `sample`."""
        mean, logvar = self.encode(x)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if sample else mean
        return self.decode(z), mean, logvar


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) summed over pixels, shape (B,)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor | None = None, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """log N(z; mean, exp(logvar)) summed over dimensions (standard normal when mean is None)."""
    if mean is None:
        return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
    assert logvar is not None
    return -0.5 * ((z - mean).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def vae_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over latent dims, averaged over the batch (nats)."""
    return (0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar)).sum(1).mean()


def latent_grid(n: int, span: float = 0.95) -> torch.Tensor:
    """(n*n, 2) latent points at evenly spaced normal quantiles (rows top to bottom = +y to -y):
    decoded, they are the 2-D VAE's latent map."""
    q = torch.linspace(1 - span, span, n).double()
    values = (torch.special.ndtri(q)).float()
    ys, xs = torch.meshgrid(values.flip(0), values, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)

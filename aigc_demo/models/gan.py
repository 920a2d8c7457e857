"""Class-conditional DCGAN for 28x28 grayscale digits.

Generator: noise z and a label embedding are concatenated and upsampled 7 -> 14 -> 28 with
transposed convolutions and batch norm (DCGAN). Discriminator: strided convolutions, then a
projection head (Miyato & Koyama 2018): score = w.h + embed(y).h, which makes the label matter
far more than concatenating it at the input. Images are in [-1, 1] (tanh), background = -1.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from huggingface_hub import PyTorchModelHubMixin


class Generator(nn.Module, PyTorchModelHubMixin, library_name="aigc-demo", tags=["gan", "mnist"]):
    def __init__(self, z_dim: int = 64, num_classes: int = 10, embed_dim: int = 32, channels: int = 32) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        c = channels
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.project = nn.Sequential(  # (B, z+e) -> (B, 4c*7*7)
            nn.Linear(z_dim + embed_dim, 4 * c * 7 * 7, bias=False),
            nn.BatchNorm1d(4 * c * 7 * 7), nn.ReLU(True))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1, bias=False),  # (B, 2c, 14, 14)
            nn.BatchNorm2d(2 * c), nn.ReLU(True),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False),  # (B, c, 28, 28)
            nn.BatchNorm2d(c), nn.ReLU(True),
            nn.Conv2d(c, 1, 3, 1, 1), nn.Tanh())  # (B, 1, 28, 28) in [-1, 1]
        self.c = c

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, self.embed(labels)], dim=1)  # (B, z+e)
        h = self.project(h).view(-1, 4 * self.c, 7, 7)
        return self.net(h)


def _maybe_sn(module: nn.Module, use: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if use else module


class Discriminator(nn.Module, PyTorchModelHubMixin, library_name="aigc-demo", tags=["gan", "mnist"]):
    def __init__(self, num_classes: int = 10, channels: int = 32, spectral_norm: bool = True) -> None:
        super().__init__()
        c, sn = channels, spectral_norm
        self.net = nn.Sequential(
            _maybe_sn(nn.Conv2d(1, c, 3, 1, 1), sn), nn.LeakyReLU(0.2, True),  # (B, c, 28, 28)
            _maybe_sn(nn.Conv2d(c, 2 * c, 4, 2, 1), sn), nn.LeakyReLU(0.2, True),  # (B, 2c, 14, 14)
            _maybe_sn(nn.Conv2d(2 * c, 4 * c, 4, 2, 1), sn), nn.LeakyReLU(0.2, True),  # (B, 4c, 7, 7)
            nn.Flatten(),
            _maybe_sn(nn.Linear(4 * c * 7 * 7, 256), sn), nn.LeakyReLU(0.2, True))  # (B, 256)
        self.out = _maybe_sn(nn.Linear(256, 1), sn)
        self.embed = _maybe_sn(nn.Embedding(num_classes, 256), sn)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Raw scores (logits), shape (B,)."""
        h = self.net(images)  # (B, 256)
        return self.out(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images (B, 1, 28, 28) -> uint8 (B, 28, 28) with 0 = background."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1)

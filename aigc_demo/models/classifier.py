"""A small CNN for MNIST-style digits: the judge for GAN samples and the feature map for FID.

Two conv blocks (28 -> 14 -> 7) and a 128-unit hidden layer; `features(x)` returns that
penultimate layer, which FID compares between real and generated digits.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from huggingface_hub import PyTorchModelHubMixin


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
        nn.MaxPool2d(2))


class DigitClassifier(nn.Module, PyTorchModelHubMixin, library_name="aigc-demo", tags=["classifier", "mnist"]):
    def __init__(self, num_classes: int = 10, channels: int = 32, feature_dim: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        c = channels
        self.body = nn.Sequential(_block(1, c), _block(c, 2 * c), nn.Flatten())  # (B, 2c*7*7)
        self.hidden = nn.Sequential(nn.Linear(2 * c * 49, feature_dim), nn.ReLU(True))  # (B, F)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1, 28, 28) in [0, 1] -> penultimate features (B, F), used for FID."""
        return self.hidden(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.head(self.features(x))

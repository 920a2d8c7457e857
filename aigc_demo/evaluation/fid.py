"""Fréchet distance between two sets of digits, on the shipped classifier's penultimate features.

FID = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)). The trace of the matrix square root is
computed as the sum of square roots of the eigenvalues of sqrt(S1) S2 sqrt(S1) (symmetric, so a
plain eigendecomposition in float64 is stable); no scipy needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features (N, F), in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need at least 2 feature rows (N, F), got shape {features.shape}")
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet distance between Gaussians N(mu1, cov1) and N(mu2, cov2)."""
    root1 = _sqrtm_psd(cov1)
    middle = root1 @ cov2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)
    return max(value, 0.0)


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def classifier_features(classifier: Any, images_uint8: Any, device: Any = "cpu",
                        batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features (N, F), predicted class probabilities (N, 10)) of uint8 digits (N, 28, 28)."""
    import torch

    images = torch.as_tensor(np.asarray(images_uint8))
    feats, probs = [], []
    classifier.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device).float().div(255.0)
            x = x.view(-1, 1, 28, 28)
            f = classifier.features(x).float()
            feats.append(f.cpu())
            probs.append(torch.softmax(classifier.head(f).float(), 1).cpu())
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


def fid(classifier: Any, images_a: Any, images_b: Any, device: Any = "cpu") -> float:
    """FID between two uint8 digit sets (N, 28, 28) with 0 = background."""
    fa, _ = classifier_features(classifier, images_a, device)
    fb, _ = classifier_features(classifier, images_b, device)
    return fid_from_features(fa, fb)

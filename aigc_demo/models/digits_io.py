"""Load the digit models from weights folders and run them in batches: shared by eval, sample and services."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from aigc_demo.device import pick_device
from aigc_demo.loading import building

MAX_SEED = 2**63 - 1


def _load(cls: Any, folder: str | Path, device: Any) -> Any:
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a weights folder (config.json and model.safetensors are needed); "
                                "train one with `python -m aigc_demo train ...` or check the path")
    with building():  # one build at a time in the process (loading.building)
        model = cls.from_pretrained(str(folder), strict=True)
    return model.float().to(device).eval().requires_grad_(False)


def load_generator(folder: str | Path, device: Any = "cpu") -> Any:
    from aigc_demo.models.gan import Generator

    # Channels-last convolutions: the 64-digit grid takes ~27% less time on CPU (`bench digits`).
    return _load(Generator, folder, device).to(memory_format=torch.channels_last)


def load_vae(folder: str | Path, device: Any = "cpu") -> Any:
    from aigc_demo.models.vae import VAE

    return _load(VAE, folder, device)


def load_classifier(folder: str | Path, device: Any = "cpu") -> Any:
    from aigc_demo.models.classifier import DigitClassifier

    return _load(DigitClassifier, folder, device)


def load_diffusion(folder: str | Path, device: Any = "cpu") -> Any:
    from aigc_demo.models.diffusion import load_diffusion as load  # diffusers: on first use

    return load(folder, device)


def noise(n: int, z_dim: int, seed: int, truncation: float = 1.0) -> torch.Tensor:
    """(n, z_dim) standard normal noise from `seed`, made on the CPU so every device and batch size
    sees the same numbers; `truncation` < 1 scales it down (typical digits), > 1 up (wilder ones)."""
    gen = torch.Generator().manual_seed(int(seed) % MAX_SEED)
    return torch.randn(n, z_dim, generator=gen) * float(truncation)


@torch.no_grad()
def generate(generator: Any, labels: Sequence[int] | np.ndarray | torch.Tensor, z: torch.Tensor,
             batch_size: int = 1000) -> np.ndarray:
    """uint8 digits (N, 28, 28), 0 = background, for labels (N,) and noise (N, z_dim).

    Runs in eval mode (batch norm uses stored statistics), so each image depends only on its own
    noise and label: the batch size does not change the result.
    """
    from aigc_demo.models.gan import to_uint8

    device = next(generator.parameters()).device
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    out = []
    for start in range(0, len(labels), batch_size):
        images = generator(z[start:start + batch_size].to(device), labels[start:start + batch_size].to(device))
        out.append(to_uint8(images).cpu())
    if not out:
        return np.zeros((0, 28, 28), dtype=np.uint8)
    return torch.cat(out).numpy()


def generate_per_digit(generator: Any, digits: Sequence[int], per_digit: int, seed: int,
                       truncation: float = 1.0, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """`per_digit` samples of each digit in `digits` (grouped by digit, in order): (images, labels)."""
    labels = np.repeat(np.asarray(list(digits), dtype=np.int64), per_digit)
    z = noise(len(labels), generator.z_dim, seed, truncation)
    return generate(generator, labels, z, batch_size), labels.astype(np.uint8)


def torch_device(name: str = "auto") -> torch.device:
    return pick_device(None if name == "auto" else name).torch_device

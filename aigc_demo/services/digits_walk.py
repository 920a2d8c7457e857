"""Latent walks: the GAN morphing between two seeds' noise, the VAE between two digits' codes.

A walk comes back as frames, a strip of all of them and an animated GIF (there and back again).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.device import gpu_task
from aigc_demo.errors import UserError
from aigc_demo.services.digits import (
    MAX_WALK_STEPS,
    check_seed,
    check_truncation,
    grid_image,
    load_gan,
    load_vae,
)


def _gif(frames: list[Any], ms_per_frame: int = 80) -> bytes:
    buffer = io.BytesIO()
    loop = frames + frames[-2:0:-1]  # there and back again
    loop[0].save(buffer, format="GIF", save_all=True, append_images=loop[1:], duration=ms_per_frame, loop=0)
    return buffer.getvalue()


@dataclass
class WalkResult:
    frames: list[Any]  # PIL images, one per step
    strip: Any  # all frames side by side
    gif: bytes  # animated GIF (forward and back)
    info: dict[str, Any] = field(default_factory=dict)


def _slerp(a: Any, b: Any, t: Any) -> Any:
    """Spherical interpolation: stays at the typical norm of Gaussian noise (no grey middle)."""
    import torch

    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t.view(-1, 1)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def _walk_result(images: np.ndarray, scale: int, info: dict[str, Any]) -> WalkResult:
    from PIL import Image

    frames = [Image.fromarray(im).resize((28 * scale, 28 * scale), Image.Resampling.NEAREST) for im in images]
    return WalkResult(frames, grid_image(images, len(images), scale=scale), _gif(frames), info)


def _check_steps(steps: Any) -> int:
    try:
        value = int(steps)
    except (TypeError, ValueError):
        raise UserError(f"Steps must be a whole number, got {steps!r}") from None
    if not 2 <= value <= MAX_WALK_STEPS:
        raise UserError(f"Steps must be between 2 and {MAX_WALK_STEPS} (got {value})")
    return value


def _check_digit(d: Any) -> int:
    try:
        value = int(d)
    except (TypeError, ValueError):
        raise UserError(f"Pick a digit 0-9, got {d!r}") from None
    if not 0 <= value <= 9:
        raise UserError(f"Pick a digit 0-9, got {value}")
    return value


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def gan_walk(seed_a: Any, seed_b: Any, digit: Any = 3, steps: Any = 16, truncation: Any = 1.0,
             folder: str | Path | None = None, scale: int = 4) -> WalkResult:
    """The GAN's digit morphing from the noise of seed A to that of seed B (same label)."""
    import torch

    from aigc_demo.models.digits_io import generate, noise

    sa, sb, d, n, tr = check_seed(seed_a), check_seed(seed_b), _check_digit(digit), _check_steps(steps), check_truncation(truncation)
    G = load_gan(folder)
    z = _slerp(noise(1, G.z_dim, sa, tr)[0], noise(1, G.z_dim, sb, tr)[0], torch.linspace(0, 1, n))
    images = generate(G, np.full(n, d), z)
    return _walk_result(images, scale, {"model": "gan", "digit": d, "seeds": [sa, sb]})


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def vae_walk(digit_a: Any, digit_b: Any, steps: Any = 16, seed: Any = 0, folder: str | Path | None = None,
             gan_folder: str | Path | None = None, scale: int = 4) -> WalkResult:
    """The VAE decoding points on the line between a digit A and a digit B in its latent space.

    The two end digits are drawn by the GAN (the app ships no dataset), then encoded by the VAE.
    """
    import torch

    from aigc_demo.models.digits_io import generate, noise

    a, b, n, seed = _check_digit(digit_a), _check_digit(digit_b), _check_steps(steps), check_seed(seed)
    G, V = load_gan(gan_folder), load_vae(folder)
    ends = generate(G, np.asarray([a, b]), noise(1, G.z_dim, seed, 0.8).repeat(2, 1))
    device = next(V.parameters()).device
    with torch.no_grad():
        mean, _ = V.encode(torch.from_numpy(ends).float().div(255).unsqueeze(1).to(device))
        t = torch.linspace(0, 1, n, device=device).view(-1, 1)
        z = (1 - t) * mean[0] + t * mean[1]
        probs = torch.sigmoid(V.decode(z).float()).squeeze(1).cpu().numpy()
    images = (probs * 255).round().astype(np.uint8)
    return _walk_result(images, scale, {"model": "vae", "digits": [a, b], "latent_dim": int(V.latent_dim)})

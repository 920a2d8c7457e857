"""Digits from the diffusion model: grids, and the denoising steps for 'watch it denoise'.

Plain values in (digits, count, seed, sampler steps, a weights folder), numpy / PIL out; bad input
raises `UserError`. A request's digits depend only on its own seed (the sampler is deterministic
after the starting noise), so a grid is the same alone or batched with other requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.device import gpu_task
from aigc_demo.errors import UserError
from aigc_demo.services.digits import grid_image, load_diffusion
from aigc_demo.services.digits_grid import grid_request

STEPS_RANGE = (1, 50)  # sampler steps a visitor may ask for (model calls per image)
GUIDANCE_RANGE = (0.0, 5.0)


def check_steps(steps: Any) -> int:
    try:
        value = int(steps)
    except (TypeError, ValueError):
        raise UserError(f"Sampler steps must be a whole number from {STEPS_RANGE[0]} to {STEPS_RANGE[1]}") from None
    if not STEPS_RANGE[0] <= value <= STEPS_RANGE[1]:
        raise UserError(f"Sampler steps must be from {STEPS_RANGE[0]} to {STEPS_RANGE[1]} (got {value})")
    return value


def check_guidance(guidance: Any) -> float:
    try:
        value = float(guidance)
    except (TypeError, ValueError):
        raise UserError("Guidance must be a number") from None
    if not GUIDANCE_RANGE[0] <= value <= GUIDANCE_RANGE[1]:
        raise UserError(f"Guidance must be from {GUIDANCE_RANGE[0]:g} to {GUIDANCE_RANGE[1]:g} (got {value:g})")
    return value


def diffusion_digits(labels: np.ndarray, seed: int, steps: Any = None, guidance: Any = None,
                     folder: str | Path | None = None) -> np.ndarray:
    """uint8 digits (N, 28, 28) for `labels`, starting noise drawn from `seed` (checked input)."""
    from aigc_demo.models.diffusion import initial_noise  # torch: on first use

    model = load_diffusion(folder)
    steps = model.default_steps if steps is None else check_steps(steps)
    guidance = model.default_guidance if guidance is None else check_guidance(guidance)
    return model.sample(np.asarray(labels), initial_noise(len(labels), seed), steps, guidance)


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def diffusion_grid(digits: Any = None, count: Any = 16, seed: Any = 0, steps: Any = None,
                   guidance: Any = None, folder: str | Path | None = None, scale: int = 2) -> Any:
    """A PIL grid of diffusion digits (white on black), laid out like the GAN's grid."""
    request = grid_request(digits, count, seed, 1.0)
    images = diffusion_digits(request.labels, request.seed, steps, guidance, folder)
    return grid_image(images, request.columns, scale=scale)

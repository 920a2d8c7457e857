"""GAN digit grids and typed handwriting: the Digits tab's Grid and Write parts.

The `*_batched` functions take lists (one entry per request) and run one forward pass for all of
them, for Gradio's `batch=True`: a request's digits depend on its own seed only, so its grid is
the same alone or batched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aigc_demo.device import gpu_task
from aigc_demo.services.digits import (
    check_seed,
    check_text,
    check_truncation,
    clamp_count,
    grid_image,
    load_gan,
    parse_digit_choice,
)


@dataclass
class GridRequest:
    labels: np.ndarray
    seed: int
    truncation: float
    columns: int


def grid_request(digits: Any = None, count: Any = 16, seed: Any = 0, truncation: Any = 1.0) -> GridRequest:
    """Validate one grid request: digits repeat in order to fill `count`; None/'random' draws them from the seed."""
    n, seed, truncation = clamp_count(count), check_seed(seed), check_truncation(truncation)
    chosen = parse_digit_choice(digits)
    if chosen is None:
        labels = np.random.default_rng(seed).integers(0, 10, n)
    else:
        labels = np.asarray([chosen[i % len(chosen)] for i in range(n)])
    columns = 10 if n >= 10 and n % 10 == 0 else min(n, 8)
    return GridRequest(labels.astype(np.int64), seed, truncation, columns)


def generate_digits_batched(requests: Sequence[GridRequest], folder: str | Path | None = None) -> list[np.ndarray]:
    """uint8 digits (n_i, 28, 28) per request, all requests in one forward pass."""
    import torch

    from aigc_demo.models.digits_io import generate, noise  # torch: on first use

    G = load_gan(folder)
    z = torch.cat([noise(len(r.labels), G.z_dim, r.seed, r.truncation) for r in requests])
    labels = np.concatenate([r.labels for r in requests])
    images = generate(G, labels, z, batch_size=4096)
    out, start = [], 0
    for r in requests:
        out.append(images[start:start + len(r.labels)])
        start += len(r.labels)
    return out


def generate_grid(digits: Any = None, count: Any = 16, seed: Any = 0, truncation: Any = 1.0,
                  folder: str | Path | None = None, scale: int = 2) -> Any:
    """A PIL grid of GAN digits (white on black, like MNIST)."""
    return generate_grid_batched([digits], [count], [seed], [truncation], folder, scale)[0]


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def generate_grid_batched(digits: list, counts: list, seeds: list, truncations: list,
                          folder: str | Path | None = None, scale: int = 2) -> list[Any]:
    """Gradio batch form of `generate_grid`: lists in, list of PIL grids out."""
    requests = [grid_request(d, c, s, t) for d, c, s, t in zip(digits, counts, seeds, truncations)]
    images = generate_digits_batched(requests, folder)
    return [grid_image(im, r.columns, scale=scale) for im, r in zip(images, requests)]


# ---------------------------------------------------------------- handwriting
def render_line(text: str, digit_images: np.ndarray, invert: bool, scale: int) -> Any:
    from PIL import Image

    cells = []
    it = iter(digit_images)
    for ch in text:
        if ch.isdigit():
            cells.append(next(it))
        elif ch == " ":
            cells.append(np.zeros((28, 14), dtype=np.uint8))
        else:  # '.', ',', '-': a small mark in a narrow cell
            cell = np.zeros((28, 12), dtype=np.uint8)
            if ch == "-":
                cell[13:16, 2:10] = 230
            else:
                cell[21:25, 4:8] = 230
                if ch == ",":
                    cell[25:27, 4:6] = 200
            cells.append(cell)
    line = np.concatenate([np.pad(c, ((4, 4), (0, 0))) for c in cells], axis=1)
    line = np.pad(line, ((0, 0), (4, 4)))
    if invert:
        line = 255 - line
    image = Image.fromarray(line)
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.BILINEAR) if scale > 1 else image


def handwriting(text: Any, seed: Any = 0, truncation: Any = 0.8, folder: str | Path | None = None,
                invert: bool = True, scale: int = 2) -> Any:
    """Text like '2026' or '3.14159' as one line of generated digits in one style (shared noise)."""
    return handwriting_batched([text], [seed], [truncation], folder, invert, scale)[0]


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def handwriting_batched(texts: list, seeds: list, truncations: list, folder: str | Path | None = None,
                        invert: bool = True, scale: int = 2) -> list[Any]:
    import torch

    from aigc_demo.models.digits_io import generate, noise  # torch: on first use

    checked = [(check_text(t), check_seed(s), check_truncation(tr)) for t, s, tr in zip(texts, seeds, truncations)]
    G = load_gan(folder)
    zs, labels = [], []
    for text, seed, trunc in checked:
        digits = [int(ch) for ch in text if ch.isdigit()]
        zs.append(noise(1, G.z_dim, seed, trunc).repeat(len(digits), 1))  # one style for the whole line
        labels += digits
    images = generate(G, np.asarray(labels), torch.cat(zs), batch_size=4096)
    out, start = [], 0
    for text, _, _ in checked:
        n = sum(ch.isdigit() for ch in text)
        out.append(render_line(text, images[start:start + n], invert, scale))
        start += n
    return out

"""Digits from the diffusion model: grids, and the denoising steps for 'watch it denoise'.

Plain values in (digits, count, seed, sampler steps, a weights folder), numpy / PIL / bytes out;
bad input raises `UserError`. A request's digits depend only on its own seed (the sampler is
deterministic after the starting noise, and the UNet treats each image of a batch on its own),
so a grid is the same alone or batched with other requests.

'Watch it denoise' keeps, at every sampler step, the noisy sample x_t and the clean digit the
model predicts from it, reads each prediction with the classifier, and measures how much of the
sample is still noise and how far the prediction moved: the page turns these numbers into one
sentence per step (ui/digits_diffusion.py).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aigc_demo.device import gpu_task
from aigc_demo.errors import UserError
from aigc_demo.services.digits import check_seed, grid_image, load_classifier, load_diffusion
from aigc_demo.services.digits_grid import GridRequest, grid_request

STEPS_RANGE = (1, 50)  # sampler steps a visitor may ask for (model calls per image)
GUIDANCE_RANGE = (0.0, 5.0)
MAX_WATCH = 6  # digits in one 'watch it denoise' row
STRIP_SCALE = 2  # the strip's 28-px cells drawn at 56 px
STRIP_HEADER = 16  # px above the strip for the step numbers
GIF_SCALE = (6, 4)  # the animation's cells drawn at 168 px, at 112 px for rows of more than 3 digits
GIF_STEP_MS, GIF_HOLD_MS = 350, 1800  # per step, and on the finished digits


def check_steps(steps: Any) -> int:
    low, high = STEPS_RANGE
    if isinstance(steps, bool):
        steps = None
    try:
        value = int(steps)
        whole = float(steps) == value
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"Sampler steps must be a whole number from {low} to {high}") from None
    if not whole:
        raise UserError(f"Sampler steps must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise UserError(f"Sampler steps must be from {low} to {high} (got {value})")
    return value


def check_guidance(guidance: Any) -> float:
    low, high = GUIDANCE_RANGE
    try:
        value = float(guidance)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"Guidance must be a number from {low:g} to {high:g}") from None
    if not low <= value <= high:  # NaN fails this too
        raise UserError(f"Guidance must be a number from {low:g} to {high:g} (got {value:g})")
    return value


def check_watch(digits: Any, seed: int) -> list[int]:
    """The row of digits to watch: '7', '2026', [3, 5]; empty draws one digit from the seed."""
    if digits is None or (isinstance(digits, str) and not digits.strip()):
        return [int(np.random.default_rng(seed).integers(0, 10))]
    if isinstance(digits, (int, float)) and not isinstance(digits, bool):
        digits = str(int(digits)) if float(digits).is_integer() and 0 <= digits else "x"
    if isinstance(digits, (list, tuple)):
        digits = "".join(str(d) for d in digits)
    if not isinstance(digits, str) or len(digits) > 4 * MAX_WATCH:
        raise UserError(f"Type up to {MAX_WATCH} digits to watch, e.g. 7 or 2026")
    text = digits.replace(",", "").replace(" ", "")
    if not text.isascii() or not text.isdigit():
        raise UserError(f"Type up to {MAX_WATCH} digits to watch, e.g. 7 or 2026")
    if len(text) > MAX_WATCH:
        raise UserError(f"At most {MAX_WATCH} digits can be watched at once (got {len(text)})")
    return [int(ch) for ch in text]


def model_defaults(folder: str | Path | None) -> tuple[int, float]:
    """The model's own sampler steps and guidance (its config.json), read without loading it."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text()) if folder else {}
        steps, guidance = int(config.get("sampling_steps", 10)), float(config.get("guidance", 1.0))
    except (OSError, TypeError, ValueError, AttributeError):
        return 10, 1.0
    return (min(max(steps, STEPS_RANGE[0]), STEPS_RANGE[1]),
            min(max(guidance, GUIDANCE_RANGE[0]), GUIDANCE_RANGE[1]))


def _settings(model: Any, steps: Any, guidance: Any) -> tuple[int, float]:
    return (model.default_steps if steps is None else check_steps(steps),
            model.default_guidance if guidance is None else check_guidance(guidance))


def diffusion_digits(labels: np.ndarray, seed: int, steps: Any = None, guidance: Any = None,
                     folder: str | Path | None = None) -> np.ndarray:
    """uint8 digits (N, 28, 28) for `labels`, starting noise drawn from `seed` (checked input)."""
    return diffusion_digits_batched([GridRequest(np.asarray(labels), int(seed), 1.0, 1)], steps, guidance,
                                    folder)[0]


def diffusion_digits_batched(requests: Sequence[GridRequest], steps: Any = None, guidance: Any = None,
                             folder: str | Path | None = None) -> list[np.ndarray]:
    """uint8 digits (n_i, 28, 28) per request, all requests in one sampling run: each request's
    starting noise comes from its own seed, so its digits do not depend on the others."""
    import torch

    from aigc_demo.models.diffusion import initial_noise  # torch: on first use

    model = load_diffusion(folder)
    steps, guidance = _settings(model, steps, guidance)
    noise = torch.cat([initial_noise(len(r.labels), r.seed) for r in requests])
    images = model.sample(np.concatenate([r.labels for r in requests]), noise, steps, guidance)
    ends = np.cumsum([len(r.labels) for r in requests])[:-1]
    return list(np.split(images, ends))


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def diffusion_grid_batched(digits: list, counts: list, seeds: list, steps: Any = None, guidance: Any = None,
                           folder: str | Path | None = None, scale: int = 2) -> list[Any]:
    """PIL grids of diffusion digits (white on black, laid out like the GAN's), one per request;
    the requests share the model, its sampler steps and guidance."""
    requests = [grid_request(d, c, s, 1.0) for d, c, s in zip(digits, counts, seeds)]
    images = diffusion_digits_batched(requests, steps, guidance, folder)
    return [grid_image(im, r.columns, scale=scale) for im, r in zip(images, requests)]


def diffusion_grid(digits: Any = None, count: Any = 16, seed: Any = 0, steps: Any = None,
                   guidance: Any = None, folder: str | Path | None = None, scale: int = 2) -> Any:
    """A PIL grid of diffusion digits (white on black), laid out like the GAN's grid."""
    return diffusion_grid_batched([digits], [count], [seed], steps, guidance, folder, scale)[0]


# ---------------------------------------------------------------- watch it denoise
@dataclass
class Reading:
    """What one step's images say, measured: for each digit of the row, the classifier's best guess
    of the model's predicted clean digit, its probability, and that of the digit asked for."""

    step: int  # 1-based; steps + 1 for the finished digits
    steps: int
    timestep: int  # the noise level's index on the 1000-level training schedule (0 when done)
    noise_share: float  # share of the sample's variance that is still noise: 1 - alpha_bar
    read_as: list[int]
    confidence: list[float]
    asked_probability: list[float]
    change: float | None  # mean |prediction - previous prediction| / 255 (None at step 1)

    @property
    def matches(self) -> int:
        """How many digits of the row already read as the digit asked for."""
        return sum(int(r == a) for r, a in zip(self.read_as, self.asked))

    asked: list[int] = field(default_factory=list)


@dataclass
class DenoiseResult:
    labels: list[int]
    seed: int
    steps: int
    guidance: float
    readings: list[Reading]  # one per sampler step, then one for the finished digits
    noisy: np.ndarray  # uint8 (steps, n, 28, 28): the sample x_t entering each step
    predicted: np.ndarray  # uint8 (steps, n, 28, 28): the clean digits predicted from it
    final: np.ndarray  # uint8 (n, 28, 28)
    strip: Any  # PIL: 2 rows per digit (x_t, prediction) x (steps + 1) columns, the last the result
    gif: bytes  # animated GIF: each step's x_t over its prediction, then the result held
    seconds: float = 0.0  # the sampling, measured (model calls and sampler, not the pictures)

    @property
    def first_read(self) -> int | None:
        """The first step from which every prediction reads as the digits asked for (and stays so)."""
        first = None
        for reading in self.readings[:-1]:
            if reading.matches == len(self.labels):
                first = reading.step if first is None else first
            else:
                first = None
        return first


def _classify(images: np.ndarray, classifier_folder: str | Path | None) -> np.ndarray:
    """Class probabilities (N, 10) for uint8 digits (N, 28, 28)."""
    import torch

    classifier = load_classifier(classifier_folder)
    device = next(classifier.parameters()).device
    with torch.inference_mode():
        x = torch.from_numpy(images).float().div(255).unsqueeze(1).to(device)
        return torch.softmax(classifier(x).float(), 1).cpu().numpy()


def _strip(noisy: np.ndarray, predicted: np.ndarray, final: np.ndarray) -> Any:
    """Each step's column numbered in a band on top (numbers only: the same in every language)."""
    from PIL import Image, ImageDraw, ImageFont

    steps, n = noisy.shape[:2]
    top = np.concatenate([noisy, final[None]])  # (steps + 1, n, 28, 28)
    bottom = np.concatenate([predicted, final[None]])
    rows = np.stack([top, bottom], axis=2)  # (steps + 1, n, 2, 28, 28)
    cells = rows.transpose(1, 2, 0, 3, 4).reshape(-1, 28, 28)  # digit by digit: its x_t row, its prediction row
    grid = grid_image(cells, steps + 1, pad=2, scale=STRIP_SCALE)
    strip = Image.new("L", (grid.width, grid.height + STRIP_HEADER), 0)
    strip.paste(grid, (0, STRIP_HEADER))
    draw, font = ImageDraw.Draw(strip), ImageFont.load_default(size=STRIP_HEADER - 3)
    for column in range(steps + 1):
        centre = STRIP_SCALE * (2 + 30 * column + 14)
        draw.text((centre, STRIP_HEADER // 2), str(column + 1) if column < steps else "=", fill=220, anchor="mm",
                  font=font)
    return strip


def _frame(top: np.ndarray, bottom: np.ndarray, caption: str) -> Any:
    from PIL import Image, ImageDraw

    scale = GIF_SCALE[0] if len(top) <= 3 else GIF_SCALE[1]
    grid = grid_image(np.concatenate([top, bottom]), len(top), pad=2, scale=scale)
    frame = Image.new("L", (grid.width, grid.height + 24), 0)
    frame.paste(grid, (0, 0))
    ImageDraw.Draw(frame).text((6, grid.height + 5), caption, fill=220)
    return frame


def _gif(noisy: np.ndarray, predicted: np.ndarray, final: np.ndarray) -> bytes:
    steps = len(noisy)
    # Numbers only in the picture (it is the same in every language; the page says what they mean).
    frames = [_frame(noisy[i], predicted[i], f"{i + 1}/{steps}") for i in range(steps)]
    frames.append(_frame(final, final, f"{steps}/{steps} ="))
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=[GIF_STEP_MS] * steps + [GIF_HOLD_MS])
    return buffer.getvalue()


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def denoise(digits: Any = "7", seed: Any = 0, steps: Any = None, guidance: Any = None,
            folder: str | Path | None = None, classifier_folder: str | Path | None = None) -> DenoiseResult:
    """Sample a row of digits and keep every step: x_t, the predicted clean digit, the readings.

    Steps:
    1. check the input and draw the starting noise from the seed (the same as a grid's);
    2. sample, keeping each step's noisy and predicted images (`on_step`);
    3. read every prediction and the finished digits with the classifier in one pass;
    4. measure noise share and the prediction's change per step; draw the strip and the GIF.
    """
    from aigc_demo.models.diffusion import DenoiseStep, initial_noise  # torch: on first use

    seed = check_seed(seed)  # 1.
    labels = check_watch(digits, seed)
    model = load_diffusion(folder)
    steps, guidance = _settings(model, steps, guidance)
    seen: list[DenoiseStep] = []
    started = time.perf_counter()
    final = model.sample(np.asarray(labels), initial_noise(len(labels), seed), steps, guidance,
                         on_step=seen.append)  # 2.
    seconds = time.perf_counter() - started
    noisy = np.stack([s.noisy for s in seen])
    predicted = np.stack([s.predicted for s in seen])
    n = len(labels)
    probs = _classify(np.concatenate([predicted.reshape(-1, 28, 28), final]), classifier_folder)  # 3.
    probs = probs.reshape(len(seen) + 1, n, 10)
    readings = []
    for i in range(len(seen) + 1):  # 4.
        done = i == len(seen)
        images = final if done else predicted[i]
        previous = predicted[i - 1] if i else None
        change = None if previous is None else float(np.abs(images.astype(np.int16) - previous).mean() / 255)
        readings.append(Reading(
            step=i + 1, steps=steps, timestep=0 if done else seen[i].timestep,
            noise_share=0.0 if done else float(seen[i].noise_fraction) ** 2,
            read_as=[int(p.argmax()) for p in probs[i]], confidence=[float(p.max()) for p in probs[i]],
            asked_probability=[float(p[d]) for p, d in zip(probs[i], labels)], change=change, asked=list(labels)))
    return DenoiseResult(labels, seed, steps, guidance, readings, noisy, predicted, final,
                         _strip(noisy, predicted, final), _gif(noisy, predicted, final), seconds)

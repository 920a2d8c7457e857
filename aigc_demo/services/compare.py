"""The Compare tab's digits: the same digits and seed from every digit family, side by side.

Each family gets the same labels and the same seed; each column reports its wall time per image
(measured here, the model already loaded) and the metrics its model card records. The VAE is
unconditional, so its digits are found honestly: decode draws from its prior and keep those the
classifier reads as a requested digit, with a bounded number of draws (the column says how many
it took, and which digits it gave up on). A family whose model is missing or cannot load gets a
message in its column; the other columns still render.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aigc_demo.catalog import Metric
from aigc_demo.device import gpu_task
from aigc_demo.errors import UserError
from aigc_demo.modelcard import GALLERY_KEY, ModelCardError, read_card_metadata
from aigc_demo.services.digits import check_seed, grid_image, load_classifier, load_diffusion, load_gan, load_vae
from aigc_demo.services.digits_diffusion import diffusion_digits
from aigc_demo.services.digits_grid import GridRequest, generate_digits_batched

FAMILIES = ("gan", "diffusion", "vae")  # column order in the tab
MAX_PER_DIGIT = 10  # copies of each digit: at most 10 x 10 = 100 images per family
VAE_BATCH = 256  # prior draws decoded and classified together
MAX_VAE_DRAWS = 4096  # the VAE gives up on the digits it has not found after this many draws
VAE_DRAWS_PER_IMAGE = 50  # ... or after 50 per image asked for (at least one batch): a digit the
# classifier reads one time in ten needs ~10 draws per image, so a real VAE rarely runs out
log = logging.getLogger(__name__)


@dataclass
class DigitsRequest:
    """Checked input: the labels every family draws, in grid order (one row per copy)."""

    digits: list[int]
    per_digit: int
    seed: int

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.digits * self.per_digit, dtype=np.int64)

    @property
    def columns(self) -> int:
        """Grid width: the digits in one row (two rows of five for all ten, so the grid stays
        squarish and each digit large in a third of the page)."""
        return len(self.digits) if len(self.digits) <= 5 else -(-len(self.digits) // 2)


@dataclass
class FamilyResult:
    """One column: what a family drew and what it cost."""

    family: str
    title: str = ""
    images: np.ndarray | None = None  # uint8 (N, 28, 28), 0 = background, in the request's order
    grid: Any = None  # PIL grid, one row per copy of the digits
    seconds: float = 0.0  # wall time of the generation (the VAE's draws and checks included)
    metrics: list[Metric] = field(default_factory=list)  # from the model card
    draws: int | None = None  # VAE: prior samples decoded
    missing: list[int] = field(default_factory=list)  # VAE: digits it gave up on
    error: str | None = None  # why this column has no images

    @property
    def count(self) -> int:
        return 0 if self.images is None else int(len(self.images))

    @property
    def per_image_s(self) -> float | None:
        return self.seconds / self.count if self.count else None


def check_request(digits: Any, per_digit: Any, seed: Any) -> DigitsRequest:
    """Digits as a list or text of 0-9 (none: all ten), copies per digit 1..MAX_PER_DIGIT, a seed."""
    if digits is None or digits == "" or digits == []:
        chosen = list(range(10))
    elif isinstance(digits, str):
        text = digits.replace(",", "").replace(" ", "")
        if len(text) > 40 or not text.isdigit() or not text.isascii():
            raise UserError("Digits must be 0-9, e.g. 0123456789")
        chosen = [int(ch) for ch in text]
    elif isinstance(digits, (list, tuple)) and len(digits) <= 10:
        try:
            chosen = [int(str(d)) for d in digits]
        except ValueError:
            raise UserError("Digits must be 0-9, e.g. 0123456789") from None
        if any(not 0 <= d <= 9 for d in chosen):
            raise UserError("Digits must be 0-9, e.g. 0123456789")
    else:
        raise UserError("Digits must be 0-9, e.g. 0123456789")
    chosen = sorted(set(chosen))
    try:
        copies = int(per_digit)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"Copies per digit must be a whole number from 1 to {MAX_PER_DIGIT}") from None
    if isinstance(per_digit, float) and per_digit != copies or not 1 <= copies <= MAX_PER_DIGIT:
        raise UserError(f"Copies per digit must be a whole number from 1 to {MAX_PER_DIGIT}")
    return DigitsRequest(chosen, copies, check_seed(seed))


def card_info(folder: str | Path) -> tuple[str, list[Metric]]:
    """A model's title and metrics as its card records them (the gallery reads the same header)."""
    try:
        gallery = read_card_metadata(folder).get(GALLERY_KEY) or {}
        return str(gallery.get("title") or Path(folder).name), [Metric.from_dict(m) for m in gallery.get("metrics") or []]
    except (ModelCardError, KeyError, TypeError, ValueError, OSError):
        return Path(folder).name, []


def _gan(request: DigitsRequest, folder: str) -> tuple[np.ndarray, float]:
    load_gan(folder)  # loaded before the clock starts (a first load is not the model's speed)
    started = time.perf_counter()
    images = generate_digits_batched([GridRequest(request.labels, request.seed, 1.0, request.columns)], folder)[0]
    return images, time.perf_counter() - started


def _diffusion(request: DigitsRequest, folder: str) -> tuple[np.ndarray, float]:
    load_diffusion(folder)
    started = time.perf_counter()
    images = diffusion_digits(request.labels, request.seed, folder=folder)
    return images, time.perf_counter() - started


def vae_digits(labels: np.ndarray, seed: int, folder: str, classifier_folder: str,
               max_draws: int = MAX_VAE_DRAWS) -> tuple[np.ndarray, int, list[int]]:
    """Images for `labels` from an unconditional VAE: decode prior draws (from `seed`) in batches,
    keep each the classifier reads as a digit still wanted. Returns (images, draws, digits given
    up on); a slot whose digit was never found stays blank."""
    import torch

    V, C = load_vae(folder), load_classifier(classifier_folder)
    device = next(V.parameters()).device
    wanted = {int(d): [i for i, label in enumerate(labels) if label == d] for d in np.unique(labels)}
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    generator = torch.Generator().manual_seed(int(seed))
    draws = 0
    with torch.no_grad():
        while any(wanted.values()) and draws < max_draws:
            z = torch.randn(min(VAE_BATCH, max_draws - draws), V.latent_dim, generator=generator)
            draws += len(z)
            probs = torch.sigmoid(V.decode(z.to(device)).float())
            read = C(probs.to(next(C.parameters()).device)).argmax(1).cpu().numpy()
            pixels = (probs.squeeze(1).cpu().numpy() * 255).round().astype(np.uint8)
            for index, digit in enumerate(read):
                slots = wanted.get(int(digit))
                if slots:
                    images[slots.pop(0)] = pixels[index]
    return images, draws, sorted(d for d, slots in wanted.items() if slots)


def _vae(request: DigitsRequest, folder: str, classifier_folder: str | None) -> tuple[np.ndarray, float, int, list[int]]:
    if not classifier_folder:
        raise UserError("The VAE needs the digit classifier to find the digits asked for, and none is available")
    load_vae(folder)
    load_classifier(classifier_folder)
    started = time.perf_counter()
    budget = min(MAX_VAE_DRAWS, max(VAE_BATCH, VAE_DRAWS_PER_IMAGE * len(request.labels)))
    images, draws, missing = vae_digits(request.labels, request.seed, folder, classifier_folder, budget)
    return images, time.perf_counter() - started, draws, missing


@gpu_task(duration=60)  # ZeroGPU: the GPU is held for one call
def compare_digits(digits: Any, per_digit: Any, seed: Any, folders: dict[str, str | None],
                   classifier_folder: str | None = None, scale: int = 2,
                   on_column: Callable[[FamilyResult], None] | None = None) -> list[FamilyResult]:
    """One FamilyResult per family in FAMILIES, each from `folders[family]` (None: no model).

    The families run one after another, so each time is the model's own, not shared with the others."""
    request = check_request(digits, per_digit, seed)
    results = []
    for family in FAMILIES:
        folder = folders.get(family)
        result = FamilyResult(family)
        if not folder:
            result.error = f"No {family} model is available here"
        else:
            result.title, result.metrics = card_info(folder)
            try:
                if family == "gan":
                    result.images, result.seconds = _gan(request, folder)
                elif family == "diffusion":
                    result.images, result.seconds = _diffusion(request, folder)
                else:
                    result.images, result.seconds, result.draws, result.missing = _vae(request, folder,
                                                                                      classifier_folder)
            except UserError as err:
                result.error = str(err)
            except Exception:  # noqa: BLE001 - one broken model must not blank the other columns
                log.exception("compare: the %s model %s failed", family, Path(folder).name)
                result.error = f"The {family} model could not run here"
        if result.images is not None:
            result.grid = grid_image(result.images, request.columns, scale=scale)
        results.append(result)
        if on_column:
            on_column(result)
    return results

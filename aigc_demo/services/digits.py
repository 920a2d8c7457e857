"""Digits studio services, shared part: limits, input checks, model loading and image helpers.

The Digits tab's features live beside this module, one each: `digits_grid` (GAN grids and
handwriting), `digits_walk` (latent walks), `digits_sketch` (reading a drawing) and `digits_map`
(the 2-D VAE's latent map and scatter). Plain values in, PIL images / numpy / bytes out; bad
input raises `UserError` with a message a visitor can act on. Models load once through
`loading.registry` from weights folders (an argument picks the folder; defaults are the shipped ones).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.data.images import image_grid
from aigc_demo.device import pick_device
from aigc_demo.errors import UserError
from aigc_demo.loading import registry
from aigc_demo.services import validate

WEIGHTS_ROOT = Path(__file__).resolve().parents[2] / "weights"
GAN_FOLDER = WEIGHTS_ROOT / "dcgan-mnist"
VAE2D_FOLDER = WEIGHTS_ROOT / "vae-mnist-2d"
VAE_FOLDER = WEIGHTS_ROOT / "vae-mnist-32d"
CLASSIFIER_FOLDER = WEIGHTS_ROOT / "mnist-classifier"
DIFFUSION_FOLDER = WEIGHTS_ROOT / "diffusion-mnist"

MAX_GRID = 100  # digits in one grid; larger counts are clamped to this
MAX_TEXT = 40  # characters in the handwriting box
MAX_SEED = 2**32 - 1
MAX_WALK_STEPS = 64
TRUNCATION_RANGE = (0.1, 2.0)
TEXT_EXTRAS = ".- ,"  # rendered as small marks / gaps; anything else is rejected


# ---------------------------------------------------------------- downloads
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def download_name(kind: str, *parts: Any, suffix: str = ".png") -> str:
    """A file name that says what is inside, e.g. handwriting-2026.png, digits-grid-seed42.png."""
    words = [kind, *(_UNSAFE.sub("_", str(p)).strip("._") for p in parts)]
    stem = "-".join(w for w in words if w)[:80]
    return stem + suffix


# ---------------------------------------------------------------- validation
def check_seed(seed: Any) -> int:
    """A seed as int in [0, MAX_SEED]; anything else gets a clear message."""
    try:
        value = int(seed)
    except (TypeError, ValueError):
        raise UserError(f"Seed must be a whole number, got {seed!r}") from None
    if isinstance(seed, float) and seed != value:
        raise UserError(f"Seed must be a whole number, got {seed}")
    if value < 0:
        raise UserError(f"Seed must be 0 or more (got {value})")
    if value > MAX_SEED:
        raise UserError(f"Seed must be at most {MAX_SEED:,} (got {value:,})")
    return value


def check_truncation(truncation: Any) -> float:
    try:
        value = float(truncation)
    except (TypeError, ValueError):
        raise UserError(f"Truncation must be a number, got {truncation!r}") from None
    low, high = TRUNCATION_RANGE
    if not low <= value <= high:
        raise UserError(f"Truncation must be between {low} and {high} (got {value})")
    return value


def clamp_count(count: Any, maximum: int = MAX_GRID) -> int:
    """Digits to draw, clamped to [1, maximum] (the tab shows the limit)."""
    try:
        value = int(count)
    except (TypeError, ValueError):
        raise UserError(f"Count must be a whole number, got {count!r}") from None
    return max(1, min(value, maximum))


def parse_digit_choice(digits: Any) -> list[int] | None:
    """'0123' / [0, 1] / 'random' / '' / None -> list of digits, or None for random digits."""
    if digits is None:
        return None
    if isinstance(digits, str):
        text = digits.strip().lower()
        if text in ("", "random", "any"):
            return None
        bad = sorted({ch for ch in text if not (ch.isdigit() or ch in ", ")})
        if bad:
            raise UserError(f"Digits must be 0-9 (or 'random'); remove {' '.join(repr(b) for b in bad)}")
        return [int(ch) for ch in text if ch.isdigit()]
    values = [int(d) for d in digits]
    if not values:
        return None
    if any(not 0 <= d <= 9 for d in values):
        raise UserError(f"Digits must be 0-9, got {values}")
    return values


def check_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise UserError("Type some digits to write, e.g. 2026 or 3.14159")
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise UserError(f"At most {MAX_TEXT} characters can be written at once (got {len(text):,})")
    bad = sorted({ch for ch in text if not (ch.isdigit() or ch in TEXT_EXTRAS)})
    if bad:
        raise UserError("Only digits 0-9 (and . - , or spaces) can be written; remove "
                        + " ".join(repr(b) for b in bad))
    if not any(ch.isdigit() for ch in text):
        raise UserError("Type at least one digit, e.g. 2026")
    return text


# ---------------------------------------------------------------- models
def _get(kind: str, folder: str | Path | None, default: Path) -> Any:
    from aigc_demo.models import digits_io  # torch: on first use

    folder = validate.identifier(folder, f"The {kind} model", required=False)
    path = Path(folder) if folder else default
    loader = {"gan": digits_io.load_generator, "vae": digits_io.load_vae,
              "classifier": digits_io.load_classifier, "diffusion": digits_io.load_diffusion}[kind]
    device = pick_device().torch_device
    try:
        found = (path / ("unet/config.json" if kind == "diffusion" else "model.safetensors")).is_file()
    except OSError:  # a name the file system refuses
        found = False
    if not found:
        raise UserError(f"The {kind} weights are missing ({path}); train them with "
                        f"`python -m aigc_demo train {kind}` or pick another folder")
    return registry.get(f"digits-{kind}:{path.resolve()}", lambda: loader(path, device), device.type)


def load_gan(folder: str | Path | None = None) -> Any:
    return _get("gan", folder, GAN_FOLDER)


def load_vae(folder: str | Path | None = None) -> Any:
    return _get("vae", folder, VAE_FOLDER)


def load_classifier(folder: str | Path | None = None) -> Any:
    return _get("classifier", folder, CLASSIFIER_FOLDER)


def load_diffusion(folder: str | Path | None = None) -> Any:
    """A `models.diffusion.DigitDiffusion` (UNet + noise schedule), loaded once."""
    return _get("diffusion", folder, DIFFUSION_FOLDER)


# ---------------------------------------------------------------- images
def grid_image(images: np.ndarray, columns: int, pad: int = 2, invert: bool = False, scale: int = 1) -> Any:
    """uint8 digits (n, 28, 28) -> a PIL grid `columns` wide, each pixel drawn `scale` x `scale`."""
    from PIL import Image

    rows = max(1, -(-len(images) // columns))
    image = image_grid(images, rows, columns, pad, invert)
    if scale <= 1:
        return image
    # Whole pixels doubled: crisp digits, and far cheaper than a bicubic filter.
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def latent_dim(folder: str | Path) -> int | None:
    """A VAE folder's latent size from its config.json (None when it cannot be read): the 2-D
    pickers list only the VAEs whose latent space can be drawn, without loading them."""
    try:
        return int(json.loads((Path(folder) / "config.json").read_text())["latent_dim"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def model_folder(folder: str | Path | None, default: Path, role: str) -> Path:
    """The folder a picked id names (checked like any visitor's id), or the shipped default."""
    ref = validate.identifier(None if folder is None else str(folder), f"The {role} model", required=False)
    return Path(ref) if ref else default

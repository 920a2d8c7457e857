"""Our digit models (the GAN and the diffusion model) as text-to-image for the Image tab.

Why: a newcomer without a GPU or a network still gets a picture from the Image tab. A prompt of
digits or number words (services/digit_prompt.py) becomes one line of digits drawn by the model,
each image of a batch from its own seed, then enlarged by whole pixels (crisp, no blur) to about
the height asked for, so a 28-pixel digit is seen at a size a person can read. The images are
PNGs with their settings, like every Image tab result. The models and their drawing code are the
Digits tab's (services/digits_grid.py, services/digits_diffusion.py): nothing new is trained here.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from aigc_demo.device import gpu_task, pick_device
from aigc_demo.modelcard import GALLERY_KEY, ModelCardError, read_card_metadata
from aigc_demo.services.digit_prompt import parse_digit_prompt
from aigc_demo.services.digits_diffusion import GUIDANCE_RANGE, STEPS_RANGE, diffusion_digits
from aigc_demo.services.digits_diffusion import model_defaults as diffusion_defaults
from aigc_demo.services.digits_grid import handwriting, render_line
from aigc_demo.services.imagegen import (MAX_SIZE, GeneratedImage, ImageBatch, ImageRecord, ImageSettings,
                                         output_dir, save_png)

DIGIT_FAMILIES = ("diffusion", "gan")
LINE_HEIGHT = 36  # px of one drawn line at scale 1 (a 28-px digit and its margins)
MIN_SCALE, MAX_SCALE = 2, 16
GAN_TRUNCATION = 0.8  # the Write tool's: typical, legible digits
DEFAULT_HEIGHT = 256  # a 28-px digit drawn 7x: about 200 px tall


def digit_family(ref: str | Path | None) -> str | None:
    """'diffusion' or 'gan' for a folder of one of our digit generators (its model card says so),
    else None (a diffusers pipeline, a hub id, anything else)."""
    if not ref:
        return None
    try:
        folder = Path(ref)
        if not folder.is_dir() or (folder / "model_index.json").is_file():
            return None
        gallery = read_card_metadata(folder).get(GALLERY_KEY) or {}
    except (ModelCardError, OSError, ValueError, TypeError):
        return None
    family = gallery.get("family") if isinstance(gallery, dict) else None
    if family in DIGIT_FAMILIES and gallery.get("task") == "image-generation":
        return str(family)
    return None


def digit_defaults(folder: str | Path, family: str) -> dict[str, Any]:
    """Where the Image tab's sliders start for a digit model: its own sampler steps and guidance."""
    steps, guidance = diffusion_defaults(folder) if family == "diffusion" else (1, 0.0)
    return {"steps": steps, "guidance": guidance, "width": 512, "height": DEFAULT_HEIGHT}


def crisp_scale(line_width: int, height: int) -> int:
    """The whole-pixel enlargement for a line: about `height` tall, never wider than MAX_SIZE."""
    wanted = max(MIN_SCALE, min(MAX_SCALE, height // LINE_HEIGHT))
    return max(1, min(wanted, MAX_SIZE // max(line_width, 1)))


def draw_line(family: str, folder: str | Path, text: str, seed: int, steps: int, guidance: float) -> Any:
    """One line of `text`'s digits (black on white, 28-px cells) drawn by the model."""
    if family == "gan":
        return handwriting(text, seed, GAN_TRUNCATION, folder=folder, invert=True, scale=1)
    labels = [int(ch) for ch in text if ch.isdigit()]
    images = diffusion_digits(labels, seed, steps, guidance, folder=folder)
    return render_line(text, images, invert=True, scale=1)


def _sampler(family: str, settings: ImageSettings) -> tuple[int, float, list[str]]:
    """The diffusion sampler's steps and guidance within its ranges, with a notice when clamped."""
    if family != "diffusion":
        notices = ["Our GAN draws in one pass: steps and guidance do not change it."]
        return 1, 0.0, notices if (settings.steps, settings.guidance) != (1, 0.0) else []
    notices = []
    steps = min(max(settings.steps, STEPS_RANGE[0]), STEPS_RANGE[1])
    guidance = min(max(settings.guidance, GUIDANCE_RANGE[0]), GUIDANCE_RANGE[1])
    if steps != settings.steps:
        notices.append(f"Steps {settings.steps} became {steps} (our diffusion model takes "
                       f"{STEPS_RANGE[0]} to {STEPS_RANGE[1]}).")
    if guidance != settings.guidance:
        notices.append(f"Guidance {settings.guidance:g} became {guidance:g} (our diffusion model takes "
                       f"{GUIDANCE_RANGE[0]:g} to {GUIDANCE_RANGE[1]:g}).")
    return steps, guidance, notices


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def generate_digit_images(folder: str | Path, family: str, settings: ImageSettings, *,
                          on_step: Callable[[int, int], None] | None = None, out_dir: str | Path | None = None,
                          record_as: str | None = None) -> ImageBatch:
    """`settings.num_images` PNGs of the digits the prompt names, drawn by our model in `folder`."""
    from PIL import Image

    settings, notices = settings.checked()
    text = parse_digit_prompt(settings.prompt)
    steps, guidance, more = _sampler(family, settings)
    notices = [n for n in notices if "negative prompt" not in n] + more
    if settings.negative_prompt:
        notices.append("Our digit models do not read a negative prompt.")
    folder_out = Path(out_dir) if out_dir else output_dir()
    folder_out.mkdir(parents=True, exist_ok=True)
    model = record_as or str(folder)
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    results, started = [], time.perf_counter()
    for index in range(settings.num_images):
        seed = int(settings.seed or 0) + index
        began = time.perf_counter()
        line = draw_line(family, folder, text, seed, steps, guidance)
        scale = crisp_scale(line.width, settings.height)
        image = line.resize((line.width * scale, line.height * scale), Image.Resampling.NEAREST)
        one = replace(settings, seed=seed, num_images=1, steps=steps, guidance=guidance)
        path = folder_out / f"digits-{stamp}-{seed}.png"
        save_png(image, ImageRecord(model, None, one), path)
        results.append(GeneratedImage(str(path), seed, time.perf_counter() - began))
        if on_step is not None:
            on_step(index + 1, settings.num_images)
    seconds = time.perf_counter() - started
    used = replace(settings, steps=steps, guidance=guidance)
    return ImageBatch(results, used, model, None, seconds, 0.0, pick_device().name, notices)

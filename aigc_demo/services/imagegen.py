"""Text to image with any diffusers text-to-image pipeline (hub id or local folder).

Design notes:
- Loading goes through aigc_demo/hub.py (offline-aware, safetensors only) and the shared
  registry (one copy per model and device). CUDA: the device's half dtype, channels-last UNet
  and VAE, the VAE kept in half precision unless the model asks to upcast it (SDXL's VAE
  overflows in fp16; in bf16 it is safe), optional `torch.compile` (AIGC_TORCH_COMPILE=1).
  CPU and MPS: float32.
- Each image has its own CPU `torch.Generator` seeded `seed + i`, so image i of a batch is
  made again by seed `seed + i` and one image, on any device.
- Every PNG carries its settings (JSON in the `aigc_settings` text chunk, plus the common
  `parameters` line other tools read); `read_image_settings` restores them.
torch and diffusers are imported inside functions.
"""

from __future__ import annotations

import json
import math
import secrets
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from aigc_demo.catalog import hub_entry
from aigc_demo.device import gpu_task, pick_device
from aigc_demo.errors import UserError
from aigc_demo.hub import (TEXT_TO_IMAGE, ModelSource, ProgressCallback, cached_snapshot, is_local_ref,
                           load_text_to_image, resolve)
from aigc_demo.loading import registry
from aigc_demo.modelcard import GALLERY_KEY, ModelCardError, read_card_metadata
from aigc_demo.services.validate import open_image
from aigc_demo.settings import current as current_settings

META_KEY = "aigc_settings"
MIN_SIZE, MAX_SIZE = 32, 2048
MAX_STEPS = 100
MAX_GUIDANCE = 30.0
MAX_IMAGES = 8
MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 2000

StepCallback = Callable[[int, int], None]  # (steps done, steps in total)


@dataclass
class ImageSettings:
    """What the user sets. seed None = a random seed (reported back, so it can be reused)."""

    prompt: str
    negative_prompt: str = ""
    steps: int = 4
    guidance: float = 0.0
    width: int = 512
    height: int = 512
    seed: int | None = None
    num_images: int = 1

    def checked(self) -> tuple["ImageSettings", list[str]]:
        """Refuse impossible values (ValueError, user-facing); snap sizes to multiples of 8."""
        notices: list[str] = []
        prompt = (self.prompt or "").strip()
        if not prompt:
            raise UserError("Type a prompt: a few words that describe the image.")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise UserError(f"The prompt is {len(prompt)} characters; keep it under {MAX_PROMPT_CHARS}.")
        for name in ("steps", "guidance", "width", "height", "num_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UserError(f"{name.replace('_', ' ').capitalize()} must be a number (got {value!r}).")
        if not 1 <= self.steps <= MAX_STEPS or self.steps != int(self.steps):
            raise UserError(f"Steps must be a whole number from 1 to {MAX_STEPS} (got {self.steps}).")
        if not 0 <= self.guidance <= MAX_GUIDANCE:
            raise UserError(f"Guidance must be from 0 to {MAX_GUIDANCE:g} (got {self.guidance}).")
        if not 1 <= self.num_images <= MAX_IMAGES or self.num_images != int(self.num_images):
            raise UserError(f"Number of images must be a whole number from 1 to {MAX_IMAGES} "
                             f"(got {self.num_images}).")
        if self.seed is not None and (not isinstance(self.seed, (int, float)) or self.seed != int(self.seed)
                                      or not 0 <= self.seed <= MAX_SEED):
            raise UserError(f"The seed must be a whole number from 0 to {MAX_SEED} (got {self.seed}).")
        sizes = {}
        for name in ("width", "height"):
            value = int(getattr(self, name))
            snapped = min(max(value // 8 * 8, MIN_SIZE), MAX_SIZE)
            if snapped != value:
                notices.append(f"{name.capitalize()} {value} became {snapped} (multiples of 8 "
                               f"from {MIN_SIZE} to {MAX_SIZE}).")
            sizes[name] = snapped
        seed = int(self.seed) if self.seed is not None else secrets.randbelow(MAX_SEED - MAX_IMAGES)
        seed = min(seed, MAX_SEED - int(self.num_images) + 1)
        if self.negative_prompt.strip() and self.guidance <= 1:
            notices.append("The negative prompt has no effect with guidance 1 or less.")
        fixed = replace(self, prompt=prompt, negative_prompt=self.negative_prompt.strip(),
                        steps=int(self.steps), guidance=float(self.guidance), seed=seed,
                        num_images=int(self.num_images), **sizes)
        return fixed, notices


@dataclass
class GeneratedImage:
    path: str  # a PNG with the settings in its metadata
    seed: int
    seconds: float  # this image's share of the batch time


@dataclass
class ImageBatch:
    images: list[GeneratedImage]
    settings: ImageSettings  # as used (seed filled in)
    model: str
    revision: str | None
    seconds: float  # the whole pipeline call
    load_seconds: float  # 0 when the model was already loaded
    device: str
    notices: list[str] = field(default_factory=list)

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / max(len(self.images), 1)


@dataclass
class ImageRecord:
    """What a PNG of ours says about how it was made."""

    model: str
    revision: str | None
    settings: ImageSettings


# ---- loading ----------------------------------------------------------------------------------

def compile_enabled() -> bool:
    return current_settings().torch_compile


def speed_settings(pipe: Any, device: str, dtype: Any, compile_unet: bool = False) -> Any:
    """The usual diffusers speed settings for a GPU; a CPU pipeline stays as it is."""
    import torch

    pipe.to(device)
    if device != "cuda":
        return pipe
    for name in ("unet", "vae", "transformer"):
        module = getattr(pipe, name, None)
        if module is not None and name != "transformer":
            module.to(memory_format=torch.channels_last)
    vae = getattr(pipe, "vae", None)
    if vae is not None and dtype == torch.bfloat16 and getattr(vae.config, "force_upcast", False):
        vae.register_to_config(force_upcast=False)  # bf16 has fp32's range: no overflow, no fp32 decode needed
    if compile_unet:
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        if denoiser is not None:
            denoiser.compile(fullgraph=False)
    return pipe


def load_pipeline(ref: str, device: str | None = None,
                  on_download: ProgressCallback | None = None) -> tuple[Any, ModelSource, float]:
    """(pipeline, source, load seconds) for a hub id or folder, shared through the registry."""
    source = resolve(ref, kind=TEXT_TO_IMAGE, on_progress=on_download)
    choice = pick_device(device)
    compile_unet = compile_enabled() and choice.name == "cuda"
    where = source.repo_id or str(source.path.resolve())  # one key per model, however it was named
    key = f"{TEXT_TO_IMAGE}:{where}@{source.revision or 'local'}:{choice.name}"
    loaded_before = registry.is_loaded(key)
    started = time.perf_counter()

    def loader() -> Any:
        pipe = load_text_to_image(source, dtype=choice.dtype)
        return speed_settings(pipe, choice.name, choice.dtype, compile_unet)

    pipe = registry.get(key, loader, choice.name)
    return pipe, source, 0.0 if loaded_before else time.perf_counter() - started


def model_defaults(ref: str) -> dict[str, Any]:
    """Settings a tab starts from for a model: the catalog entry's for curated hub models; else
    the native size from the configs (UNet sample size x VAE scale) and the card's `defaults`."""
    defaults: dict[str, Any] = {"steps": 4, "guidance": 0.0, "width": 512, "height": 512}
    if not ref or not isinstance(ref, str) or len(ref) > 255:
        return defaults
    entry = None if is_local_ref(ref) else hub_entry(ref)
    if entry is not None:
        return {**defaults, **entry.defaults}
    try:
        folder = Path(ref).expanduser() if is_local_ref(ref) else cached_snapshot(ref)
    except ValueError:  # not a valid hub id: the load will say so
        return defaults
    if folder is None or not folder.is_dir():
        return defaults
    size = native_size(folder)
    if size:
        defaults.update(width=size, height=size)
    try:
        card = read_card_metadata(folder).get(GALLERY_KEY) or {}
    except (ModelCardError, OSError):
        card = {}
    if isinstance(card, dict) and isinstance(card.get("defaults"), dict):
        defaults.update(card["defaults"])
    return defaults


def native_size(folder: Path) -> int | None:
    """The image size a pipeline was trained at, from its UNet and VAE configs."""
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text())
        vae = json.loads((folder / "vae" / "config.json").read_text())
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, KeyError, TypeError, ValueError):
        return None


# ---- generation -------------------------------------------------------------------------------

def _is_oom(err: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(err, (oom, MemoryError)) or "out of memory" in str(err).lower()


def run_pipeline(pipe: Any, settings: ImageSettings, on_step: StepCallback | None = None) -> list[Any]:
    """PIL images from a pipeline for checked settings: the call the app times and the bench
    compares with a bare one."""
    import torch

    generators = [torch.Generator("cpu").manual_seed(int(settings.seed or 0) + i)
                  for i in range(settings.num_images)]

    def step_end(_pipe: Any, step: int, _timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_step is not None:
            on_step(step + 1, settings.steps)
        return kwargs

    guided = settings.guidance > 1
    with torch.inference_mode():
        out = pipe(prompt=settings.prompt,
                   negative_prompt=settings.negative_prompt or None if guided else None,
                   num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                   width=settings.width, height=settings.height,
                   num_images_per_prompt=settings.num_images, generator=generators,
                   callback_on_step_end=step_end)
    return list(out.images)


@gpu_task(duration=120)  # ZeroGPU Spaces: the GPU is held for this call only; a no-op elsewhere
def generate_images(ref: str, settings: ImageSettings, *, device: str | None = None,
                    on_step: StepCallback | None = None, on_download: ProgressCallback | None = None,
                    out_dir: str | Path | None = None, record_as: str | None = None) -> ImageBatch:
    """Make `settings.num_images` images with the model `ref` and save them as PNGs with metadata
    (the model recorded as `record_as`, the id the visitor picked, rather than a server folder)."""
    settings, notices = settings.checked()
    pipe, source, load_seconds = load_pipeline(ref, device, on_download)
    device_name = str(getattr(pipe, "device", "cpu"))
    started = time.perf_counter()
    try:
        images = run_pipeline(pipe, settings, on_step)
    except (RuntimeError, MemoryError) as err:
        if not _is_oom(err):
            raise
        _free_cuda()
        raise MemoryError(f"Out of memory making {settings.num_images} image(s) of {settings.width}x"
                          f"{settings.height} with {source.label} on {device_name}: try fewer images, a "
                          "smaller size, or unload other models in the System tab.") from err
    seconds = time.perf_counter() - started
    folder = Path(out_dir) if out_dir else output_dir()
    folder.mkdir(parents=True, exist_ok=True)
    model = record_as or source.repo_id or str(source.path)
    results = []
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"  # unique across users
    for i, image in enumerate(images):
        seed = int(settings.seed or 0) + i
        one = replace(settings, seed=seed, num_images=1)
        path = folder / f"image-{stamp}-{seed}.png"
        save_png(image, ImageRecord(model, source.revision, one), path)
        results.append(GeneratedImage(str(path), seed, seconds / len(images)))
    return ImageBatch(results, settings, model, source.revision, seconds, load_seconds, device_name, notices)


def output_dir() -> Path:
    """Where PNGs go when the caller names no folder: one folder per process, in the temp dir
    (`AIGC_IMAGE_DIR` to keep them elsewhere)."""
    global _OUTPUT_DIR
    if _OUTPUT_DIR is None:
        wanted = current_settings().image_dir
        _OUTPUT_DIR = Path(wanted) if wanted else Path(tempfile.mkdtemp(prefix="aigc-images-"))
    return _OUTPUT_DIR


_OUTPUT_DIR: Path | None = None


def _free_cuda() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- PNG metadata -----------------------------------------------------------------------------

def record_metadata(record: ImageRecord) -> dict[str, str]:
    """The PNG text chunks: our JSON, and the `parameters` line other image tools show."""
    s = record.settings
    data = {"app": "AIGC Gallery", "model": record.model, "revision": record.revision, **asdict(s)}
    line = (f"{s.prompt}\nNegative prompt: {s.negative_prompt}\nSteps: {s.steps}, CFG scale: {s.guidance:g}, "
            f"Seed: {s.seed}, Size: {s.width}x{s.height}, Model: {record.model}"
            + (f", Revision: {record.revision}" if record.revision else ""))
    return {META_KEY: json.dumps(data), "parameters": line}


def save_png(image: Any, record: ImageRecord, path: str | Path) -> Path:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in record_metadata(record).items():
        info.add_itxt(key, value)
    image.save(path, format="PNG", pnginfo=info)
    return Path(path)


def read_image_settings(path: str | Path) -> ImageRecord:
    """The settings a PNG of ours was made with; ValueError for other files."""

    if not isinstance(path, (str, Path)):
        raise UserError("Upload a PNG made by this app's Image tab.")
    name = Path(path).name[:100]
    with open_image(path, name) as image:
        text = dict(getattr(image, "text", {}) or {})
        kind = image.format
    raw = text.get(META_KEY)
    if not raw:
        raise UserError(f"{name} ({kind}) has no generation settings: only PNGs made by this app's "
                         "Image tab carry them.")
    try:
        data = json.loads(raw)
        settings = ImageSettings(**{k: data[k] for k in ("prompt", "negative_prompt", "steps", "guidance",
                                                         "width", "height", "seed")}, num_images=1)
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{name} has generation settings that cannot be read ({err}).") from err
    return ImageRecord(str(data.get("model", "")), data.get("revision"), settings)
